// Safetensors files (read/write, validated) and training checkpoints: model tensors, optimizer
// and schedule state, and the run's configuration in one file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attend/nn.h"
#include "attend/optim.h"
#include "attend/tensor.h"

namespace attend::io {

using nn::NamedTensors;
// A safetensors file's "__metadata__": string keys to string values.
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  NamedTensors tensors;  // in the order of their data in the file
  Metadata metadata;
};

// Safetensors layout: u64 little-endian header length N, N bytes of JSON header
//   {"__metadata__": {str: str}, name: {"dtype": "F32"|"F64"|"I64"|"BOOL", "shape": [...],
//    "data_offsets": [begin, end]}, ...}
// padded with spaces so the data starts 8-byte aligned, then the tensors' raw little-endian
// bytes, back to back, offsets relative to the end of the header.
//
// Files written here also hold kChecksumKey in the metadata: the CRC-32 (zlib's) of the whole
// file with the checksum's own 8 hex digits set to '0'. It catches corruption that leaves the
// structure intact (a flipped bit in a weight or a name). Files without it (other writers) load
// unless the checksum is required.
inline constexpr const char* kChecksumKey = "attend.crc32";

// Writes `tensors` (unique, non-empty names; any layout; f32/f64/i64/bool) and `metadata` to
// `path` atomically: into "<path>.tmp", fsync, rename over `path`, fsync of the directory.
// `metadata` may not use kChecksumKey. Throws attend::Error naming the file on any failure.
void SaveSafetensors(const std::string& path, const NamedTensors& tensors,
                     const Metadata& metadata = {});
// The same file as bytes in memory.
std::string SerializeSafetensors(const NamedTensors& tensors, const Metadata& metadata = {});

// Reads and validates a whole file. Anything malformed throws attend::Error naming the file and
// the problem: a header length beyond the file, invalid JSON or UTF-8, a duplicate name, an
// entry that is not {dtype, shape, data_offsets}, an unknown or unsupported dtype, a shape whose
// byte count differs from its offsets, offsets out of range, overlapping or leaving gaps,
// trailing bytes, a BOOL byte other than 0/1, or a checksum mismatch. With require_checksum,
// a file without kChecksumKey is refused as well.
SafetensorsContents LoadSafetensors(const std::string& path, bool require_checksum = false);
// The same from bytes in memory; `source` names them in messages.
SafetensorsContents ParseSafetensors(const std::string& bytes, const std::string& source,
                                     bool require_checksum = false);

// zlib's CRC-32 (reflected polynomial 0xEDB88320), continuing from `crc`.
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);

// ---- checkpoints ----
//
// A checkpoint is a safetensors file (with checksum) holding
//   - the model's StateDict() under its dotted names ("encoder.layers.0.weight"),
//   - the optimizer's State() under "optim." ("optim.state.0.exp_avg"),
// and in the metadata
//   - "attend.format": "checkpoint/1", "config": the configuration JSON,
//   - "optim.type" and the optimizer's scalars ("optim.lr", "optim.step_count"),
//   - "sched.type" and the schedule's state ("sched.last_epoch", ...),
//   - the caller's extra entries, which may not use those keys or the "attend.", "optim."
//     and "sched." prefixes.
// Numbers in the metadata are written in their shortest round-trip form, so they load exactly.
//
// config_json must be valid JSON. optimizer and scheduler may be null.
void SaveCheckpoint(const std::string& path, const nn::Module& model,
                    const optim::Optimizer* optimizer, const optim::LRScheduler* scheduler,
                    const std::string& config_json, const Metadata& extra = {});

// Loads a checkpoint into existing objects (values are copied into the model's tensors in
// place) and returns its config JSON; `extra`, when given, receives the caller's extra metadata.
// Every model tensor must be present with the same shape and dtype and the file may hold no other
// model tensor; the optimizer (and the schedule) must be of the saved type and their state must
// fit. The first tensor or entry that is missing, unexpected or mismatched is named in the
// attend::Error. Everything is checked before anything is changed, so a failed load leaves the
// objects as they were. A null optimizer or scheduler skips that part of the file (loading weights
// only); a non-null one whose state the file lacks is an error.
std::string LoadCheckpoint(const std::string& path, nn::Module& model,
                           optim::Optimizer* optimizer = nullptr,
                           optim::LRScheduler* scheduler = nullptr, Metadata* extra = nullptr);
// The same from a file the caller has read already with LoadSafetensors(path, true) (to look at
// its metadata first, as nmt::LoadModel does): the file is not read twice. `path` names it in
// errors.
std::string LoadCheckpoint(SafetensorsContents file, const std::string& path, nn::Module& model,
                           optim::Optimizer* optimizer = nullptr,
                           optim::LRScheduler* scheduler = nullptr, Metadata* extra = nullptr);

// Checkpoint averaging (`attend average`, as fairseq's and JoeyNMT's average_checkpoints): writes
// to `output` a checkpoint whose every model tensor (every tensor not named "optim.*") is the
// element-wise mean of that tensor in `inputs` (checkpoints of the same model, e.g. the last few
// of one run). f32 and f64 tensors are averaged in f64 and rounded once to their dtype; i64 and
// bool tensors (counters, masks) must be equal in every input and are copied, except the state
// of a training stream (an i64/bool tensor whose last name component ends in "state": the random
// streams of dropout and teacher forcing, "rng_state", the hard-attention sampler's
// "hard_state"), which advances with every step and is the last input's.
//
// The inputs are read with their checksums required and must hold the same model: the same model
// tensor names, shapes and dtypes, the same "config" apart from its "train" section (the
// training options, which may differ between runs: compared parsed, so key order and spacing do
// not matter), and the same other metadata (the vocabulary among it) apart from the trainer's
// progress ("trainer.*"), the optimizer's and the schedule's. The output holds the model tensors
// and the metadata of the last input without the optimizer's and schedule's state and metadata,
// plus "attend.averaged_from": the input paths as a JSON list. It is a checkpoint LoadCheckpoint
// reads with a null optimizer (and nmt::LoadModel, for a translation model).
//
// At least one input; `output` may not be one of them. The first problem (a file unreadable or
// corrupt, a mismatch: the file and the tensor or metadata key) throws attend::Error before
// anything is written; the output is written atomically (SaveSafetensors).
void AverageCheckpoints(const std::vector<std::string>& inputs, const std::string& output);

// ---- quantized checkpoints (`attend quantize`) ----
// A checkpoint for inference whose large matrices (every 2-D f32 model tensor of at least
// kQuantizeMinElements values: projections, embeddings, recurrent weights) are stored in int8
// with an f32 scale per row, "NAME" (i8 [rows, cols]) and "NAME.qscale" (f32 [rows]), rounded as
// the int8 decoding layers round a weight (nn::Precision::kInt8): decoding it in int8 computes
// what decoding the original in int8 computes. The metadata marks it (kQuantizedKey = "int8")
// and keeps everything but the optimizer's and the schedule's state, which it does not hold.
// LoadCheckpoint reads it into an f32 model (each matrix q * scale), without an optimizer.
inline constexpr const char* kQuantizedKey = "attend.quantized";
inline constexpr int64_t kQuantizeMinElements = 4096;
struct QuantizeSummary {
  int64_t tensors = 0, quantized = 0;          // model tensors, of which quantized
  uint64_t bytes_before = 0, bytes_after = 0;  // tensor bytes of the input and the output
};
// Reads `input` (checksum required; not quantized already) and writes `output` atomically.
QuantizeSummary QuantizeCheckpoint(const std::string& input, const std::string& output);

}  // namespace attend::io
