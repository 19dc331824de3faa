// Learning-rate schedules: the LRScheduler base, ConstantLR, InverseSqrtWarmup, StepLR and
// ReduceLROnPlateau. The epoch-style ones reproduce torch.optim.lr_scheduler's chained updates
// (the new lr computed from the current one), so lr sequences match torch's bit for bit.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attend/optim.h"

namespace attend::optim {
namespace {

bool IsCount(double v) {
  return std::isfinite(v) && v >= 0 && v < 9007199254740992.0 && v == std::floor(v);
}

}  // namespace

// ---- LRScheduler ----

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

void LRScheduler::InitialStep() {
  last_epoch_ = 0;
  optimizer_.set_lr(ComputeLr());
}

void LRScheduler::Step() {
  ++last_epoch_;
  optimizer_.set_lr(ComputeLr());
}

void LRScheduler::Step(double metric) {
  ATTEND_CHECK(false, type(), "::Step(metric): only ReduceLROnPlateau takes a metric; call Step()");
}

Scalars LRScheduler::State() const {
  return {{"last_epoch", static_cast<double>(last_epoch_)}, {"base_lr", base_lr_}};
}

void LRScheduler::CheckState(const Scalars& state) const {
  const std::string op = std::string(type()) + "::LoadState";
  const Scalars expected = State();
  for (const auto& [key, value] : state)
    ATTEND_CHECK(expected.count(key), op, ": unexpected key '", key, "'");
  for (const auto& [key, value] : expected)
    ATTEND_CHECK(state.count(key), op, ": key '", key, "' is missing");
  ATTEND_CHECK(IsCount(state.at("last_epoch")), op, ": last_epoch ", state.at("last_epoch"),
               " is not a non-negative whole number");
  const double base_lr = state.at("base_lr");
  ATTEND_CHECK(std::isfinite(base_lr) && base_lr >= 0, op, ": invalid base_lr ", base_lr);
}

void LRScheduler::LoadState(const Scalars& state) {
  CheckState(state);
  last_epoch_ = static_cast<int64_t>(state.at("last_epoch"));
  base_lr_ = state.at("base_lr");
  LoadDerivedState(state);
}

// ---- ConstantLR ----

ConstantLR::ConstantLR(Optimizer& optimizer, double factor, int64_t total_iters)
    : LRScheduler(optimizer), factor_(factor), total_iters_(total_iters) {
  // torch allows 0, then divides by it at total_iters; a factor of 0 is refused here instead.
  ATTEND_CHECK(factor > 0 && factor <= 1, "ConstantLR: factor must be in (0, 1], got ", factor);
  ATTEND_CHECK(total_iters >= 0, "ConstantLR: total_iters must be >= 0, got ", total_iters);
  InitialStep();
}

double ConstantLR::ComputeLr() {
  const double lr = optimizer_.lr();
  if (last_epoch_ == 0) return lr * factor_;
  if (last_epoch_ != total_iters_) return lr;
  return lr * (1.0 / factor_);
}

// ---- InverseSqrtWarmup ----

InverseSqrtWarmup::InverseSqrtWarmup(Optimizer& optimizer, const Transformer& form)
    : LRScheduler(optimizer),
      transformer_(true),
      scale_(form.factor),
      d_model_(form.d_model),
      warmup_(form.warmup) {
  ATTEND_CHECK(form.d_model >= 1, "InverseSqrtWarmup: d_model must be >= 1, got ", form.d_model);
  ATTEND_CHECK(form.warmup >= 1, "InverseSqrtWarmup: warmup must be >= 1, got ", form.warmup);
  ATTEND_CHECK(std::isfinite(form.factor) && form.factor >= 0, "InverseSqrtWarmup: invalid factor ",
               form.factor);
  InitialStep();
}

InverseSqrtWarmup::InverseSqrtWarmup(Optimizer& optimizer, const Peak& form)
    : LRScheduler(optimizer), transformer_(false), scale_(form.lr_peak), warmup_(form.warmup) {
  ATTEND_CHECK(form.warmup >= 1, "InverseSqrtWarmup: warmup must be >= 1, got ", form.warmup);
  ATTEND_CHECK(std::isfinite(form.lr_peak) && form.lr_peak >= 0,
               "InverseSqrtWarmup: invalid lr_peak ", form.lr_peak);
  InitialStep();
}

double InverseSqrtWarmup::LrAt(int64_t step) const {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  const double w = static_cast<double>(warmup_);
  // The order of operations is the Python lambda's, so the values agree exactly.
  if (transformer_) {
    return scale_ * (std::pow(static_cast<double>(d_model_), -0.5) *
                     std::min(std::pow(s, -0.5), s * std::pow(w, -1.5)));
  }
  return scale_ * std::min(s / w, std::sqrt(w / s));
}

double InverseSqrtWarmup::ComputeLr() { return LrAt(last_epoch_); }

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  ATTEND_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got ", step_size);
  ATTEND_CHECK(std::isfinite(gamma) && gamma >= 0, "StepLR: invalid gamma ", gamma);
  InitialStep();
}

double StepLR::ComputeLr() {
  const double lr = optimizer_.lr();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lr;
  return lr * gamma_;
}

// ---- ReduceLROnPlateau ----

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const PlateauOptions& options)
    : LRScheduler(optimizer), options_(options) {
  const PlateauOptions& o = options;
  ATTEND_CHECK(o.factor >= 0 && o.factor < 1, "ReduceLROnPlateau: factor must be in [0, 1), got ",
               o.factor);
  ATTEND_CHECK(o.patience >= 0, "ReduceLROnPlateau: patience must be >= 0, got ", o.patience);
  ATTEND_CHECK(o.cooldown >= 0, "ReduceLROnPlateau: cooldown must be >= 0, got ", o.cooldown);
  ATTEND_CHECK(std::isfinite(o.threshold), "ReduceLROnPlateau: invalid threshold ", o.threshold);
  ATTEND_CHECK(std::isfinite(o.min_lr) && o.min_lr >= 0, "ReduceLROnPlateau: invalid min_lr ",
               o.min_lr);
  ATTEND_CHECK(std::isfinite(o.eps) && o.eps >= 0, "ReduceLROnPlateau: invalid eps ", o.eps);
  // torch's "mode_worse": every first metric is an improvement.
  best_ = o.mode == PlateauOptions::Mode::kMin ? std::numeric_limits<double>::infinity()
                                               : -std::numeric_limits<double>::infinity();
  // Unlike the epoch schedules, torch's ReduceLROnPlateau leaves the lr alone at construction.
}

void ReduceLROnPlateau::Step() {
  ATTEND_CHECK(false,
               "ReduceLROnPlateau::Step: this schedule needs the monitored metric; "
               "call Step(metric)");
}

bool ReduceLROnPlateau::IsBetter(double a, double best) const {
  using Mode = PlateauOptions::Mode;
  using ThresholdMode = PlateauOptions::ThresholdMode;
  const PlateauOptions& o = options_;
  if (o.mode == Mode::kMin && o.threshold_mode == ThresholdMode::kRel)
    return a < best * (1.0 - o.threshold);
  if (o.mode == Mode::kMin) return a < best - o.threshold;
  if (o.threshold_mode == ThresholdMode::kRel) return a > best * (o.threshold + 1.0);
  return a > best + o.threshold;
}

void ReduceLROnPlateau::Step(double metric) {
  ++last_epoch_;
  if (IsBetter(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs during the cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience) {
    const double old_lr = optimizer_.lr();
    const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    if (old_lr - new_lr > options_.eps) optimizer_.set_lr(new_lr);
    cooldown_counter_ = options_.cooldown;
    num_bad_epochs_ = 0;
  }
}

Scalars ReduceLROnPlateau::State() const {
  Scalars s = LRScheduler::State();
  s["best"] = best_;
  s["num_bad_epochs"] = static_cast<double>(num_bad_epochs_);
  s["cooldown_counter"] = static_cast<double>(cooldown_counter_);
  return s;
}

void ReduceLROnPlateau::CheckState(const Scalars& state) const {
  LRScheduler::CheckState(state);
  const std::string op = "ReduceLROnPlateau::LoadState";
  ATTEND_CHECK(!std::isnan(state.at("best")), op, ": best is NaN");
  for (const char* key : {"num_bad_epochs", "cooldown_counter"})
    ATTEND_CHECK(IsCount(state.at(key)), op, ": ", key, " ", state.at(key),
                 " is not a non-negative whole number");
}

void ReduceLROnPlateau::LoadDerivedState(const Scalars& state) {
  best_ = state.at("best");
  num_bad_epochs_ = static_cast<int64_t>(state.at("num_bad_epochs"));
  cooldown_counter_ = static_cast<int64_t>(state.at("cooldown_counter"));
}

}  // namespace attend::optim
