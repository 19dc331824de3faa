// attend.nn: the Module base (parameters, state dicts with PyTorch's names, train/eval), every
// layer of attend/nn.h and attend/nn/*.h, the initialisers (attend.nn.init), gradient clipping
// (attend.nn.utils) and safetensors files and checkpoints.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "attend/error.h"
#include "attend/nn.h"
#include "attend/nn/advanced_lstm.h"
#include "attend/nn/conv.h"
#include "attend/nn/rnn.h"
#include "attend/optim.h"
#include "bind.h"

namespace attend::python {
namespace {

using namespace pybind11::literals;
namespace n = attend::nn;

// ---- argument helpers ----

Generator& Gen(Generator* g) { return g != nullptr ? *g : DefaultGenerator(); }

DType DTypeArg(const py::object& dtype) {
  return DTypeFromName(py::str(dtype).cast<std::string>());
}

Tensor OptionalTensor(const py::object& obj, const char* what) {
  return obj.is_none() ? Tensor() : ToTensor(obj, what);
}

py::object TensorOrNone(const Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }

std::string PathArg(const py::object& path) {
  return py::module_::import("os").attr("fspath")(path).cast<std::string>();
}

// An int for both sides or a pair (h, w), as PyTorch's kernel_size / stride / padding.
Size2 Size2Arg(const py::object& obj, const char* what) {
  if (py::isinstance<py::int_>(obj)) return Size2(obj.cast<int64_t>());
  ATTEND_CHECK(py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj), what,
               ": an int or a pair of ints, got ", py::str(obj).cast<std::string>());
  py::sequence s = py::reinterpret_borrow<py::sequence>(obj);
  ATTEND_CHECK(s.size() == 2, what, ": a pair of ints, got ", s.size(), " values");
  return Size2(s[0].cast<int64_t>(), s[1].cast<int64_t>());
}

std::optional<Size2> OptionalSize2(const py::object& obj, const char* what) {
  if (obj.is_none()) return std::nullopt;
  return Size2Arg(obj, what);
}

py::tuple Size2Tuple(const Size2& s) { return py::make_tuple(s.h, s.w); }

// A dict name -> Tensor (values may be anything ToTensor takes), keys in the dict's order.
n::NamedTensors NamedFromDict(const py::dict& d, const char* what) {
  n::NamedTensors out;
  for (const auto& [k, v] : d) {
    ATTEND_CHECK(py::isinstance<py::str>(k), what, ": keys must be strings, got ",
                 py::str(k).cast<std::string>());
    const std::string name = k.cast<std::string>();
    out.emplace_back(name, ToTensor(v, name.c_str()));
  }
  return out;
}

py::dict DictFromNamed(const n::NamedTensors& named, bool detach) {
  py::dict d;
  for (const auto& [name, t] : named) d[py::str(name)] = detach ? t.Detach() : t;
  return d;
}

std::string ShapeStr(const Shape& s) { return s.str(); }

// ---- Module ----

// Copies `state` into the module's parameters and buffers in place (all checks first, so a
// failed load changes nothing). Returns (missing_keys, unexpected_keys) as torch does.
py::object LoadStateDict(n::Module& m, const py::dict& state, bool strict) {
  const n::NamedTensors own = m.StateDict();
  n::NamedTensors given = NamedFromDict(state, "load_state_dict");
  std::vector<std::string> missing, unexpected;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (const auto& [name, src] : given) {
    const Tensor* dst = nullptr;
    for (const auto& [own_name, t] : own)
      if (own_name == name) dst = &t;
    if (dst == nullptr) {
      unexpected.push_back(name);
      continue;
    }
    ATTEND_CHECK(src.shape() == dst->shape(), "load_state_dict: '", name, "' has shape ",
                 ShapeStr(src.shape()), " but the module's has ", ShapeStr(dst->shape()));
    ATTEND_CHECK(IsFloating(src.dtype()) == IsFloating(dst->dtype()), "load_state_dict: '", name,
                 "' is ", DTypeToName(src.dtype()), " but the module's is ",
                 DTypeToName(dst->dtype()));
    copies.emplace_back(*dst, src);
  }
  for (const auto& [own_name, t] : own) {
    (void)t;
    bool found = false;
    for (const auto& [name, src] : given) found = found || name == own_name;
    if (!found) missing.push_back(own_name);
  }
  if (strict) {
    ATTEND_CHECK(missing.empty(), "load_state_dict: missing key '", missing.front(), "' (",
                 missing.size(), " missing in all)");
    ATTEND_CHECK(unexpected.empty(), "load_state_dict: unexpected key '", unexpected.front(), "' (",
                 unexpected.size(), " unexpected in all)");
  }
  {
    NoGradGuard no_grad;
    for (auto& [dst, src] : copies) dst.CopyFrom(src);
  }
  py::object keys = py::module_::import("attend._attend").attr("nn").attr("_IncompatibleKeys");
  return keys(py::cast(missing), py::cast(unexpected));
}

// A parameter, buffer or child by name (m.weight_ih_l0, m.encoder), as torch's __getattr__.
py::object ModuleGetAttr(const py::object& self, const std::string& name) {
  const n::Module& m = self.cast<const n::Module&>();
  for (const auto& [k, t] : m.NamedParameters())
    if (k == name) return py::cast(t);
  for (const auto& [k, t] : m.NamedBuffers())
    if (k == name) return py::cast(t);
  for (const auto& [k, c] : m.NamedChildren())
    if (k == name) return py::cast(c);
  throw py::attribute_error("'" + py::type::of(self).attr("__name__").cast<std::string>() +
                            "' has no attribute '" + name + "'");
}

template <typename M>
bool TryAdd(n::Sequential& seq, const py::handle& h) {
  if (!py::isinstance<M>(h)) return false;
  seq.Add(h.cast<std::shared_ptr<M>>());
  return true;
}

// Appends a Tensor -> Tensor module, or a Python callable as a parameter-free step.
void SequentialAppend(n::Sequential& seq, const py::handle& h) {
  if (TryAdd<n::Linear>(seq, h) || TryAdd<n::Embedding>(seq, h) ||
      TryAdd<n::LayerNormModule>(seq, h) || TryAdd<n::DropoutModule>(seq, h) ||
      TryAdd<n::Sequential>(seq, h) || TryAdd<n::SinusoidalPositionalEncoding>(seq, h) ||
      TryAdd<n::LearnedPositionalEncoding>(seq, h) || TryAdd<n::Conv1dModule>(seq, h) ||
      TryAdd<n::Conv2dModule>(seq, h) || TryAdd<n::MaxPool2dModule>(seq, h) ||
      TryAdd<n::AvgPool2dModule>(seq, h) || TryAdd<n::GlobalAvgPoolModule>(seq, h))
    return;
  const std::string type = py::str(py::type::of(h).attr("__name__")).cast<std::string>();
  ATTEND_CHECK(!py::isinstance<n::Module>(h), "Sequential: a ", type,
               " is not a Tensor -> Tensor module (its forward takes or returns more)");
  ATTEND_CHECK(PyCallable_Check(h.ptr()) != 0,
               "Sequential: a step must be a module or a "
               "callable Tensor -> Tensor, got a ",
               type);
  // The callable is held for C++ and released under the GIL whoever drops it last.
  Py_INCREF(h.ptr());
  std::shared_ptr<PyObject> fn(h.ptr(), [](PyObject* p) {
    py::gil_scoped_acquire gil;
    Py_DECREF(p);
  });
  seq.AddFunction([fn](const Tensor& x) {
    py::gil_scoped_acquire gil;
    py::object out = py::reinterpret_borrow<py::object>(fn.get())(x);
    return ToTensor(out, "Sequential step result");
  });
}

n::RnnOptions RnnOpts(int64_t num_layers, bool bias, bool batch_first, double dropout,
                      bool bidirectional, uint64_t dropout_seed, const py::object& dtype) {
  n::RnnOptions o;
  o.num_layers = num_layers;
  o.bias = bias;
  o.batch_first = batch_first;
  o.dropout = dropout;
  o.bidirectional = bidirectional;
  o.dropout_seed = dropout_seed;
  o.dtype = DTypeArg(dtype);
  return o;
}

template <typename C>
void RnnProperties(C& cls) {
  using R = typename C::type;
  cls.def_property_readonly("input_size", &R::input_size)
      .def_property_readonly("hidden_size", &R::hidden_size)
      .def_property_readonly("num_layers", [](const R& r) { return r.options().num_layers; })
      .def_property_readonly("bidirectional", [](const R& r) { return r.options().bidirectional; })
      .def_property_readonly("batch_first", [](const R& r) { return r.options().batch_first; })
      .def_property_readonly("bias", [](const R& r) { return r.options().bias; })
      .def_property_readonly("dropout", [](const R& r) { return r.options().dropout; });
}

// Splits (h0, c0) of an LSTM call; either may be None.
std::pair<Tensor, Tensor> LstmState(const py::object& hx, const char* what) {
  if (hx.is_none()) return {};
  ATTEND_CHECK(py::isinstance<py::tuple>(hx) || py::isinstance<py::list>(hx), what,
               ": hx must be a pair (h0, c0) or None");
  py::sequence s = py::reinterpret_borrow<py::sequence>(hx);
  ATTEND_CHECK(s.size() == 2, what, ": hx must be a pair (h0, c0), got ", s.size(), " values");
  return {OptionalTensor(s[0], "h0"), OptionalTensor(s[1], "c0")};
}

n::init::FanMode FanModeArg(const std::string& mode) {
  ATTEND_CHECK(mode == "fan_in" || mode == "fan_out", "kaiming: mode must be 'fan_in' or ",
               "'fan_out', got '", mode, "'");
  return mode == "fan_in" ? n::init::FanMode::kFanIn : n::init::FanMode::kFanOut;
}

// The rectifier slope for kaiming_*: leaky_relu uses `a`, relu is a = 0.
double KaimingSlope(double a, const std::string& nonlinearity) {
  ATTEND_CHECK(nonlinearity == "leaky_relu" || nonlinearity == "relu",
               "kaiming: nonlinearity must be 'leaky_relu' or 'relu', got '", nonlinearity, "'");
  return nonlinearity == "relu" ? 0.0 : a;
}

double ClipGradNormPy(const py::object& parameters, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  std::vector<Tensor> params;
  if (py::isinstance<Tensor>(parameters)) {
    params.push_back(parameters.cast<Tensor>());
  } else {
    for (const py::handle& p : parameters) {
      ATTEND_CHECK(py::isinstance<Tensor>(p), "clip_grad_norm_: parameters must be attend ",
                   "Tensors, got ", py::str(py::type::of(p).attr("__name__")).cast<std::string>());
      params.push_back(p.cast<Tensor>());
    }
  }
  return optim::ClipGradNorm(params, max_norm, norm_type, error_if_nonfinite);
}

void BindInit(py::module_& m) {
  m.def(
      "uniform_",
      [](const py::object& t, double a, double b, Generator* g) {
        Tensor x = ToTensor(t, "tensor");
        n::init::Uniform(x, a, b, Gen(g));
        return x;
      },
      "tensor"_a, "a"_a = 0.0, "b"_a = 1.0, "generator"_a = py::none(),
      "Fills `tensor` in place from U(a, b); returns it.");
  m.def(
      "normal_",
      [](const py::object& t, double mean, double std, Generator* g) {
        Tensor x = ToTensor(t, "tensor");
        n::init::Normal(x, mean, std, Gen(g));
        return x;
      },
      "tensor"_a, "mean"_a = 0.0, "std"_a = 1.0, "generator"_a = py::none(),
      "Fills `tensor` in place from N(mean, std^2); returns it.");
  m.def(
      "constant_",
      [](const py::object& t, double val) {
        Tensor x = ToTensor(t, "tensor");
        n::init::Constant(x, val);
        return x;
      },
      "tensor"_a, "val"_a, "Fills `tensor` in place with `val`; returns it.");
  m.def(
      "zeros_",
      [](const py::object& t) {
        Tensor x = ToTensor(t, "tensor");
        n::init::Constant(x, 0.0);
        return x;
      },
      "tensor"_a, "Fills `tensor` in place with zeros; returns it.");
  m.def(
      "ones_",
      [](const py::object& t) {
        Tensor x = ToTensor(t, "tensor");
        n::init::Constant(x, 1.0);
        return x;
      },
      "tensor"_a, "Fills `tensor` in place with ones; returns it.");
  m.def(
      "xavier_uniform_",
      [](const py::object& t, double gain, Generator* g) {
        Tensor x = ToTensor(t, "tensor");
        n::init::XavierUniform(x, Gen(g), gain);
        return x;
      },
      "tensor"_a, "gain"_a = 1.0, "generator"_a = py::none(),
      "Glorot uniform in place: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)); returns it.");
  m.def(
      "xavier_normal_",
      [](const py::object& t, double gain, Generator* g) {
        Tensor x = ToTensor(t, "tensor");
        n::init::XavierNormal(x, Gen(g), gain);
        return x;
      },
      "tensor"_a, "gain"_a = 1.0, "generator"_a = py::none(),
      "Glorot normal in place: N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)); returns it.");
  m.def(
      "kaiming_uniform_",
      [](const py::object& t, double a, const std::string& mode, const std::string& nl,
         Generator* g) {
        Tensor x = ToTensor(t, "tensor");
        n::init::KaimingUniform(x, Gen(g), KaimingSlope(a, nl), FanModeArg(mode));
        return x;
      },
      "tensor"_a, "a"_a = 0.0, "mode"_a = "fan_in", "nonlinearity"_a = "leaky_relu",
      "generator"_a = py::none(),
      "He uniform in place: U(-b, b), b = sqrt(6 / ((1 + a^2) fan)); returns it.");
  m.def(
      "kaiming_normal_",
      [](const py::object& t, double a, const std::string& mode, const std::string& nl,
         Generator* g) {
        Tensor x = ToTensor(t, "tensor");
        n::init::KaimingNormal(x, Gen(g), KaimingSlope(a, nl), FanModeArg(mode));
        return x;
      },
      "tensor"_a, "a"_a = 0.0, "mode"_a = "fan_in", "nonlinearity"_a = "leaky_relu",
      "generator"_a = py::none(),
      "He normal in place: N(0, s^2), s = sqrt(2 / ((1 + a^2) fan)); returns it.");
  auto fans = [](const py::object& t) { return n::init::FanInOut(ToTensor(t, "tensor")); };
  m.def("calculate_fan_in_and_fan_out", fans, "tensor"_a,
        "(fan_in, fan_out) of a weight [out, in, k...]: in * prod(k), out * prod(k).");
  m.def("_calculate_fan_in_and_fan_out", fans, "tensor"_a,
        "(fan_in, fan_out), as calculate_fan_in_and_fan_out (torch's name).");
}

void BindFiles(py::module_& m) {
  m.def(
      "save_safetensors",
      [](const py::object& path, const py::dict& tensors, const py::object& metadata) {
        const std::string p = PathArg(path);
        n::NamedTensors named = NamedFromDict(tensors, "save_safetensors");
        io::Metadata meta;
        if (!metadata.is_none()) meta = metadata.cast<io::Metadata>();
        py::gil_scoped_release release;
        io::SaveSafetensors(p, named, meta);
      },
      "path"_a, "tensors"_a, "metadata"_a = py::none(),
      "Writes a dict name -> tensor (and str -> str metadata) to a safetensors file, "
      "atomically, with a CRC-32.");
  m.def(
      "load_safetensors",
      [](const py::object& path, bool require_checksum, bool with_metadata) -> py::object {
        const std::string p = PathArg(path);
        io::SafetensorsContents contents;
        {
          py::gil_scoped_release release;
          contents = io::LoadSafetensors(p, require_checksum);
        }
        py::dict tensors = DictFromNamed(contents.tensors, false);
        if (!with_metadata) return py::object(tensors);
        return py::make_tuple(tensors, py::cast(contents.metadata));
      },
      "path"_a, "require_checksum"_a = false, "with_metadata"_a = false,
      "Reads and validates a safetensors file: a dict name -> Tensor (and the metadata dict "
      "with with_metadata=True).");
  m.def(
      "save_checkpoint",
      [](const py::object& path, const n::Module& model, const optim::Optimizer* optimizer,
         const optim::LRScheduler* scheduler, const std::string& config,
         const io::Metadata& extra) {
        const std::string p = PathArg(path);
        py::gil_scoped_release release;
        io::SaveCheckpoint(p, model, optimizer, scheduler, config, extra);
      },
      "path"_a, "model"_a, "optimizer"_a = py::none(), "scheduler"_a = py::none(),
      "config"_a = "{}", "extra"_a = io::Metadata{},
      "Saves a training checkpoint: the model's state dict, the optimizer's and schedule's "
      "state, the config JSON and extra str -> str metadata.");
  m.def(
      "load_checkpoint",
      [](const py::object& path, n::Module& model, optim::Optimizer* optimizer,
         optim::LRScheduler* scheduler) {
        const std::string p = PathArg(path);
        io::Metadata extra;
        std::string config;
        {
          py::gil_scoped_release release;
          config = io::LoadCheckpoint(p, model, optimizer, scheduler, &extra);
        }
        return py::make_tuple(config, py::cast(extra));
      },
      "path"_a, "model"_a, "optimizer"_a = py::none(), "scheduler"_a = py::none(),
      "Loads a checkpoint into existing objects (in place, all checks first); returns "
      "(config_json, extra).");
}

}  // namespace

void BindNn(py::module_& m) {
  m.attr("_IncompatibleKeys") =
      py::module_::import("collections")
          .attr("namedtuple")("IncompatibleKeys",
                              py::make_tuple("missing_keys", "unexpected_keys"));

  py::class_<n::Module, std::shared_ptr<n::Module>>(
      m, "Module", "Base of every layer: named parameters, buffers, sub-modules, train/eval.")
      .def(
          "parameters", [](const n::Module& mod) { return mod.Parameters(); },
          "The trainable tensors, depth-first in registration order.")
      .def(
          "named_parameters", [](const n::Module& mod) { return mod.NamedParameters(); },
          "(dotted name, tensor) pairs of the parameters, PyTorch's names.")
      .def(
          "buffers",
          [](const n::Module& mod) {
            std::vector<Tensor> out;
            for (const auto& [k, t] : mod.NamedBuffers()) out.push_back(t);
            return out;
          },
          "The saved but untrained tensors.")
      .def(
          "named_buffers", [](const n::Module& mod) { return mod.NamedBuffers(); },
          "(dotted name, tensor) pairs of the buffers.")
      .def(
          "children",
          [](const n::Module& mod) {
            std::vector<std::shared_ptr<n::Module>> out;
            for (const auto& [k, c] : mod.NamedChildren()) out.push_back(c);
            return out;
          },
          "The direct sub-modules.")
      .def(
          "named_children", [](const n::Module& mod) { return mod.NamedChildren(); },
          "(name, module) pairs of the direct sub-modules.")
      .def(
          "state_dict", [](const n::Module& mod) { return DictFromNamed(mod.StateDict(), true); },
          "A dict dotted name -> tensor of parameters and buffers (detached, sharing memory).")
      .def("load_state_dict", &LoadStateDict, "state_dict"_a, "strict"_a = true,
           "Copies the dict's tensors into the module in place; with strict, missing or "
           "unexpected names are errors. Returns (missing_keys, unexpected_keys).")
      .def(
          "train",
          [](const py::object& self, bool mode) {
            self.cast<n::Module&>().Train(mode);
            return self;
          },
          "mode"_a = true, "Training mode for this module and its sub-modules; returns self.")
      .def(
          "eval",
          [](const py::object& self) {
            self.cast<n::Module&>().Eval();
            return self;
          },
          "Evaluation mode (dropout off) for this module and its sub-modules; returns self.")
      .def_property_readonly("training", &n::Module::training, "True in training mode.")
      .def(
          "zero_grad",
          [](n::Module& mod, bool set_to_none) {
            if (set_to_none) {
              mod.ZeroGrad();
              return;
            }
            for (const Tensor& p : mod.Parameters()) {
              Tensor g = p.grad();
              if (g.defined()) g.Fill(0.0);
            }
          },
          "set_to_none"_a = true, "Drops (or zeroes) every parameter's gradient.")
      .def("num_parameters", &n::Module::NumParameters,
           "How many scalars the parameters hold in all.")
      .def(
          "__call__",
          [](const py::object& self, const py::args& args, const py::kwargs& kwargs) {
            return self.attr("forward")(*args, **kwargs);
          },
          "Calls forward.")
      .def("__getattr__", &ModuleGetAttr, "A parameter, buffer or sub-module by name.")
      .def("__repr__", [](const py::object& self) {
        return py::type::of(self).attr("__name__").cast<std::string>() +
               "(parameters=" + std::to_string(self.cast<const n::Module&>().NumParameters()) + ")";
      });

  // ---- basic layers ----
  py::class_<n::Linear, n::Module, std::shared_ptr<n::Linear>>(
      m, "Linear", "y = x W^T + b: [..., in_features] -> [..., out_features].")
      .def(py::init([](int64_t in, int64_t out, bool bias, Generator* g, const py::object& dt) {
             return std::make_shared<n::Linear>(in, out, bias, Gen(g), DTypeArg(dt));
           }),
           "in_features"_a, "out_features"_a, "bias"_a = true, py::kw_only(),
           "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::Linear& l, const py::object& x) { return l.Forward(ToTensor(x, "input")); },
          "input"_a, "[..., in_features] -> [..., out_features].")
      .def_readonly("weight", &n::Linear::weight, "[out_features, in_features]")
      .def_property_readonly(
          "bias", [](const n::Linear& l) { return TensorOrNone(l.bias); }, "[out_features] or None")
      .def_property_readonly("in_features", [](const n::Linear& l) { return l.weight.size(1); })
      .def_property_readonly("out_features", [](const n::Linear& l) { return l.weight.size(0); });

  py::class_<n::PrepackedLinear>(
      m, "PrepackedLinear",
      "A Linear layer's f32 weight packed once for small-batch decoding (inference only; a copy "
      "that does not follow later changes).")
      .def(py::init([](const n::Linear& l) { return n::PrepackedLinear(l); }), "linear"_a)
      .def(
          "forward",
          [](const n::PrepackedLinear& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[..., in] -> [..., out].")
      .def(
          "__call__",
          [](const n::PrepackedLinear& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "Calls forward.")
      .def_property_readonly("in_features", &n::PrepackedLinear::in_features)
      .def_property_readonly("out_features", &n::PrepackedLinear::out_features);

  py::class_<n::Embedding, n::Module, std::shared_ptr<n::Embedding>>(
      m, "Embedding", "A lookup table: int64 indices [...] -> [..., embedding_dim].")
      .def(py::init([](int64_t num, int64_t dim, const py::object& padding_idx, Generator* g,
                       const py::object& dt) {
             int64_t pad = -1;
             if (!padding_idx.is_none()) {
               pad = padding_idx.cast<int64_t>();
               ATTEND_CHECK(pad >= -num && pad < num, "Embedding: padding_idx ", pad,
                            " out of range for ", num, " embeddings");
               if (pad < 0) pad += num;
             }
             return std::make_shared<n::Embedding>(num, dim, Gen(g), pad, DTypeArg(dt));
           }),
           "num_embeddings"_a, "embedding_dim"_a, "padding_idx"_a = py::none(), py::kw_only(),
           "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::Embedding& e, const py::object& x) {
            return e.Forward(ToTensor(x, "input"));
          },
          "input"_a, "int64 [...] -> [..., embedding_dim].")
      .def_readonly("weight", &n::Embedding::weight, "[num_embeddings, embedding_dim]")
      .def_property_readonly(
          "padding_idx",
          [](const n::Embedding& e) -> py::object {
            return e.padding_idx < 0 ? py::none() : py::cast(e.padding_idx);
          },
          "The row that stays zero and gets no gradient, or None.")
      .def_property_readonly("num_embeddings",
                             [](const n::Embedding& e) { return e.weight.size(0); })
      .def_property_readonly("embedding_dim",
                             [](const n::Embedding& e) { return e.weight.size(1); });

  py::class_<n::LayerNormModule, n::Module, std::shared_ptr<n::LayerNormModule>>(
      m, "LayerNorm", "Layer normalisation over the trailing normalized_shape dims.")
      .def(py::init([](const py::object& shape, double eps, bool affine, const py::object& dt) {
             std::vector<int64_t> dims;
             if (py::isinstance<py::int_>(shape)) {
               dims.push_back(shape.cast<int64_t>());
             } else {
               for (const py::handle& d : shape) dims.push_back(d.cast<int64_t>());
             }
             ATTEND_CHECK(!dims.empty() && dims.size() <= static_cast<size_t>(Shape::kMaxDims),
                          "LayerNorm: normalized_shape must have 1 to ", Shape::kMaxDims, " dims");
             for (int64_t d : dims)
               ATTEND_CHECK(d > 0, "LayerNorm: normalized_shape sizes must be positive, got ", d);
             return std::make_shared<n::LayerNormModule>(Shape(dims), eps, affine, DTypeArg(dt));
           }),
           "normalized_shape"_a, "eps"_a = 1e-5, "elementwise_affine"_a = true, py::kw_only(),
           "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::LayerNormModule& l, const py::object& x) {
            return l.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[..., *normalized_shape] -> the same shape.")
      .def_property_readonly("weight",
                             [](const n::LayerNormModule& l) { return TensorOrNone(l.weight); })
      .def_property_readonly("bias",
                             [](const n::LayerNormModule& l) { return TensorOrNone(l.bias); })
      .def_property_readonly("normalized_shape",
                             [](const n::LayerNormModule& l) {
                               py::tuple t(l.normalized_shape.size());
                               for (int i = 0; i < l.normalized_shape.size(); ++i)
                                 t[i] = l.normalized_shape[i];
                               return t;
                             })
      .def_readonly("eps", &n::LayerNormModule::eps);

  py::class_<n::DropoutModule, n::Module, std::shared_ptr<n::DropoutModule>>(
      m, "Dropout",
      "Zeroes each element with probability p in training mode (scaling the rest by "
      "1/(1-p)); the identity in eval mode. Its random stream is the buffer rng_state.")
      .def(py::init([](double p, const py::object& seed, Generator* g) {
             uint64_t s = 0;
             if (!seed.is_none()) {
               s = seed.cast<uint64_t>();
             } else {
               Generator& gen = Gen(g);
               s = Generator::Bits(gen.seed(), gen.Reserve(1));
             }
             return std::make_shared<n::DropoutModule>(p, s);
           }),
           "p"_a = 0.5, py::kw_only(), "seed"_a = py::none(), "generator"_a = py::none(),
           "The stream's seed is `seed`, or drawn from `generator` (the default one) when None.")
      .def(
          "forward",
          [](n::DropoutModule& d, const py::object& x) { return d.Forward(ToTensor(x, "input")); },
          "input"_a, "Any shape -> the same shape.")
      .def_readonly("p", &n::DropoutModule::p);

  py::class_<n::Sequential, n::Module, std::shared_ptr<n::Sequential>>(
      m, "Sequential",
      "Applies its steps in order: Tensor -> Tensor modules and parameter-free callables.")
      .def(py::init([](const py::args& steps) {
             auto seq = std::make_shared<n::Sequential>();
             for (const py::handle& h : steps) SequentialAppend(*seq, h);
             return seq;
           }),
           "Sequential(module_or_callable, ...)")
      .def(
          "append",
          [](const py::object& self, const py::object& step) {
            SequentialAppend(self.cast<n::Sequential&>(), step);
            return self;
          },
          "module"_a, "Adds a step at the end; returns self.")
      .def(
          "forward",
          [](const n::Sequential& s, const py::object& x) {
            return s.Forward(ToTensor(x, "input"));
          },
          "input"_a, "The input through every step.")
      .def("__len__", &n::Sequential::size)
      .def(
          "__getitem__",
          [](const n::Sequential& s, int64_t i) {
            const int64_t size = static_cast<int64_t>(s.size());
            ATTEND_CHECK(i >= -size && i < size, "Sequential: index ", i, " out of range for ",
                         size, " steps");
            if (i < 0) i += size;
            for (const auto& [k, c] : s.NamedChildren())
              if (k == std::to_string(i)) return c;
            ATTEND_CHECK(false, "Sequential: step ", i, " is a function, not a module");
            return std::shared_ptr<n::Module>();
          },
          "index"_a, "The module at step `index`.");

  py::class_<n::SinusoidalPositionalEncoding, n::Module,
             std::shared_ptr<n::SinusoidalPositionalEncoding>>(
      m, "SinusoidalPositionalEncoding",
      "Adds the fixed sin/cos table (Vaswani et al.) to x [B, T, dim]; the table is a buffer "
      "[max_len, dim].")
      .def(py::init([](int64_t max_len, int64_t dim, const py::object& dt) {
             return std::make_shared<n::SinusoidalPositionalEncoding>(max_len, dim, DTypeArg(dt));
           }),
           "max_len"_a, "dim"_a, py::kw_only(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::SinusoidalPositionalEncoding& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, T, dim] -> [B, T, dim] with the first T rows of the table added.")
      .def_readonly("table", &n::SinusoidalPositionalEncoding::table);

  py::class_<n::LearnedPositionalEncoding, n::Module,
             std::shared_ptr<n::LearnedPositionalEncoding>>(
      m, "LearnedPositionalEncoding", "Adds learned position embeddings [max_len, dim] to x.")
      .def(py::init([](int64_t max_len, int64_t dim, Generator* g, const py::object& dt) {
             return std::make_shared<n::LearnedPositionalEncoding>(max_len, dim, Gen(g),
                                                                   DTypeArg(dt));
           }),
           "max_len"_a, "dim"_a, py::kw_only(), "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::LearnedPositionalEncoding& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, T, dim] -> [B, T, dim] with the first T rows of weight added.")
      .def_readonly("weight", &n::LearnedPositionalEncoding::weight);

  // ---- recurrent ----
  py::class_<n::RnnBase, n::Module, std::shared_ptr<n::RnnBase>> rnn_base(
      m, "RNNBase", "Parameters and options shared by GRU and LSTM.");
  RnnProperties(rnn_base);

  py::class_<n::GRU, n::RnnBase, std::shared_ptr<n::GRU>> gru(
      m, "GRU",
      "Multi-layer GRU as torch.nn.GRU (weight_ih_l0, ...): input [T, B, in] ([B, T, in] with "
      "batch_first) -> (output, h_n).");
  gru.def(py::init([](int64_t in, int64_t hidden, int64_t layers, bool bias, bool batch_first,
                      double dropout, bool bidirectional, uint64_t seed, Generator* g,
                      const py::object& dt) {
            return std::make_shared<n::GRU>(
                in, hidden, Gen(g),
                RnnOpts(layers, bias, batch_first, dropout, bidirectional, seed, dt));
          }),
          "input_size"_a, "hidden_size"_a, "num_layers"_a = 1, "bias"_a = true,
          "batch_first"_a = false, "dropout"_a = 0.0, "bidirectional"_a = false, py::kw_only(),
          "dropout_seed"_a = 0, "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](n::GRU& r, const py::object& x, const py::object& hx, const py::object& lengths) {
            n::GRU::Output o = r.Forward(ToTensor(x, "input"), OptionalTensor(lengths, "lengths"),
                                         OptionalTensor(hx, "hx"));
            return py::make_tuple(o.output, o.h_n);
          },
          "input"_a, "hx"_a = py::none(), "lengths"_a = py::none(),
          "(output [.., D*H], h_n [L*D, B, H]); lengths int64 [B] for padded batches (output "
          "zero past each length).");

  py::class_<n::LSTM, n::RnnBase, std::shared_ptr<n::LSTM>> lstm(
      m, "LSTM",
      "Multi-layer LSTM as torch.nn.LSTM (weight_ih_l0, ...): input [T, B, in] ([B, T, in] "
      "with batch_first) -> (output, (h_n, c_n)).");
  lstm.def(py::init([](int64_t in, int64_t hidden, int64_t layers, bool bias, bool batch_first,
                       double dropout, bool bidirectional, uint64_t seed, Generator* g,
                       const py::object& dt) {
             return std::make_shared<n::LSTM>(
                 in, hidden, Gen(g),
                 RnnOpts(layers, bias, batch_first, dropout, bidirectional, seed, dt));
           }),
           "input_size"_a, "hidden_size"_a, "num_layers"_a = 1, "bias"_a = true,
           "batch_first"_a = false, "dropout"_a = 0.0, "bidirectional"_a = false, py::kw_only(),
           "dropout_seed"_a = 0, "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](n::LSTM& r, const py::object& x, const py::object& hx, const py::object& lengths) {
            auto [h0, c0] = LstmState(hx, "LSTM");
            n::LSTM::Output o =
                r.Forward(ToTensor(x, "input"), OptionalTensor(lengths, "lengths"), h0, c0);
            return py::make_tuple(o.output, py::make_tuple(o.h_n, o.c_n));
          },
          "input"_a, "hx"_a = py::none(), "lengths"_a = py::none(),
          "(output, (h_n, c_n)); hx = (h0, c0), either may be None; lengths int64 [B] for "
          "padded batches.");

  py::class_<n::PrepackedRecurrentStep>(
      m, "PrepackedRecurrentStep",
      "A unidirectional GRU/LSTM's f32 weights packed once, run one step at a time (inference "
      "only).")
      .def(py::init([](const n::RnnBase& r) { return n::PrepackedRecurrentStep(r); }), "rnn"_a)
      .def(
          "step",
          [](const n::PrepackedRecurrentStep& s, const py::object& x, const py::object& h,
             const py::object& c) {
            ATTEND_CHECK(s.defined(), "PrepackedRecurrentStep: not built from a module");
            Tensor ht = ToTensor(h, "h");
            Tensor ct = OptionalTensor(c, "c");
            Tensor top = s.Step(ToTensor(x, "input"), &ht, c.is_none() ? nullptr : &ct);
            return py::make_tuple(top, ht, TensorOrNone(ct));
          },
          "input"_a, "h"_a, "c"_a = py::none(),
          "x [N, in], h (and c for an LSTM) [L, N, H] -> (top h [N, H], new h, new c or None).");

  py::class_<n::GRUCell, n::Module, std::shared_ptr<n::GRUCell>>(
      m, "GRUCell", "One GRU step as torch.nn.GRUCell: (input [B, in], hx [B, H]) -> h' [B, H].")
      .def(py::init([](int64_t in, int64_t hidden, bool bias, Generator* g, const py::object& dt) {
             return std::make_shared<n::GRUCell>(in, hidden, Gen(g), bias, DTypeArg(dt));
           }),
           "input_size"_a, "hidden_size"_a, "bias"_a = true, py::kw_only(),
           "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::GRUCell& c, const py::object& x, const py::object& hx) {
            return c.Forward(ToTensor(x, "input"), OptionalTensor(hx, "hx"));
          },
          "input"_a, "hx"_a = py::none(), "h' of the rank of input; hx None = zeros.")
      .def_readonly("input_size", &n::GRUCell::input_size)
      .def_readonly("hidden_size", &n::GRUCell::hidden_size);

  py::class_<n::LSTMCell, n::Module, std::shared_ptr<n::LSTMCell>>(
      m, "LSTMCell",
      "One LSTM step as torch.nn.LSTMCell: (input [B, in], (h, c) [B, H]) -> (h', c').")
      .def(py::init([](int64_t in, int64_t hidden, bool bias, Generator* g, const py::object& dt) {
             return std::make_shared<n::LSTMCell>(in, hidden, Gen(g), bias, DTypeArg(dt));
           }),
           "input_size"_a, "hidden_size"_a, "bias"_a = true, py::kw_only(),
           "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::LSTMCell& c, const py::object& x, const py::object& hx) {
            auto [h, cc] = LstmState(hx, "LSTMCell");
            auto [h1, c1] = c.Forward(ToTensor(x, "input"), h, cc);
            return py::make_tuple(h1, c1);
          },
          "input"_a, "hx"_a = py::none(), "(h', c'); hx = (h, c), None = zeros.")
      .def_readonly("input_size", &n::LSTMCell::input_size)
      .def_readonly("hidden_size", &n::LSTMCell::hidden_size);

  py::class_<n::AdvancedLSTM, n::Module, std::shared_ptr<n::AdvancedLSTM>> adv(
      m, "AdvancedLSTM",
      "Tao and Liu's Advanced LSTM: each step reads a softmax-weighted mix of the K previous "
      "states; history=1 is torch.nn.LSTM.");
  py::class_<n::AdvancedLSTM::State>(adv, "State",
                                     "The recurrent state between calls (fields None = zeros).")
      .def(py::init<>())
      .def_property(
          "h", [](const n::AdvancedLSTM::State& s) { return TensorOrNone(s.h); },
          [](n::AdvancedLSTM::State& s, const py::object& v) { s.h = OptionalTensor(v, "h"); },
          "[L*D, B, H]")
      .def_property(
          "c", [](const n::AdvancedLSTM::State& s) { return TensorOrNone(s.c); },
          [](n::AdvancedLSTM::State& s, const py::object& v) { s.c = OptionalTensor(v, "c"); },
          "[L*D, B, H]")
      .def_property(
          "past_h", [](const n::AdvancedLSTM::State& s) { return TensorOrNone(s.past_h); },
          [](n::AdvancedLSTM::State& s, const py::object& v) {
            s.past_h = OptionalTensor(v, "past_h");
          },
          "[K-1, L*D, B, H], most recent first")
      .def_property(
          "past_c", [](const n::AdvancedLSTM::State& s) { return TensorOrNone(s.past_c); },
          [](n::AdvancedLSTM::State& s, const py::object& v) {
            s.past_c = OptionalTensor(v, "past_c");
          },
          "[K-1, L*D, B, H], most recent first")
      .def_property(
          "past_count", [](const n::AdvancedLSTM::State& s) { return TensorOrNone(s.past_count); },
          [](n::AdvancedLSTM::State& s, const py::object& v) {
            s.past_count = OptionalTensor(v, "past_count");
          },
          "int64 [B]: how many past slots hold real states")
      .def(
          "select_rows",
          [](n::AdvancedLSTM::State& s, const py::object& rows) {
            s.SelectRows(ToTensor(rows, "rows"));
          },
          "rows"_a, "Keeps the batch rows `rows` (int64 [N]) of every field (beam reordering).");
  adv.def(py::init([](int64_t in, int64_t hidden, int64_t layers, bool bias, bool batch_first,
                      double dropout, bool bidirectional, int64_t history, int64_t attention_dim,
                      uint64_t seed, Generator* g, const py::object& dt) {
            n::AdvancedLstmOptions a;
            a.history = history;
            a.attention_dim = attention_dim;
            return std::make_shared<n::AdvancedLSTM>(
                in, hidden, Gen(g),
                RnnOpts(layers, bias, batch_first, dropout, bidirectional, seed, dt), a);
          }),
          "input_size"_a, "hidden_size"_a, "num_layers"_a = 1, "bias"_a = true,
          "batch_first"_a = false, "dropout"_a = 0.0, "bidirectional"_a = false, "history"_a = 2,
          "attention_dim"_a = 0, py::kw_only(), "dropout_seed"_a = 0, "generator"_a = py::none(),
          "dtype"_a = "float32")
      .def(
          "forward",
          [](n::AdvancedLSTM& r, const py::object& x, const py::object& lengths,
             const py::object& state, bool return_attention) {
            py::object st = state.is_none() ? py::cast(n::AdvancedLSTM::State())
                                            : py::reinterpret_borrow<py::object>(state);
            auto* s = st.cast<n::AdvancedLSTM::State*>();
            std::vector<Tensor> attention;
            Tensor out = r.Forward(ToTensor(x, "input"), OptionalTensor(lengths, "lengths"), s,
                                   return_attention ? &attention : nullptr);
            if (return_attention) return py::make_tuple(out, st, attention);
            return py::make_tuple(out, st);
          },
          "input"_a, "lengths"_a = py::none(), "state"_a = py::none(), "return_attention"_a = false,
          "(output, state[, attention]): state (an AdvancedLSTM.State, updated in place when "
          "given) after the last real steps; attention L*D tensors [.., T, K].")
      .def_property_readonly("input_size", &n::AdvancedLSTM::input_size)
      .def_property_readonly("hidden_size", &n::AdvancedLSTM::hidden_size)
      .def_property_readonly("history", &n::AdvancedLSTM::history)
      .def_property_readonly("attention_dim", &n::AdvancedLSTM::attention_dim)
      .def_property_readonly("num_layers",
                             [](const n::AdvancedLSTM& r) { return r.options().num_layers; })
      .def_property_readonly("bidirectional",
                             [](const n::AdvancedLSTM& r) { return r.options().bidirectional; })
      .def_property_readonly("batch_first",
                             [](const n::AdvancedLSTM& r) { return r.options().batch_first; });

  // ---- convolution and pooling ----
  py::class_<n::Conv1dModule, n::Module, std::shared_ptr<n::Conv1dModule>>(
      m, "Conv1d", "1-D convolution as torch.nn.Conv1d: [B, C_in, L] -> [B, C_out, L_out].")
      .def(py::init([](int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding,
                       int64_t dilation, int64_t groups, bool bias, Generator* g,
                       const py::object& dt) {
             n::Conv1dOptions o;
             o.stride = stride;
             o.padding = padding;
             o.dilation = dilation;
             o.groups = groups;
             o.bias = bias;
             return std::make_shared<n::Conv1dModule>(in, out, k, Gen(g), o, DTypeArg(dt));
           }),
           "in_channels"_a, "out_channels"_a, "kernel_size"_a, "stride"_a = 1, "padding"_a = 0,
           "dilation"_a = 1, "groups"_a = 1, "bias"_a = true, py::kw_only(),
           "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::Conv1dModule& c, const py::object& x) {
            return c.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, C_in, L] -> [B, C_out, L_out].")
      .def_readonly("weight", &n::Conv1dModule::weight, "[C_out, C_in / groups, K]")
      .def_property_readonly("bias", [](const n::Conv1dModule& c) { return TensorOrNone(c.bias); });

  py::class_<n::Conv2dModule, n::Module, std::shared_ptr<n::Conv2dModule>>(
      m, "Conv2d",
      "2-D convolution as torch.nn.Conv2d: [B, C_in, H, W] -> [B, C_out, H_out, W_out].")
      .def(py::init([](int64_t in, int64_t out, const py::object& k, const py::object& stride,
                       const py::object& padding, const py::object& dilation, int64_t groups,
                       bool bias, Generator* g, const py::object& dt) {
             n::Conv2dOptions o;
             o.stride = Size2Arg(stride, "Conv2d: stride");
             o.padding = Size2Arg(padding, "Conv2d: padding");
             o.dilation = Size2Arg(dilation, "Conv2d: dilation");
             o.groups = groups;
             o.bias = bias;
             return std::make_shared<n::Conv2dModule>(in, out, Size2Arg(k, "Conv2d: kernel_size"),
                                                      Gen(g), o, DTypeArg(dt));
           }),
           "in_channels"_a, "out_channels"_a, "kernel_size"_a, "stride"_a = 1, "padding"_a = 0,
           "dilation"_a = 1, "groups"_a = 1, "bias"_a = true, py::kw_only(),
           "generator"_a = py::none(), "dtype"_a = "float32")
      .def(
          "forward",
          [](const n::Conv2dModule& c, const py::object& x) {
            return c.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, C_in, H, W] -> [B, C_out, H_out, W_out].")
      .def_readonly("weight", &n::Conv2dModule::weight, "[C_out, C_in / groups, KH, KW]")
      .def_property_readonly("bias", [](const n::Conv2dModule& c) { return TensorOrNone(c.bias); });

  py::class_<n::MaxPool2dModule, n::Module, std::shared_ptr<n::MaxPool2dModule>>(
      m, "MaxPool2d", "2-D max pooling as torch.nn.MaxPool2d over [B, C, H, W].")
      .def(py::init([](const py::object& k, const py::object& stride, const py::object& padding) {
             return std::make_shared<n::MaxPool2dModule>(Size2Arg(k, "MaxPool2d: kernel_size"),
                                                         OptionalSize2(stride, "MaxPool2d: stride"),
                                                         Size2Arg(padding, "MaxPool2d: padding"));
           }),
           "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0)
      .def(
          "forward",
          [](const n::MaxPool2dModule& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, C, H, W] -> [B, C, H_out, W_out].")
      .def_property_readonly("kernel_size",
                             [](const n::MaxPool2dModule& p) { return Size2Tuple(p.kernel_size); });

  py::class_<n::AvgPool2dModule, n::Module, std::shared_ptr<n::AvgPool2dModule>>(
      m, "AvgPool2d", "2-D average pooling as torch.nn.AvgPool2d over [B, C, H, W].")
      .def(py::init([](const py::object& k, const py::object& stride, const py::object& padding,
                       bool count_include_pad) {
             return std::make_shared<n::AvgPool2dModule>(
                 Size2Arg(k, "AvgPool2d: kernel_size"), OptionalSize2(stride, "AvgPool2d: stride"),
                 Size2Arg(padding, "AvgPool2d: padding"), count_include_pad);
           }),
           "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "count_include_pad"_a = true)
      .def(
          "forward",
          [](const n::AvgPool2dModule& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, C, H, W] -> [B, C, H_out, W_out].")
      .def_property_readonly("kernel_size",
                             [](const n::AvgPool2dModule& p) { return Size2Tuple(p.kernel_size); });

  py::class_<n::GlobalAvgPoolModule, n::Module, std::shared_ptr<n::GlobalAvgPoolModule>>(
      m, "GlobalAvgPool", "The mean over every spatial dim: [B, C, ...] -> [B, C].")
      .def(py::init([](bool keepdim) { return std::make_shared<n::GlobalAvgPoolModule>(keepdim); }),
           "keepdim"_a = false)
      .def(
          "forward",
          [](const n::GlobalAvgPoolModule& p, const py::object& x) {
            return p.Forward(ToTensor(x, "input"));
          },
          "input"_a, "[B, C, ...] -> [B, C] (or [B, C, 1, ...] with keepdim).")
      .def_readonly("keepdim", &n::GlobalAvgPoolModule::keepdim);

  py::module_ init = m.def_submodule("init", "In-place initialisers, as torch.nn.init");
  BindInit(init);

  py::module_ utils = m.def_submodule("utils", "Gradient clipping, as torch.nn.utils");
  utils.def("clip_grad_norm_", &ClipGradNormPy, "parameters"_a, "max_norm"_a, "norm_type"_a = 2.0,
            "error_if_nonfinite"_a = false,
            "Scales all gradients together so that their norm is at most max_norm; returns the "
            "norm before clipping.");

  BindFiles(m);
}

}  // namespace attend::python
