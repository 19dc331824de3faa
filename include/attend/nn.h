// Modules: named parameters and sub-modules, train/eval mode, initialisers, and the basic layers
// (Linear, Embedding, LayerNorm, Dropout, Sequential, positional encodings).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attend/ops.h"
#include "attend/tensor.h"

namespace attend::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// A module owns named parameters (trainable), buffers (saved but not trained) and sub-modules.
// Names are hierarchical and dotted, as PyTorch's: "encoder.rnn.weight_ih_l0".
// Parameters are tensor handles: loading a checkpoint copies values into them in place, so
// handles held elsewhere (optimizers, layers) stay valid.
class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors NamedParameters() const;  // depth-first, registration order
  std::vector<Tensor> Parameters() const;
  NamedTensors NamedBuffers() const;
  // Parameters and buffers together: what a checkpoint stores.
  NamedTensors StateDict() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> NamedChildren() const {
    return children_;
  }
  int64_t NumParameters() const;
  void ZeroGrad();
  // Train/eval mode of this module and every sub-module (dropout is the identity in eval).
  virtual void Train(bool on = true);
  void Eval() { Train(false); }
  bool training() const { return training_; }

 protected:
  // Registers t as a parameter (sets requires_grad) and returns the stored handle.
  Tensor RegisterParameter(const std::string& name, Tensor t);
  Tensor RegisterBuffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> RegisterModule(const std::string& name, std::shared_ptr<M> m) {
    AddChild(name, m);
    return m;
  }

 private:
  void AddChild(const std::string& name, std::shared_ptr<Module> m);
  void CollectParameters(const std::string& prefix, NamedTensors* out) const;
  void CollectBuffers(const std::string& prefix, NamedTensors* out) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// In-place initialisers (nothing recorded); they write through the handle, so views work.
// fan_in/fan_out follow PyTorch: for a weight of shape [out, in, k...], fan_in = in * prod(k),
// fan_out = out * prod(k).
namespace init {
enum class FanMode { kFanIn, kFanOut };
void Uniform(Tensor t, double lo, double hi, Generator& gen);
void Normal(Tensor t, double mean, double std, Generator& gen);
void Constant(Tensor t, double value);
void XavierUniform(Tensor t, Generator& gen, double gain = 1.0);
void XavierNormal(Tensor t, Generator& gen, double gain = 1.0);
// `a` is the negative slope of the rectifier after this layer (0 for ReLU), as PyTorch.
void KaimingUniform(Tensor t, Generator& gen, double a = 0.0, FanMode mode = FanMode::kFanIn);
void KaimingNormal(Tensor t, Generator& gen, double a = 0.0, FanMode mode = FanMode::kFanIn);
std::pair<int64_t, int64_t> FanInOut(const Tensor& t);

// While one lives on this thread, the random initialisers above (Uniform, Normal and the Xavier
// and Kaiming ones, which call them) write zeros instead of drawing, and the generator does not
// advance; Constant still writes its value. For building a model whose every tensor a checkpoint
// overwrites next (nmt::LoadModel): there the draws and their temporaries were 30 % of a
// short `attend translate` (docs/results.md, issue 20's ninth pass). Nests.
class SkipRandomInit {
 public:
  SkipRandomInit();
  ~SkipRandomInit();
  SkipRandomInit(const SkipRandomInit&) = delete;
  SkipRandomInit& operator=(const SkipRandomInit&) = delete;

 private:
  bool outer_;
};
}  // namespace init

// y = x W^T + b with W [out, in], initialised as torch.nn.Linear (Kaiming-uniform, a = sqrt(5)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen,
         DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const;  // [..., in] -> [..., out]
  Tensor weight, bias;                    // bias undefined when built without one
};

// The arithmetic of a packed (decoding) layer: f32, bf16 (weights and activations rounded to
// bfloat16, sums in f32) or int8 (weights per output row, activations per input row, exact int32
// sums; backend/cpu/reference/quant_kernels.h states the formulas).
enum class Precision : uint8_t { kF32, kBF16, kInt8 };
const char* PrecisionName(Precision p);             // "f32" | "bf16" | "int8"
Precision ParsePrecision(const std::string& name);  // throws attend::Error naming the choices
// The instruction set this CPU runs a precision's packed products on, for logs: "AVX-512",
// "AVX2", ... for f32; "AVX512-VNNI", "AMX-INT8 + AVX512-VNNI", "AVX2" or "scalar" for int8;
// the bf16 ones likewise ("scalar": the portable twins, much slower).
const char* PrecisionKernelName(Precision p);

struct LowPrecisionWeight;  // prepacked.cc

// A Linear layer's weight copied once into the layout of the small-batch GEMM kernel
// (backend/cpu/reference/gemm_kernels.h; quant_kernels.h for bf16 and int8), for decoding: each
// step multiplies a few rows by the same weight, and a BLAS would re-copy the weight into its own
// layout on every call. The copy does not follow later changes to the layer (pack after
// training; the models pack in Start or PrepareDecoding). Inference only: no gradient flows.
class PrepackedLinear {
 public:
  PrepackedLinear() = default;
  explicit PrepackedLinear(const Linear& layer, Precision precision = Precision::kF32)
      : PrepackedLinear(layer.weight, layer.bias, precision) {}
  // weight [out, in] f32; bias [out] or undefined.
  PrepackedLinear(const Tensor& weight, const Tensor& bias, Precision precision = Precision::kF32);
  bool defined() const { return in_ > 0 || out_ > 0; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Precision precision() const { return precision_; }
  int64_t weight_bytes() const;           // what the packed weight (and its scales) occupy
  Tensor Forward(const Tensor& x) const;  // [..., in] -> [..., out]
  // The layer cut to output rows `rows` (each < out_features, in that order): every kept row
  // computes what it computed here (int8: the same quantized row and scale). A vocabulary
  // shortlist scores the output layer's rows it keeps this way.
  PrepackedLinear Rows(const std::vector<int64_t>& rows) const;

 private:
  Tensor weight_, bias_, packed_;  // f32: the original (large batches), bias, packed copy
  std::shared_ptr<const LowPrecisionWeight> low_;  // bf16 / int8 (bias_ as above)
  Precision precision_ = Precision::kF32;
  int64_t in_ = 0, out_ = 0;
};

class Embedding : public Module {
 public:
  // padding_idx -1 = none; the padding row starts at zero and never receives gradient.
  Embedding(int64_t num_embeddings, int64_t dim, Generator& gen, int64_t padding_idx = -1,
            DType dtype = DType::kF32);
  Tensor Forward(const Tensor& indices) const;  // i64 [...] -> [..., dim]
  Tensor weight;
  int64_t padding_idx;
};

class LayerNormModule : public Module {
 public:
  explicit LayerNormModule(const Shape& normalized_shape, double eps = 1e-5,
                           bool elementwise_affine = true, DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const;
  Tensor weight, bias;
  Shape normalized_shape;
  double eps;
};

// Dropout with its own random stream. The stream's state (seed, offset) lives in the buffer
// `rng_state` (i64 [2]), so a checkpoint restores it and a resumed run draws the same masks.
class DropoutModule : public Module {
 public:
  explicit DropoutModule(double p, uint64_t seed = 0);
  Tensor Forward(const Tensor& x);
  double p;
  Tensor rng_state;
};

// Applies its children in order; each must be a module with a Tensor -> Tensor forward,
// registered with Add (the function is what Sequential calls).
class Sequential : public Module {
 public:
  template <typename M>
  std::shared_ptr<M> Add(std::shared_ptr<M> m) {
    std::shared_ptr<M> keep = RegisterModule(std::to_string(steps_.size()), m);
    steps_.push_back([keep](const Tensor& x) { return keep->Forward(x); });
    return keep;
  }
  // A parameter-free step (e.g. an activation).
  void AddFunction(std::function<Tensor(const Tensor&)> f) { steps_.push_back(std::move(f)); }
  Tensor Forward(const Tensor& x) const;
  size_t size() const { return steps_.size(); }

 private:
  std::vector<std::function<Tensor(const Tensor&)>> steps_;
};

// Sinusoidal positional encoding (Vaswani et al.): pe[pos, 2i] = sin(pos / 10000^(2i/d)),
// pe[pos, 2i+1] = cos(...). Stored as a buffer [max_len, dim]; Forward adds it to x [B, T, dim].
class SinusoidalPositionalEncoding : public Module {
 public:
  SinusoidalPositionalEncoding(int64_t max_len, int64_t dim, DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const;
  Tensor table;
};

// Learned positional embeddings [max_len, dim], added to x [B, T, dim].
class LearnedPositionalEncoding : public Module {
 public:
  LearnedPositionalEncoding(int64_t max_len, int64_t dim, Generator& gen,
                            DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const;
  Tensor weight;
};

}  // namespace attend::nn
