// The checkpoint loader on arbitrary bytes, as `attend translate` and `attend train --resume` meet
// a checkpoint: nmt::LoadModel (safetensors, the config JSON, the stored vocabulary, the model
// built from the config, its tensors checked and loaded), then io::LoadCheckpoint with the
// trainer's optimizer and schedule, then a short greedy and beam decode with the loaded model.
//
// Checkpoints carry a CRC-32 over the whole file, so nearly every mutation would stop at the
// checksum. When the input has the checksum field where attend writes it, the target writes the
// right digits into it first, and the fuzzer reaches everything behind the checksum
// (fuzz_safetensors covers the checksum itself).
#include <cstdio>
#include <cstring>

#include "attend/checkpoint.h"
#include "attend/nmt.h"
#include "attend/optim.h"
#include "fuzz_support.h"

namespace {

// The digits of `"attend.crc32":"xxxxxxxx"` in the header set to the file's CRC-32 (as the reader
// computes it: length field, header with the digits as '0', then the data).
void FixChecksum(std::string& bytes) {
  if (bytes.size() < 8) return;
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > bytes.size() - 8) return;
  const std::string field = std::string("\"") + attend::io::kChecksumKey + "\":\"";
  const std::string_view header(bytes.data() + 8, header_size);
  const size_t at = header.find(field);
  if (at == std::string_view::npos || header.size() - at - field.size() < 9) return;
  const size_t digits = 8 + at + field.size();
  std::memset(bytes.data() + digits, '0', 8);
  uint32_t crc = attend::io::Crc32(bytes.data(), 8 + header_size);
  crc = attend::io::Crc32(bytes.data() + 8 + header_size, bytes.size() - 8 - header_size, crc);
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", crc);
  std::memcpy(bytes.data() + digits, hex, 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("checkpoint");
  std::string bytes(reinterpret_cast<const char*>(data), size);
  FixChecksum(bytes);
  const std::string& path = file.Write(bytes);

  nmt::LoadedModel loaded;
  if (!fuzz::Accepts([&] { loaded = nmt::LoadModel(path); })) return 0;
  FUZZ_CHECK(loaded.model != nullptr);
  models::Seq2Seq& model = *loaded.model;
  const int64_t vocab = loaded.vocab.size();
  FUZZ_CHECK(vocab == model.config().src_vocab && vocab == model.config().tgt_vocab);
  FUZZ_CHECK(fuzz::Accepts([&] { model.config().Validate(); }), "a loaded config is invalid");

  // The trainer's resume: the same file into the model, its Adam and its schedule.
  {
    optim::Adam adam(model.Parameters(),
                     optim::AdamOptions{.lr = 1e-3, .beta2 = 0.98, .eps = 1e-9});
    optim::InverseSqrtWarmup schedule(
        adam, optim::InverseSqrtWarmup::Peak{.lr_peak = 1e-3, .warmup = 10});
    io::Metadata extra;
    fuzz::Accepts([&] { io::LoadCheckpoint(path, model, &adam, &schedule, &extra); });
  }

  // A loaded model must translate, whatever its weights (NaN and infinities included).
  const std::vector<std::vector<int64_t>> sources = {{4, vocab - 1, 4}, {vocab - 1}};
  for (const int64_t beam : {int64_t{1}, int64_t{2}}) {
    nmt::SearchOptions options;
    options.beam = beam;
    options.nbest = beam;
    options.max_len_ratio = 1.0;
    options.max_len_extra = 3;
    options.keep_attention = true;
    std::vector<std::vector<nmt::Hypothesis>> out;
    fuzz::Accepts([&] { out = nmt::Translate(model, sources, options); });
    for (const auto& nbest : out) {
      for (const nmt::Hypothesis& h : nbest) {
        FUZZ_CHECK(static_cast<int64_t>(h.tokens.size()) <= 3 + 3, "hypothesis too long");
        for (const int64_t id : h.tokens)
          FUZZ_CHECK(id >= 0 && id < vocab, "token %lld", (long long)id);
        fuzz::Accepts([&] { loaded.vocab.Decode(h.tokens); });
      }
    }
  }
  return 0;
}
