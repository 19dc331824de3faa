// The Optimizer base (parameters, per-parameter state, checkpoint state), SGD, Adam/AdamW and
// gradient-norm clipping. Update loops follow torch.optim's single-tensor implementations
// operation by operation, with the hyperparameters rounded to the parameter's dtype as torch
// does for scalar arguments, so float results agree with torch to rounding.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <unordered_set>

#include "attend/autograd.h"
#include "attend/optim.h"
#include "backend/cpu/reference/optim_kernels.h"
#include "backend/cpu/simd/optim_kernels.h"
#include "ops/op_helpers.h"

namespace attend::optim {
namespace {

// Whether an elementwise update of n elements is worth an OpenMP region (about 8 flops each).
bool ParallelUpdate(int64_t n) { return WorthThreading(n, 8); }

template <typename Fn>
void DispatchParamType(const Tensor& t, const char* op, Fn&& fn) {
  switch (t.dtype()) {
    case DType::kF32: fn(float{}); return;
    case DType::kF64: fn(double{}); return;
    default: ATTEND_CHECK(false, op, ": parameters must be f32 or f64, got ", t.str());
  }
}

bool IsWholeNumber(double v) {
  return std::isfinite(v) && v >= 0 && v < 9007199254740992.0 && v == std::floor(v);
}

// Splits "state.<i>.<field>" into i and field; false when the name has another form.
bool ParseStateName(const std::string& name, size_t* index, std::string* field) {
  static const std::string kPrefix = "state.";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  size_t pos = kPrefix.size(), end = pos;
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  // Digits only, no leading zeros (so each index has exactly one spelling), then ".field".
  if (end == pos || end - pos > 9 || (name[pos] == '0' && end - pos > 1)) return false;
  if (end >= name.size() - 1 || name[end] != '.') return false;
  *index = std::stoul(name.substr(pos, end - pos));
  *field = name.substr(end + 1);
  return true;
}

}  // namespace

// ---- Optimizer ----

Optimizer::Optimizer(std::vector<Tensor> params, double lr, std::vector<std::string> buffer_names)
    : params_(std::move(params)), buffer_names_(std::move(buffer_names)), lr_(lr) {
  ATTEND_CHECK(!params_.empty(), "Optimizer: got an empty parameter list");
  ATTEND_CHECK(std::isfinite(lr) && lr >= 0, "Optimizer: invalid learning rate ", lr);
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    ATTEND_CHECK(p.defined(), "Optimizer: parameter ", i, " is undefined");
    ATTEND_CHECK(IsFloating(p.dtype()), "Optimizer: parameter ", i, " is ", p.str(),
                 "; only f32 and f64 parameters can be optimized");
    ATTEND_CHECK(p.is_leaf(), "Optimizer: parameter ", i, " (", p.str(),
                 ") is the result of an op; only leaf tensors can be optimized");
    // Updates run as flat loops over the storage.
    ATTEND_CHECK(p.is_contiguous(), "Optimizer: parameter ", i, " (", p.str(),
                 ") is not contiguous");
    ATTEND_CHECK(seen.insert(p.impl()).second, "Optimizer: parameter ", i, " (", p.str(),
                 ") appears more than once in the parameter list");
  }
  state_.resize(params_.size());
}

void Optimizer::set_lr(double lr) {
  ATTEND_CHECK(std::isfinite(lr) && lr >= 0, type(), ": invalid learning rate ", lr);
  lr_ = lr;
}

void Optimizer::Step() {
  NoGradGuard no_grad;
  // Check every gradient before touching anything, so a bad one leaves all parameters as they were.
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    ATTEND_CHECK(g.dtype() == params_[i].dtype() && g.shape() == params_[i].shape(), type(),
                 "::Step: gradient of parameter ", i, " is ", g.str(), " but the parameter is ",
                 params_[i].str());
  }
  ++step_count_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!g.is_contiguous()) g = g.Contiguous();
    ParamState& st = state_[i];
    if (st.step == 0) {
      st.buffers.clear();
      for (size_t b = 0; b < buffer_names_.size(); ++b)
        st.buffers.push_back(Tensor::Zeros(p.shape(), p.dtype()));
    }
    ++st.step;
    Update(p, g, st.buffers, st.step);
  }
}

void Optimizer::ZeroGrad() {
  for (Tensor& p : params_) p.ZeroGrad();
}

NamedTensors Optimizer::State() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamState& st = state_[i];
    if (st.step == 0) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", Tensor::Scalar(static_cast<double>(st.step), DType::kI64));
    for (size_t b = 0; b < buffer_names_.size(); ++b)
      out.emplace_back(prefix + buffer_names_[b], st.buffers[b]);
  }
  return out;
}

void Optimizer::CheckState(const NamedTensors& state) const {
  const std::string op = std::string(type()) + "::LoadState";
  // Which fields each parameter has: bit 0 is "step", bit b+1 is buffer b.
  std::vector<uint64_t> present(params_.size(), 0);
  for (const auto& [name, t] : state) {
    size_t index = 0;
    std::string field;
    ATTEND_CHECK(ParseStateName(name, &index, &field), op, ": unexpected entry '", name,
                 "' (expected state.<parameter index>.<field>)");
    ATTEND_CHECK(index < params_.size(), op, ": entry '", name, "' names parameter ", index,
                 " but the optimizer has ", params_.size(), " parameters");
    ATTEND_CHECK(t.defined(), op, ": entry '", name, "' is an undefined tensor");
    const Tensor& p = params_[index];
    int bit = -1;
    if (field == "step") {
      bit = 0;
      ATTEND_CHECK(t.dtype() == DType::kI64 && t.dim() == 0, op, ": entry '", name,
                   "' must be an i64 scalar, got ", t.str());
      ATTEND_CHECK(t.item() >= 1, op, ": entry '", name, "' holds step ", t.item(),
                   "; a saved parameter state has at least one step");
    } else {
      auto it = std::find(buffer_names_.begin(), buffer_names_.end(), field);
      ATTEND_CHECK(it != buffer_names_.end(), op, ": unexpected entry '", name, "' (", type(),
                   " with these options keeps no buffer '", field, "')");
      bit = 1 + static_cast<int>(it - buffer_names_.begin());
      ATTEND_CHECK(t.dtype() == p.dtype() && t.shape() == p.shape(), op, ": entry '", name, "' is ",
                   t.str(), " but parameter ", index, " is ", p.str());
    }
    ATTEND_CHECK(!(present[index] & (uint64_t{1} << bit)), op, ": entry '", name,
                 "' appears twice");
    present[index] |= uint64_t{1} << bit;
  }
  const uint64_t all = (uint64_t{1} << (buffer_names_.size() + 1)) - 1;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (present[i] == 0 || present[i] == all) continue;
    std::string missing = "step";
    for (size_t b = 0; b < buffer_names_.size() && (present[i] & 1); ++b)
      if (!(present[i] & (uint64_t{1} << (b + 1)))) {
        missing = buffer_names_[b];
        break;
      }
    missing = "state." + std::to_string(i) + "." + missing;
    ATTEND_CHECK(false, op, ": entry '", missing, "' is missing (parameter ", i,
                 " has part of its state)");
  }
}

void Optimizer::LoadState(const NamedTensors& state) {
  CheckState(state);
  std::vector<ParamState> loaded(params_.size());
  for (const auto& [name, t] : state) {
    size_t index = 0;
    std::string field;
    ParseStateName(name, &index, &field);
    ParamState& st = loaded[index];
    st.buffers.resize(buffer_names_.size());
    if (field == "step") {
      st.step = static_cast<int64_t>(t.item());
      continue;
    }
    size_t b = std::find(buffer_names_.begin(), buffer_names_.end(), field) - buffer_names_.begin();
    // Copies: the optimizer updates its buffers in place and must not write into the caller's.
    Tensor copy = Tensor::Empty(t.shape(), t.dtype());
    copy.CopyFrom(t);
    st.buffers[b] = copy;
  }
  state_ = std::move(loaded);
}

Scalars Optimizer::ScalarState() const {
  return {{"lr", lr_}, {"step_count", static_cast<double>(step_count_)}};
}

void Optimizer::CheckScalarState(const Scalars& scalars) const {
  const std::string op = std::string(type()) + "::LoadScalarState";
  for (const auto& [key, value] : scalars)
    ATTEND_CHECK(key == "lr" || key == "step_count", op, ": unexpected scalar '", key, "'");
  for (const char* key : {"lr", "step_count"})
    ATTEND_CHECK(scalars.count(key), op, ": scalar '", key, "' is missing");
  const double lr = scalars.at("lr");
  ATTEND_CHECK(std::isfinite(lr) && lr >= 0, op, ": invalid learning rate ", lr);
  ATTEND_CHECK(IsWholeNumber(scalars.at("step_count")), op, ": step_count ",
               scalars.at("step_count"), " is not a non-negative whole number");
}

void Optimizer::LoadScalarState(const Scalars& scalars) {
  CheckScalarState(scalars);
  lr_ = scalars.at("lr");
  step_count_ = static_cast<int64_t>(scalars.at("step_count"));
}

// ---- SGD ----

namespace {
std::vector<std::string> SGDBuffers(const SGDOptions& o) {
  if (o.momentum != 0) return {"momentum_buffer"};
  return {};
}
const SGDOptions& CheckSGD(const SGDOptions& o) {
  ATTEND_CHECK(std::isfinite(o.lr) && o.lr >= 0, "SGD: invalid learning rate ", o.lr);
  ATTEND_CHECK(std::isfinite(o.momentum) && o.momentum >= 0, "SGD: invalid momentum ", o.momentum);
  ATTEND_CHECK(std::isfinite(o.dampening), "SGD: invalid dampening ", o.dampening);
  ATTEND_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "SGD: invalid weight_decay ",
               o.weight_decay);
  ATTEND_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
               "SGD: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ",
               o.momentum, ", dampening ", o.dampening, ")");
  return o;
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer(std::move(params), CheckSGD(options).lr, SGDBuffers(options)), options_(options) {}

void SGD::Update(Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers, int64_t step) {
  DispatchParamType(param, "SGD", [&](auto tag) {
    using T = decltype(tag);
    const SGDOptions& o = options_;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* buf = o.momentum != 0 ? buffers[0].data<T>() : nullptr;
    const bool decay = o.weight_decay != 0, first = step == 1, nesterov = o.nesterov;
    const T wd = static_cast<T>(o.weight_decay);
    const T momentum = static_cast<T>(o.momentum);
    const T keep = static_cast<T>(1.0 - o.dampening);
    const T neg_lr = static_cast<T>(-lr());
    const int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (ParallelUpdate(n))
    for (int64_t j = 0; j < n; ++j) {
      T d = g[j];
      if (decay) d = d + wd * p[j];
      if (buf != nullptr) {
        // torch clones the first gradient into the buffer rather than decaying a zero one.
        const T b = first ? d : buf[j] * momentum + keep * d;
        buf[j] = b;
        d = nesterov ? d + momentum * b : b;
      }
      p[j] = p[j] + neg_lr * d;
    }
  });
}

// ---- Adam / AdamW ----

namespace {
const AdamOptions& CheckAdam(const AdamOptions& o, const char* name) {
  ATTEND_CHECK(std::isfinite(o.lr) && o.lr >= 0, name, ": invalid learning rate ", o.lr);
  ATTEND_CHECK(std::isfinite(o.eps) && o.eps >= 0, name, ": invalid eps ", o.eps);
  ATTEND_CHECK(o.beta1 >= 0 && o.beta1 < 1, name, ": beta1 must be in [0, 1), got ", o.beta1);
  ATTEND_CHECK(o.beta2 >= 0 && o.beta2 < 1, name, ": beta2 must be in [0, 1), got ", o.beta2);
  ATTEND_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, name,
               ": invalid weight_decay ", o.weight_decay);
  return o;
}
std::vector<std::string> AdamBuffers(const AdamOptions& o) {
  if (o.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}
}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::move(params), options, false) {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(params), CheckAdam(options, decoupled ? "AdamW" : "Adam").lr,
                AdamBuffers(options)),
      options_(options),
      decoupled_(decoupled) {}

namespace {
AdamOptions FromAdamW(const AdamWOptions& o) {
  return {.lr = o.lr,
          .beta1 = o.beta1,
          .beta2 = o.beta2,
          .eps = o.eps,
          .weight_decay = o.weight_decay,
          .amsgrad = o.amsgrad};
}
}  // namespace

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(std::move(params), FromAdamW(options), true) {}

void Adam::Update(Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers, int64_t step) {
  DispatchParamType(param, type(), [&](auto tag) {
    using T = decltype(tag);
    const AdamOptions& o = options_;
    const double lr = this->lr();
    // Bias corrections in double, as torch computes them in Python floats.
    const double t = static_cast<double>(step);
    const double bias_correction1 = 1 - std::pow(o.beta1, t);
    const double bias_correction2 = 1 - std::pow(o.beta2, t);
    cpu::ref::AdamArgs<T> a;
    a.neg_step_size = static_cast<T>(-(lr / bias_correction1));
    a.bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    a.eps = static_cast<T>(o.eps);
    a.beta1 = static_cast<T>(o.beta1);
    a.one_minus_beta1 = static_cast<T>(1 - o.beta1);
    a.beta2 = static_cast<T>(o.beta2);
    a.one_minus_beta2 = static_cast<T>(1 - o.beta2);
    a.weight_decay = static_cast<T>(o.weight_decay);
    a.shrink = static_cast<T>(1 - lr * o.weight_decay);  // AdamW's decoupled decay
    a.decoupled = decoupled_;
    a.l2 = !decoupled_ && o.weight_decay != 0;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = buffers[0].data<T>();
    T* v = buffers[1].data<T>();
    T* vmax = o.amsgrad ? buffers[2].data<T>() : nullptr;
    const int64_t n = param.numel();
    // One pass over the arrays, a contiguous share per thread; f32 in SIMD (the same bits).
    ParallelRange(n, ParallelUpdate(n) ? 0 : n + 1, [&](int64_t s, int64_t e) {
      if constexpr (std::is_same_v<T, float>)
        cpu::simd::AdamUpdate(a, p + s, g + s, m + s, v + s, vmax ? vmax + s : nullptr, e - s);
      else cpu::ref::AdamUpdate(a, p + s, g + s, m + s, v + s, vmax ? vmax + s : nullptr, e - s);
    });
  });
}

// ---- gradient clipping ----

namespace {
// The p-norm of n values, accumulated in double; NaN anywhere gives NaN.
template <typename T>
double NormOf(const T* x, int64_t n, double p) {
  double acc = 0;
  if (std::isinf(p)) {
    for (int64_t j = 0; j < n; ++j) {
      const double a = std::fabs(static_cast<double>(x[j]));
      if (std::isnan(a)) return a;
      acc = std::max(acc, a);
    }
  } else if (p == 2) {
    for (int64_t j = 0; j < n; ++j) acc += static_cast<double>(x[j]) * x[j];
    acc = std::sqrt(acc);
  } else if (p == 1) {
    for (int64_t j = 0; j < n; ++j) acc += std::fabs(static_cast<double>(x[j]));
  } else {
    for (int64_t j = 0; j < n; ++j) acc += std::pow(std::fabs(static_cast<double>(x[j])), p);
    acc = std::pow(acc, 1 / p);
  }
  return acc;
}

double GradNorm(const Tensor& g, double p) {
  const Tensor c = g.Contiguous();
  double norm = 0;
  DispatchParamType(c, "ClipGradNorm", [&](auto tag) {
    using T = decltype(tag);
    norm = NormOf(c.data<T>(), c.numel(), p);
  });
  return norm;
}

template <typename W>
double ClipIn(const std::vector<Tensor>& grads, double max_norm, double p,
              bool error_if_nonfinite) {
  // torch computes each gradient's norm and the norm of those norms in the gradients' dtype;
  // here sums run in double and each norm is rounded to that dtype, as torch's result is.
  std::vector<double> norms;
  for (const Tensor& g : grads) norms.push_back(static_cast<W>(GradNorm(g, p)));
  const W total = static_cast<W>(NormOf(norms.data(), static_cast<int64_t>(norms.size()), p));
  ATTEND_CHECK(!error_if_nonfinite || std::isfinite(total),
               "ClipGradNorm: the total norm of "
               "order ",
               p, " of the gradients is ", total, ", so they cannot be clipped");
  // torch: clip_coef = max_norm / (total + 1e-6) with the division done as
  // reciprocal(total + 1e-6) * max_norm, then clamp(max=1) (NaN stays NaN).
  W coef = (W(1) / (total + static_cast<W>(1e-6))) * static_cast<W>(max_norm);
  if (coef > W(1)) coef = W(1);
  if (coef == W(1)) return total;  // scaling by one changes nothing
  NoGradGuard no_grad;
  for (const Tensor& g0 : grads) {
    Tensor g = g0.is_contiguous() ? g0 : g0.Contiguous();
    DispatchParamType(g, "ClipGradNorm", [&](auto tag) {
      using T = decltype(tag);
      const T c = static_cast<T>(coef);
      T* x = g.data<T>();
      const int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (ParallelUpdate(n))
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] * c;
    });
    if (!g.SameStorage(g0)) {
      Tensor dst = g0;
      dst.CopyFrom(g);
    }
  }
  return total;
}
}  // namespace

double ClipGradNorm(const std::vector<Tensor>& params, double max_norm, double norm_type,
                    bool error_if_nonfinite) {
  ATTEND_CHECK(norm_type > 0, "ClipGradNorm: norm_type must be positive or infinity, got ",
               norm_type);
  ATTEND_CHECK(!std::isnan(max_norm), "ClipGradNorm: max_norm is NaN");
  std::vector<Tensor> grads;
  bool all_f32 = true;
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    const Tensor g = p.grad();
    ATTEND_CHECK(IsFloating(g.dtype()), "ClipGradNorm: gradient ", g.str(), " is not floating");
    all_f32 = all_f32 && g.dtype() == DType::kF32;
    grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  return all_f32 ? ClipIn<float>(grads, max_norm, norm_type, error_if_nonfinite)
                 : ClipIn<double>(grads, max_norm, norm_type, error_if_nonfinite);
}

}  // namespace attend::optim
