// Module bookkeeping (named parameters, buffers, children, train/eval), initialisers, and the
// basic layers: Linear, Embedding, LayerNorm, Sequential, positional encodings.
#include <cmath>

#include "attend/autograd.h"
#include "attend/nn.h"

namespace attend::nn {

// ---- Module ----
Tensor Module::RegisterParameter(const std::string& name, Tensor t) {
  ATTEND_CHECK(t.defined(), "Module: parameter '", name, "' is undefined");
  for (auto& [n, p] : params_)
    ATTEND_CHECK(n != name, "Module: parameter '", name, "' registered twice");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::RegisterBuffer(const std::string& name, Tensor t) {
  ATTEND_CHECK(t.defined(), "Module: buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::AddChild(const std::string& name, std::shared_ptr<Module> m) {
  ATTEND_CHECK(m != nullptr, "Module: sub-module '", name, "' is null");
  for (auto& [n, c] : children_)
    ATTEND_CHECK(n != name, "Module: sub-module '", name, "' registered twice");
  m->Train(training_);
  children_.emplace_back(name, std::move(m));
}

void Module::CollectParameters(const std::string& prefix, NamedTensors* out) const {
  for (auto& [n, p] : params_) out->emplace_back(prefix + n, p);
  for (auto& [n, c] : children_) c->CollectParameters(prefix + n + ".", out);
}

void Module::CollectBuffers(const std::string& prefix, NamedTensors* out) const {
  for (auto& [n, b] : buffers_) out->emplace_back(prefix + n, b);
  for (auto& [n, c] : children_) c->CollectBuffers(prefix + n + ".", out);
}

NamedTensors Module::NamedParameters() const {
  NamedTensors out;
  CollectParameters("", &out);
  return out;
}

std::vector<Tensor> Module::Parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, p] : NamedParameters()) out.push_back(p);
  return out;
}

NamedTensors Module::NamedBuffers() const {
  NamedTensors out;
  CollectBuffers("", &out);
  return out;
}

NamedTensors Module::StateDict() const {
  NamedTensors out = NamedParameters();
  CollectBuffers("", &out);
  return out;
}

int64_t Module::NumParameters() const {
  int64_t n = 0;
  for (auto& [name, p] : NamedParameters()) n += p.numel();
  return n;
}

void Module::ZeroGrad() {
  for (auto& [n, p] : NamedParameters()) {
    Tensor t = p;
    t.ZeroGrad();
  }
}

void Module::Train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->Train(on);
}

// ---- initialisers ----
namespace init {

std::pair<int64_t, int64_t> FanInOut(const Tensor& t) {
  ATTEND_CHECK(t.dim() >= 2, "init: fan in/out needs a tensor with at least 2 dims, got ", t.str());
  int64_t receptive = 1;
  for (int i = 2; i < t.dim(); ++i) receptive *= t.size(i);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

namespace {
thread_local bool skip_random = false;
}  // namespace

SkipRandomInit::SkipRandomInit() : outer_(skip_random) { skip_random = true; }
SkipRandomInit::~SkipRandomInit() { skip_random = outer_; }

void Uniform(Tensor t, double lo, double hi, Generator& gen) {
  NoGradGuard ng;
  if (skip_random) {
    t.Fill(0.0);
    return;
  }
  t.CopyFrom(AddScalar(MulScalar(Tensor::Rand(t.shape(), gen, t.dtype()), hi - lo), lo));
}

void Normal(Tensor t, double mean, double std, Generator& gen) {
  NoGradGuard ng;
  if (skip_random) {
    t.Fill(0.0);
    return;
  }
  t.CopyFrom(AddScalar(MulScalar(Tensor::Randn(t.shape(), gen, t.dtype()), std), mean));
}

void Constant(Tensor t, double value) { t.Fill(value); }

void XavierUniform(Tensor t, Generator& gen, double gain) {
  auto [fan_in, fan_out] = FanInOut(t);
  double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  Uniform(t, -a, a, gen);
}

void XavierNormal(Tensor t, Generator& gen, double gain) {
  auto [fan_in, fan_out] = FanInOut(t);
  Normal(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
}

namespace {
double KaimingStd(const Tensor& t, double a, FanMode mode) {
  auto [fan_in, fan_out] = FanInOut(t);
  double fan = static_cast<double>(mode == FanMode::kFanIn ? fan_in : fan_out);
  double gain = std::sqrt(2.0 / (1.0 + a * a));  // leaky_relu gain, PyTorch's default nonlinearity
  return gain / std::sqrt(fan);
}
}  // namespace

void KaimingUniform(Tensor t, Generator& gen, double a, FanMode mode) {
  double bound = std::sqrt(3.0) * KaimingStd(t, a, mode);
  Uniform(t, -bound, bound, gen);
}

void KaimingNormal(Tensor t, Generator& gen, double a, FanMode mode) {
  Normal(t, 0.0, KaimingStd(t, a, mode), gen);
}

}  // namespace init

// ---- layers ----
Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator& gen,
               DType dtype) {
  ATTEND_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in ",
               in_features, " out ", out_features);
  Tensor w = Tensor::Empty({out_features, in_features}, dtype);
  init::KaimingUniform(w, gen, std::sqrt(5.0));
  weight = RegisterParameter("weight", w);
  if (with_bias) {
    Tensor b = Tensor::Empty({out_features}, dtype);
    double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::Uniform(b, -bound, bound, gen);
    bias = RegisterParameter("bias", b);
  }
}

Tensor Linear::Forward(const Tensor& x) const {
  return attend::Linear(x, weight, bias);  // checks x against the weight, as the module did
}

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator& gen, int64_t padding_idx_in,
                     DType dtype)
    : padding_idx(padding_idx_in) {
  ATTEND_CHECK(num_embeddings > 0 && dim > 0, "Embedding: sizes must be positive, got ",
               num_embeddings, " x ", dim);
  ATTEND_CHECK(padding_idx == -1 || (padding_idx >= 0 && padding_idx < num_embeddings),
               "Embedding: padding_idx ", padding_idx, " is out of range for ", num_embeddings,
               " embeddings");
  Tensor w = Tensor::Empty({num_embeddings, dim}, dtype);
  init::Normal(w, 0.0, 1.0, gen);
  if (padding_idx >= 0) w.Select(0, padding_idx).Fill(0.0);
  weight = RegisterParameter("weight", w);
}

Tensor Embedding::Forward(const Tensor& indices) const {
  return attend::Embedding(weight, indices, padding_idx);
}

LayerNormModule::LayerNormModule(const Shape& shape, double eps_in, bool affine, DType dtype)
    : normalized_shape(shape), eps(eps_in) {
  ATTEND_CHECK(shape.size() >= 1 && shape.numel() > 0, "LayerNorm: invalid normalized shape ",
               shape.str());
  if (affine) {
    weight = RegisterParameter("weight", Tensor::Ones(shape, dtype));
    bias = RegisterParameter("bias", Tensor::Zeros(shape, dtype));
  }
}

Tensor LayerNormModule::Forward(const Tensor& x) const {
  const int k = normalized_shape.size();
  ATTEND_CHECK(x.defined() && x.dim() >= k, "LayerNorm: input ", x.str(),
               " has fewer dims than the normalized shape ", normalized_shape.str());
  for (int i = 0; i < k; ++i)
    ATTEND_CHECK(x.size(x.dim() - k + i) == normalized_shape[i], "LayerNorm: input ", x.str(),
                 " does not end in the normalized shape ", normalized_shape.str());
  return LayerNorm(x, k, weight, bias, eps);
}

DropoutModule::DropoutModule(double p_in, uint64_t seed) : p(p_in) {
  ATTEND_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability must be in [0, 1], got ", p);
  rng_state = RegisterBuffer(
      "rng_state", Tensor::FromVector(std::vector<int64_t>{static_cast<int64_t>(seed), 0}, {2}));
}

Tensor DropoutModule::Forward(const Tensor& x) {
  int64_t* st = rng_state.data<int64_t>();
  Generator gen(static_cast<uint64_t>(st[0]));
  gen.set_state(static_cast<uint64_t>(st[0]), static_cast<uint64_t>(st[1]));
  Tensor y = Dropout(x, p, training(), gen);
  st[1] = static_cast<int64_t>(gen.offset());
  return y;
}

Tensor Sequential::Forward(const Tensor& x) const {
  Tensor h = x;
  for (const auto& step : steps_) h = step(h);
  return h;
}

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(int64_t max_len, int64_t dim,
                                                           DType dtype) {
  ATTEND_CHECK(max_len > 0 && dim > 0, "SinusoidalPositionalEncoding: sizes must be positive");
  Tensor pe = Tensor::Empty({max_len, dim}, DType::kF64);
  double* p = pe.data<double>();
  for (int64_t pos = 0; pos < max_len; ++pos)
    for (int64_t i = 0; i < dim; i += 2) {
      double angle = static_cast<double>(pos) / std::pow(10000.0, static_cast<double>(i) / dim);
      p[pos * dim + i] = std::sin(angle);
      if (i + 1 < dim) p[pos * dim + i + 1] = std::cos(angle);
    }
  table = RegisterBuffer("pe", pe.To(dtype));
}

namespace {
Tensor AddPositions(const Tensor& x, const Tensor& table, const char* op) {
  ATTEND_CHECK(x.defined() && x.dim() >= 2, op, ": input must be [..., T, dim], got ", x.str());
  const int64_t t = x.size(-2), d = x.size(-1);
  ATTEND_CHECK(d == table.size(1), op, ": input ", x.str(), " has ", d, " features but the table ",
               table.str(), " has ", table.size(1));
  ATTEND_CHECK(t <= table.size(0), op, ": sequence length ", t, " exceeds the maximum ",
               table.size(0), " (input ", x.str(), ")");
  return Add(x, table.Narrow(0, 0, t));
}
}  // namespace

Tensor SinusoidalPositionalEncoding::Forward(const Tensor& x) const {
  return AddPositions(x, table, "SinusoidalPositionalEncoding");
}

LearnedPositionalEncoding::LearnedPositionalEncoding(int64_t max_len, int64_t dim, Generator& gen,
                                                     DType dtype) {
  Tensor w = Tensor::Empty({max_len, dim}, dtype);
  init::Normal(w, 0.0, 0.02, gen);
  weight = RegisterParameter("weight", w);
}

Tensor LearnedPositionalEncoding::Forward(const Tensor& x) const {
  return AddPositions(x, weight, "LearnedPositionalEncoding");
}

}  // namespace attend::nn
