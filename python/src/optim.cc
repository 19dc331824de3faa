// attend.optim: SGD, Adam, AdamW over lists of tensors as torch.optim, their state dicts,
// gradient-norm clipping, and the learning-rate schedules (attend.optim.lr_scheduler).
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "attend/error.h"
#include "attend/optim.h"
#include "bind.h"

namespace attend::python {
namespace {

using namespace pybind11::literals;
namespace o = attend::optim;

std::string TypeName(const py::handle& h) {
  return py::str(py::type::of(h).attr("__name__")).cast<std::string>();
}

// The parameters as torch.optim takes them: an iterable of tensors (m.parameters()).
std::vector<Tensor> ParamList(const py::iterable& params, const char* who) {
  std::vector<Tensor> out;
  for (const py::handle& p : params) {
    ATTEND_CHECK(!py::isinstance<py::dict>(p), who,
                 ": parameter groups (dicts) are not supported; pass one list of tensors");
    ATTEND_CHECK(py::isinstance<Tensor>(p), who, ": parameters must be attend Tensors, got a ",
                 TypeName(p));
    out.push_back(p.cast<Tensor>());
  }
  ATTEND_CHECK(!out.empty(), who, ": got an empty parameter list");
  return out;
}

// state_dict(): the per-parameter tensors under their names ("state.0.exp_avg", live handles)
// and the scalars ("lr", "step_count").
py::dict OptimizerStateDict(const o::Optimizer& opt) {
  py::dict d;
  for (const auto& [name, t] : opt.State()) d[py::str(name)] = t;
  for (const auto& [name, v] : opt.ScalarState()) {
    if (name == "step_count") d[py::str(name)] = static_cast<int64_t>(v);
    else d[py::str(name)] = v;
  }
  return d;
}

// load_state_dict(): tensors and numbers split, both checked before either is loaded.
void OptimizerLoadStateDict(o::Optimizer& opt, const py::dict& d) {
  nn::NamedTensors tensors;
  o::Scalars scalars;
  for (const auto& [k, v] : d) {
    ATTEND_CHECK(py::isinstance<py::str>(k), "load_state_dict: keys must be strings");
    const std::string name = k.cast<std::string>();
    if (py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v)) {
      scalars[name] = v.cast<double>();
    } else {
      tensors.emplace_back(name, ToTensor(v, name.c_str()));
    }
  }
  opt.CheckState(tensors);
  opt.CheckScalarState(scalars);
  opt.LoadState(tensors);
  opt.LoadScalarState(scalars);
}

py::dict ScalarsToDict(const o::Scalars& s) {
  py::dict d;
  for (const auto& [k, v] : s) d[py::str(k)] = v;
  return d;
}

o::Scalars ScalarsFromDict(const py::dict& d) {
  o::Scalars s;
  for (const auto& [k, v] : d) s[k.cast<std::string>()] = v.cast<double>();
  return s;
}

double ClipGradNormPy(const py::object& parameters, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  std::vector<Tensor> params;
  if (py::isinstance<Tensor>(parameters)) {
    params.push_back(parameters.cast<Tensor>());
  } else {
    for (const py::handle& p : parameters) {
      ATTEND_CHECK(py::isinstance<Tensor>(p), "clip_grad_norm_: parameters must be attend ",
                   "Tensors, got a ", TypeName(p));
      params.push_back(p.cast<Tensor>());
    }
  }
  return o::ClipGradNorm(params, max_norm, norm_type, error_if_nonfinite);
}

void BindSchedules(py::module_& m) {
  py::class_<o::LRScheduler>(m, "LRScheduler",
                             "Base of the schedules: each step() sets its optimizer's lr.")
      .def(
          "step",
          [](o::LRScheduler& s, const py::object& metrics) {
            if (metrics.is_none()) s.Step();
            else s.Step(metrics.cast<double>());
          },
          "metrics"_a = py::none(),
          "Advances one epoch (after optimizer.step()); ReduceLROnPlateau needs `metrics`.")
      .def_property_readonly("last_epoch", &o::LRScheduler::last_epoch,
                             "Steps taken (0 after construction).")
      .def_property_readonly("lr", &o::LRScheduler::lr, "The optimizer's current lr.")
      .def_property_readonly("base_lr", &o::LRScheduler::base_lr, "The lr at construction.")
      .def_property_readonly(
          "base_lrs", [](const o::LRScheduler& s) { return std::vector<double>{s.base_lr()}; },
          "[base_lr], as torch's list per parameter group.")
      .def(
          "get_last_lr", [](const o::LRScheduler& s) { return std::vector<double>{s.lr()}; },
          "[lr] after the last step, as torch.")
      .def_property_readonly("type", &o::LRScheduler::type)
      .def(
          "state_dict", [](const o::LRScheduler& s) { return ScalarsToDict(s.State()); },
          "Counters and running values (a dict of floats).")
      .def(
          "load_state_dict",
          [](o::LRScheduler& s, const py::dict& d) { s.LoadState(ScalarsFromDict(d)); },
          "state_dict"_a, "Restores state_dict()'s values (all keys exactly, all or nothing).");

  py::class_<o::ConstantLR, o::LRScheduler>(
      m, "ConstantLR",
      "lr = base_lr * factor until last_epoch reaches total_iters, then base_lr "
      "(torch.optim.lr_scheduler.ConstantLR).")
      .def(py::init<o::Optimizer&, double, int64_t>(), "optimizer"_a, "factor"_a = 1.0 / 3.0,
           "total_iters"_a = 5, py::keep_alive<1, 2>());

  py::class_<o::InverseSqrtWarmup, o::LRScheduler>(
      m, "InverseSqrtWarmup",
      "Warmup then inverse-square-root decay: with d_model, factor * d_model^-0.5 * "
      "min(s^-0.5, s * warmup^-1.5); with lr_peak, lr_peak * min(s / warmup, sqrt(warmup / s)).")
      .def(py::init([](o::Optimizer& opt, const py::object& d_model, int64_t warmup, double factor,
                       const py::object& lr_peak) {
             ATTEND_CHECK(d_model.is_none() != lr_peak.is_none(),
                          "InverseSqrtWarmup: give exactly one of d_model (the Transformer "
                          "form) and lr_peak (the peak form)");
             ATTEND_CHECK(warmup > 0, "InverseSqrtWarmup: warmup must be positive, got ", warmup);
             if (!d_model.is_none()) {
               o::InverseSqrtWarmup::Transformer t;
               t.d_model = d_model.cast<int64_t>();
               t.warmup = warmup;
               t.factor = factor;
               ATTEND_CHECK(t.d_model > 0, "InverseSqrtWarmup: d_model must be positive, got ",
                            t.d_model);
               return new o::InverseSqrtWarmup(opt, t);
             }
             o::InverseSqrtWarmup::Peak p;
             p.lr_peak = lr_peak.cast<double>();
             p.warmup = warmup;
             return new o::InverseSqrtWarmup(opt, p);
           }),
           "optimizer"_a, "d_model"_a = py::none(), "warmup"_a = 4000, "factor"_a = 1.0,
           "lr_peak"_a = py::none(), py::keep_alive<1, 2>())
      .def("lr_at", &o::InverseSqrtWarmup::LrAt, "s"_a, "The schedule's lr at step s >= 1.");

  py::class_<o::StepLR, o::LRScheduler>(
      m, "StepLR", "lr *= gamma every step_size epochs (torch.optim.lr_scheduler.StepLR).")
      .def(py::init([](o::Optimizer& opt, int64_t step_size, double gamma) {
             ATTEND_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
             return new o::StepLR(opt, step_size, gamma);
           }),
           "optimizer"_a, "step_size"_a, "gamma"_a = 0.1, py::keep_alive<1, 2>());

  py::class_<o::ReduceLROnPlateau, o::LRScheduler>(
      m, "ReduceLROnPlateau",
      "lr = max(lr * factor, min_lr) after more than `patience` epochs without improvement "
      "(torch.optim.lr_scheduler.ReduceLROnPlateau); step(metrics).")
      .def(py::init([](o::Optimizer& opt, const std::string& mode, double factor, int64_t patience,
                       double threshold, const std::string& threshold_mode, int64_t cooldown,
                       double min_lr, double eps) {
             ATTEND_CHECK(mode == "min" || mode == "max",
                          "ReduceLROnPlateau: mode must be 'min' or 'max', got '", mode, "'");
             ATTEND_CHECK(threshold_mode == "rel" || threshold_mode == "abs",
                          "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got '",
                          threshold_mode, "'");
             ATTEND_CHECK(patience >= 0 && cooldown >= 0,
                          "ReduceLROnPlateau: patience and cooldown must be >= 0");
             o::PlateauOptions p;
             p.mode = mode == "min" ? o::PlateauOptions::Mode::kMin : o::PlateauOptions::Mode::kMax;
             p.factor = factor;
             p.patience = patience;
             p.threshold = threshold;
             p.threshold_mode = threshold_mode == "rel" ? o::PlateauOptions::ThresholdMode::kRel
                                                        : o::PlateauOptions::ThresholdMode::kAbs;
             p.cooldown = cooldown;
             p.min_lr = min_lr;
             p.eps = eps;
             return new o::ReduceLROnPlateau(opt, p);
           }),
           "optimizer"_a, "mode"_a = "min", "factor"_a = 0.1, "patience"_a = 10,
           "threshold"_a = 1e-4, "threshold_mode"_a = "rel", "cooldown"_a = 0, "min_lr"_a = 0.0,
           "eps"_a = 1e-8, py::keep_alive<1, 2>())
      .def_property_readonly("best", &o::ReduceLROnPlateau::best)
      .def_property_readonly("num_bad_epochs", &o::ReduceLROnPlateau::num_bad_epochs)
      .def_property_readonly("cooldown_counter", &o::ReduceLROnPlateau::cooldown_counter);
}

}  // namespace

void BindOptim(py::module_& m) {
  py::class_<o::Optimizer>(m, "Optimizer",
                           "Base of the optimizers: parameter handles and per-parameter state.")
      .def("step", &o::Optimizer::Step, py::call_guard<py::gil_scoped_release>(),
           "Updates every parameter that has a gradient, in place.")
      .def(
          "zero_grad",
          [](o::Optimizer& opt, bool set_to_none) {
            if (set_to_none) {
              opt.ZeroGrad();
              return;
            }
            for (const Tensor& p : opt.params()) {
              Tensor g = p.grad();
              if (g.defined()) g.Fill(0.0);
            }
          },
          "set_to_none"_a = true, "Drops (or zeroes) every parameter's gradient.")
      .def_property("lr", &o::Optimizer::lr, &o::Optimizer::set_lr, "The learning rate.")
      .def_property_readonly("step_count", &o::Optimizer::step_count,
                             "How many times step() was called.")
      .def_property_readonly("params", &o::Optimizer::params, "The parameters, in order.")
      .def_property_readonly("type", &o::Optimizer::type, "'SGD', 'Adam' or 'AdamW'.")
      .def_property_readonly(
          "state",
          [](const o::Optimizer& opt) {
            py::dict d;
            for (const auto& [name, t] : opt.State()) d[py::str(name)] = t;
            return d;
          },
          "The per-parameter buffers and step counts ('state.<i>.exp_avg', ...), live.")
      .def("state_dict", &OptimizerStateDict,
           "The state (tensors 'state.<i>.<buffer>') and the scalars 'lr', 'step_count'.")
      .def("load_state_dict", &OptimizerLoadStateDict, "state_dict"_a,
           "Restores state_dict()'s contents (all checked first; copies).")
      .def("__repr__", [](const o::Optimizer& opt) {
        return std::string(opt.type()) +
               "(lr=" + py::repr(py::float_(opt.lr())).cast<std::string>() +
               ", params=" + std::to_string(opt.params().size()) + ")";
      });

  py::class_<o::SGD, o::Optimizer>(
      m, "SGD", "Stochastic gradient descent with momentum and Nesterov, as torch.optim.SGD.")
      .def(py::init([](const py::iterable& params, double lr, double momentum, double dampening,
                       double weight_decay, bool nesterov) {
             o::SGDOptions opt;
             opt.lr = lr;
             opt.momentum = momentum;
             opt.dampening = dampening;
             opt.weight_decay = weight_decay;
             opt.nesterov = nesterov;
             return new o::SGD(ParamList(params, "SGD"), opt);
           }),
           "params"_a, "lr"_a = 0.01, "momentum"_a = 0.0, "dampening"_a = 0.0,
           "weight_decay"_a = 0.0, "nesterov"_a = false)
      .def_property_readonly("momentum", [](const o::SGD& s) { return s.options().momentum; })
      .def_property_readonly("weight_decay",
                             [](const o::SGD& s) { return s.options().weight_decay; });

  py::class_<o::Adam, o::Optimizer>(m, "Adam", "Adam (and AMSGrad), as torch.optim.Adam.")
      .def(py::init([](const py::iterable& params, double lr, std::pair<double, double> betas,
                       double eps, double weight_decay, bool amsgrad) {
             o::AdamOptions opt;
             opt.lr = lr;
             opt.beta1 = betas.first;
             opt.beta2 = betas.second;
             opt.eps = eps;
             opt.weight_decay = weight_decay;
             opt.amsgrad = amsgrad;
             return new o::Adam(ParamList(params, "Adam"), opt);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::make_pair(0.9, 0.999), "eps"_a = 1e-8,
           "weight_decay"_a = 0.0, "amsgrad"_a = false)
      .def_property_readonly(
          "betas",
          [](const o::Adam& a) { return py::make_tuple(a.options().beta1, a.options().beta2); })
      .def_property_readonly("eps", [](const o::Adam& a) { return a.options().eps; })
      .def_property_readonly("weight_decay",
                             [](const o::Adam& a) { return a.options().weight_decay; });

  py::class_<o::AdamW, o::Adam>(m, "AdamW",
                                "Adam with decoupled weight decay, as torch.optim.AdamW.")
      .def(py::init([](const py::iterable& params, double lr, std::pair<double, double> betas,
                       double eps, double weight_decay, bool amsgrad) {
             o::AdamWOptions opt;
             opt.lr = lr;
             opt.beta1 = betas.first;
             opt.beta2 = betas.second;
             opt.eps = eps;
             opt.weight_decay = weight_decay;
             opt.amsgrad = amsgrad;
             return new o::AdamW(ParamList(params, "AdamW"), opt);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::make_pair(0.9, 0.999), "eps"_a = 1e-8,
           "weight_decay"_a = 1e-2, "amsgrad"_a = false);

  m.def("clip_grad_norm_", &ClipGradNormPy, "parameters"_a, "max_norm"_a, "norm_type"_a = 2.0,
        "error_if_nonfinite"_a = false,
        "Scales all gradients together so that their norm is at most max_norm; returns the "
        "norm before clipping (as torch.nn.utils.clip_grad_norm_).");

  py::module_ sched =
      m.def_submodule("lr_scheduler", "Learning-rate schedules, as torch.optim.lr_scheduler");
  BindSchedules(sched);
  for (const char* name :
       {"LRScheduler", "ConstantLR", "InverseSqrtWarmup", "StepLR", "ReduceLROnPlateau"})
    m.attr(name) = sched.attr(name);
}

}  // namespace attend::python
