// Optimizers (SGD, Adam, AdamW), gradient-norm clipping and learning-rate schedules, following
// torch.optim's update rules, each with a state that checkpoints save and restore.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attend/nn.h"
#include "attend/tensor.h"

namespace attend::optim {

using nn::NamedTensors;
// Named scalar state (learning rate, counters); checkpoints keep it in the file's metadata.
using Scalars = std::map<std::string, double>;

// Holds parameter handles and, per parameter, the buffers of its update rule.
//
// State layout (what State() returns and LoadState() accepts), with i the parameter's index in
// params(): "state.<i>.step" (i64 scalar, how many updates parameter i has received) and one
// tensor per buffer, "state.<i>.<buffer>" (e.g. "state.0.exp_avg"), of the parameter's shape and
// dtype. A parameter that has not been updated yet has no entries, as in torch, whose buffers
// are created on the first step. The learning rate and the number of Step() calls are the
// scalars ("lr", "step_count").
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient, in place and without recording history.
  // Parameters without a gradient are skipped (their state and step count do not move), as in
  // torch. Allocates nothing once the buffers exist.
  void Step();
  // Drops every parameter's gradient (torch's zero_grad(set_to_none=True)).
  void ZeroGrad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  int64_t step_count() const { return step_count_; }
  const std::vector<Tensor>& params() const { return params_; }
  // "SGD", "Adam", "AdamW": checkpoints refuse to load one kind's state into another.
  virtual const char* type() const = 0;

  // The per-parameter state: handles to the live buffers (not copies) and the step counts.
  NamedTensors State() const;
  // Replaces the whole per-parameter state with copies of `state` (all or nothing: on an error
  // nothing changes). Throws naming the first entry that is unknown, misnamed, of the wrong
  // shape or dtype, or the first buffer that is missing.
  void LoadState(const NamedTensors& state);
  // The checks LoadState makes, without loading.
  void CheckState(const NamedTensors& state) const;
  Scalars ScalarState() const;  // {"lr", "step_count"}
  void LoadScalarState(const Scalars& scalars);
  void CheckScalarState(const Scalars& scalars) const;

 protected:
  // Checks the parameters (defined, floating, contiguous leaves, no duplicates).
  Optimizer(std::vector<Tensor> params, double lr, std::vector<std::string> buffer_names);
  // Applies one update to `param`, whose gradient is `grad` (contiguous, same dtype and shape);
  // `buffers` are its buffers in buffer_names() order, and `step` its update count including
  // this one (1 on the first update, when the buffers are freshly zeroed).
  virtual void Update(Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers,
                      int64_t step) = 0;
  const std::vector<std::string>& buffer_names() const { return buffer_names_; }

 private:
  struct ParamState {
    int64_t step = 0;  // 0: not updated yet, no buffers
    std::vector<Tensor> buffers;
  };
  std::vector<Tensor> params_;
  std::vector<std::string> buffer_names_;
  std::vector<ParamState> state_;
  double lr_;
  int64_t step_count_ = 0;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2: added to the gradient as weight_decay * param
  bool nesterov = false;      // needs momentum > 0 and dampening == 0
};

// torch.optim.SGD: g += wd * p; buf = g on the first step, else buf = momentum * buf +
// (1 - dampening) * g; g = nesterov ? g + momentum * buf : buf; p -= lr * g.
// Buffer: "momentum_buffer" (only with momentum != 0).
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  const char* type() const override { return "SGD"; }
  const SGDOptions& options() const { return options_; }

 protected:
  void Update(Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers,
              int64_t step) override;

 private:
  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 in the gradient; AdamW: decoupled
  bool amsgrad = false;
};

// torch.optim.Adam: g += wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// (amsgrad: vmax = max(vmax, v), used in place of v);
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// Buffers: "exp_avg", "exp_avg_sq" and with amsgrad "max_exp_avg_sq".
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options);
  const char* type() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled);
  void Update(Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers,
              int64_t step) override;

 private:
  AdamOptions options_;
  bool decoupled_;
};

// AdamW's options: Adam's, with torch's AdamW default weight_decay of 1e-2 (a separate struct so
// that designated initializers such as {.lr = 3e-4} keep that default).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

// torch.optim.AdamW: Adam whose weight decay is decoupled from the gradient:
// p *= 1 - lr * weight_decay before the Adam update.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
};

// torch.nn.utils.clip_grad_norm_: the norm of all gradients together (as one vector), and when
// it exceeds max_norm every gradient is scaled by max_norm / (norm + 1e-6). norm_type is p > 0
// or infinity. Parameters without a gradient are ignored; returns the total norm (0 when no
// parameter has a gradient). A non-finite norm throws if error_if_nonfinite, and otherwise
// scales the gradients by it (NaN), as torch.
double ClipGradNorm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                    bool error_if_nonfinite = false);

// ---------------------------------------------------------------------------------------------
// Learning-rate schedules. Each drives its optimizer's lr. Epoch-style schedules follow
// torch.optim.lr_scheduler: construction counts as step 0 (last_epoch() == 0) and sets the lr
// for it; every Step() (called after Optimizer::Step()) advances last_epoch() and sets the lr.
// ---------------------------------------------------------------------------------------------
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch/step. ReduceLROnPlateau needs Step(metric) instead.
  virtual void Step();
  // ReduceLROnPlateau only: one epoch with the monitored metric.
  virtual void Step(double metric);

  int64_t last_epoch() const { return last_epoch_; }
  double lr() const { return optimizer_.lr(); }
  double base_lr() const { return base_lr_; }
  // "ConstantLR", "InverseSqrtWarmup", "StepLR", "ReduceLROnPlateau".
  virtual const char* type() const = 0;

  // Counters and running values ("last_epoch", "base_lr", ...); the optimizer's lr itself is
  // part of the optimizer's state.
  virtual Scalars State() const;
  // All or nothing; throws naming a missing or unexpected key or an invalid value.
  void LoadState(const Scalars& state);
  // The checks LoadState makes: the keys must be exactly State()'s.
  virtual void CheckState(const Scalars& state) const;

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // The lr for last_epoch() (epoch-style schedules); called by Step() after the increment and
  // by InitialStep().
  virtual double ComputeLr() { return optimizer_.lr(); }
  // torch's constructor step: last_epoch = 0 and lr = ComputeLr(). Derived constructors call it.
  void InitialStep();
  // Loads the keys this class adds to State(), already checked.
  virtual void LoadDerivedState(const Scalars& state) {}

  Optimizer& optimizer_;
  double base_lr_;
  int64_t last_epoch_ = 0;
};

// torch.optim.lr_scheduler.ConstantLR: lr = base_lr * factor until last_epoch reaches
// total_iters, then base_lr (torch's chained update: lr * factor at epoch 0, lr / factor at
// total_iters). Defaults leave the lr constant; torch's defaults are factor 1/3, total_iters 5.
class ConstantLR : public LRScheduler {
 public:
  explicit ConstantLR(Optimizer& optimizer, double factor = 1.0, int64_t total_iters = 0);
  const char* type() const override { return "ConstantLR"; }

 protected:
  double ComputeLr() override;

 private:
  double factor_;
  int64_t total_iters_;
};

// The Transformer's warmup then inverse-square-root decay, with s = max(last_epoch, 1):
//   Transformer form: lr = factor * (d_model^-0.5 * min(s^-0.5, s * warmup^-1.5))
//   Peak form:        lr = lr_peak * min(s / warmup, sqrt(warmup / s))
// Both equal torch's LambdaLR over an optimizer of lr 1 with that lambda (clamping s to 1 at
// epoch 0 is the Annotated Transformer's choice). The optimizer's own lr is replaced, not scaled.
//   InverseSqrtWarmup s(opt, InverseSqrtWarmup::Transformer{.d_model = 512, .warmup = 4000});
//   InverseSqrtWarmup s(opt, InverseSqrtWarmup::Peak{.lr_peak = 1e-3, .warmup = 4000});
class InverseSqrtWarmup : public LRScheduler {
 public:
  struct Transformer {
    int64_t d_model = 512;
    int64_t warmup = 4000;
    double factor = 1.0;
  };
  struct Peak {
    double lr_peak = 1e-3;
    int64_t warmup = 4000;
  };
  InverseSqrtWarmup(Optimizer& optimizer, const Transformer& form);
  InverseSqrtWarmup(Optimizer& optimizer, const Peak& form);
  const char* type() const override { return "InverseSqrtWarmup"; }
  // The lr of this schedule at step s >= 1.
  double LrAt(int64_t s) const;

 protected:
  double ComputeLr() override;

 private:
  bool transformer_;
  double scale_;  // factor or lr_peak
  int64_t d_model_ = 0;
  int64_t warmup_;
};

// torch.optim.lr_scheduler.StepLR: lr *= gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  const char* type() const override { return "StepLR"; }

 protected:
  double ComputeLr() override;

 private:
  int64_t step_size_;
  double gamma_;
};

struct PlateauOptions {
  enum class Mode { kMin, kMax };
  enum class ThresholdMode { kRel, kAbs };
  Mode mode = Mode::kMin;
  double factor = 0.1;  // new lr = lr * factor, in [0, 1)
  int64_t patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::kRel;
  int64_t cooldown = 0;
  double min_lr = 0.0;
  double eps = 1e-8;  // a reduction smaller than this is skipped
};

// torch.optim.lr_scheduler.ReduceLROnPlateau: after more than `patience` epochs without an
// improvement of the metric (beyond threshold, relative or absolute), lr = max(lr * factor,
// min_lr), followed by `cooldown` epochs in which bad epochs are not counted.
class ReduceLROnPlateau : public LRScheduler {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, const PlateauOptions& options = {});
  const char* type() const override { return "ReduceLROnPlateau"; }
  void Step() override;  // throws: this schedule needs the metric
  void Step(double metric) override;
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }
  Scalars State() const override;
  void CheckState(const Scalars& state) const override;

 protected:
  void LoadDerivedState(const Scalars& state) override;

 private:
  bool IsBetter(double a, double best) const;
  PlateauOptions options_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
};

}  // namespace attend::optim
