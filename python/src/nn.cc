// attend.nn: the Module base (parameters, state dicts with PyTorch's names, train/eval), every
// layer of attend/nn.h and attend/nn/*.h, the initialisers (attend.nn.init), gradient clipping
// (attend.nn.utils) and safetensors files and checkpoints.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
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

std::string TypeName(const py::handle& h) {
  return py::str(py::type::of(h).attr("__name__")).cast<std::string>();
}

// The C++ module behind `self` (an attend.nn.Module), or null while its __init__ has not run: a
// Python subclass whose __init__ has not called super().__init__() yet. (pybind11 would hand out
// unconstructed memory for it, so every method on the base checks first.)
n::Module* ModulePtr(const py::handle& self) {
  auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
  if (!inst->get_value_and_holder().holder_constructed()) return nullptr;
  return py::cast<n::Module*>(self);
}

// As ModulePtr, with an error naming the fix instead of null.
n::Module& Self(const py::handle& self) {
  n::Module* m = ModulePtr(self);
  ATTEND_CHECK(m != nullptr, TypeName(self), " is not initialised: call super().__init__() at the ",
               "start of ", TypeName(self), ".__init__");
  return *m;
}

// A module argument (save_checkpoint's model) checked as Self.
n::Module& ModuleArg(const py::handle& obj, const char* what) {
  ATTEND_CHECK(py::isinstance<n::Module>(obj), what, ": an attend.nn.Module expected, got a ",
               TypeName(obj));
  return Self(obj);
}

// ---- Module ----

// Copies `state` into the module's parameters and buffers in place (all checks first, so a
// failed load changes nothing). Returns (missing_keys, unexpected_keys) as torch does.
py::object LoadStateDict(const py::object& self, const py::dict& state, bool strict) {
  n::Module& m = Self(self);
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

// ---- Python subclasses of attend.nn.Module ----

// attend.nn.Parameter: a tensor handle whose type marks it as trainable, so that assigning it to
// a module's attribute registers it (torch.nn.Parameter). Everything else is the Tensor's.
struct Parameter : Tensor {
  explicit Parameter(const Tensor& t) : Tensor(t) {}
};

// The C++ half of attend.nn.Module() and of every Python subclass: a Module whose registration
// methods (protected in C++) are public, and which remembers the names it was given, also those
// declared None (torch's register_parameter(name, None)), which the C++ base does not hold.
// Registrations are final: the C++ base can neither replace nor remove one.
class PyModule : public n::Module {
 public:
  enum class Kind { kParameter, kBuffer, kModule };
  struct Entry {
    std::string name;
    Kind kind;
    bool registered;  // false: declared None, not in the C++ base
  };

  Entry* Find(const std::string& name) {
    for (Entry& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }
  // Registers t (a parameter or buffer) or m; an undefined t or null m only declares the name.
  void Add(const std::string& name, Kind kind, const Tensor& t, std::shared_ptr<n::Module> m) {
    const bool registered = t.defined() || m != nullptr;
    if (kind == Kind::kParameter && t.defined()) RegisterParameter(name, t);
    if (kind == Kind::kBuffer && t.defined()) RegisterBuffer(name, t);
    if (kind == Kind::kModule && m != nullptr) RegisterModule(name, std::move(m));
    if (Entry* e = Find(name)) {
      *e = Entry{name, kind, registered};
    } else {
      entries_.push_back(Entry{name, kind, registered});
    }
  }
  // Drops a name that was only declared.
  void Forget(const std::string& name) {
    for (size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].name == name && !entries_[i].registered) {
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  }
  // As a step of Sequential: calls the Python object, which KeepPythonHalf keeps alive there.
  Tensor Forward(const Tensor& x) {
    py::gil_scoped_acquire gil;
    py::object self = py::cast(static_cast<n::Module*>(this), py::return_value_policy::reference);
    return ToTensor(self(x), "Sequential step result");
  }

 private:
  std::vector<Entry> entries_;
};

const char* KindName(PyModule::Kind kind) {
  switch (kind) {
    case PyModule::Kind::kParameter: return "parameter";
    case PyModule::Kind::kBuffer: return "buffer";
    case PyModule::Kind::kModule: return "sub-module";
  }
  return "";
}

// The module that takes a new parameter, buffer or sub-module `name`: one built by
// attend.nn.Module's __init__, not a C++ layer (whose parts are fixed).
PyModule& Target(const py::handle& self, const std::string& name, PyModule::Kind kind) {
  n::Module* m = ModulePtr(self);
  const std::string type = TypeName(self);
  ATTEND_CHECK(m != nullptr, type, ": call super().__init__() in ", type,
               ".__init__ before assigning the ", KindName(kind), " '", name, "'");
  auto* pm = dynamic_cast<PyModule*>(m);
  ATTEND_CHECK(pm != nullptr, type, " is a C++ layer with a fixed set of parameters, buffers ",
               "and sub-modules; it cannot take the ", KindName(kind), " '", name,
               "' (compose layers in a subclass of attend.nn.Module instead)");
  return *pm;
}

// Stores the registered object as an ordinary attribute too: attribute access finds it there,
// and the parent keeps the Python object (a subclass's forward and attributes) alive.
void SetInDict(const py::handle& self, const std::string& name, const py::handle& value) {
  if (PyObject_GenericSetAttr(self.ptr(), py::str(name).ptr(), value.ptr()) != 0)
    throw py::error_already_set();
}

bool InDict(const py::handle& self, const std::string& name) {
  py::object dict = py::reinterpret_steal<py::object>(PyObject_GenericGetDict(self.ptr(), nullptr));
  if (!dict) throw py::error_already_set();
  return dict.contains(py::str(name));
}

// Whether `target` is `from` or one of its sub-modules at any depth (registering would loop).
bool Reaches(const n::Module& from, const n::Module* target) {
  if (&from == target) return true;
  for (const auto& [k, c] : from.NamedChildren())
    if (Reaches(*c, target)) return true;
  return false;
}

// Checks a name about to be registered, as torch does; `via_setattr` (self.x = v) may replace a
// plain attribute x, register_*(name, v) may not. Returns false when `name` is already
// registered as exactly this object (self.w = self.w, self.n += 1 on a buffer): nothing to do.
bool CheckName(const py::handle& self, PyModule& pm, const std::string& name, PyModule::Kind kind,
               bool via_setattr, const void* same) {
  const std::string type = TypeName(self);
  ATTEND_CHECK(!name.empty(), type, ": a ", KindName(kind), " name cannot be empty");
  ATTEND_CHECK(name.find('.') == std::string::npos, type, ": ", KindName(kind), " name '", name,
               "' cannot contain '.'");
  if (const PyModule::Entry* e = pm.Find(name)) {
    if (!e->registered) return true;  // declared None: this is its first registration
    if (e->kind == kind && same != nullptr) {
      if (kind == PyModule::Kind::kModule) {
        for (const auto& [k, c] : pm.NamedChildren())
          if (k == name && c.get() == same) return false;
      } else {
        const n::NamedTensors own =
            kind == PyModule::Kind::kParameter ? pm.NamedParameters() : pm.NamedBuffers();
        for (const auto& [k, t] : own)
          if (k == name && t.impl() == same) return false;
      }
    }
    ATTEND_CHECK(false, type, ": '", name, "' is already a registered ", KindName(e->kind),
                 "; attend's C++ Module base cannot replace or remove a registration (copy new ",
                 "values in place, with load_state_dict or copy_ under attend.no_grad(), or use ",
                 "another name)");
  }
  ATTEND_CHECK(!py::hasattr(py::type::of(self), name.c_str()), type, ": '", name,
               "' is an attribute of the class; it cannot also be a ", KindName(kind));
  ATTEND_CHECK(via_setattr || !InDict(self, name), type, ": attribute '", name, "' already exists");
  return true;
}

// register_parameter / self.name = Parameter.
void RegisterParameterPy(const py::object& self, const std::string& name, const py::object& value,
                         bool via_setattr) {
  PyModule& pm = Target(self, name, PyModule::Kind::kParameter);
  if (value.is_none()) {
    if (CheckName(self, pm, name, PyModule::Kind::kParameter, via_setattr, nullptr))
      pm.Add(name, PyModule::Kind::kParameter, Tensor(), nullptr);
    SetInDict(self, name, value);
    return;
  }
  ATTEND_CHECK(py::isinstance<Parameter>(value), TypeName(self), ": the parameter '", name,
               "' must be an attend.nn.Parameter or None, got a ", TypeName(value),
               " (wrap a tensor as attend.nn.Parameter(t))");
  const Tensor t = value.cast<Tensor>();
  ATTEND_CHECK(IsFloating(t.dtype()), TypeName(self), ": the parameter '", name,
               "' must be float32 or float64, got ", DTypeToName(t.dtype()));
  if (CheckName(self, pm, name, PyModule::Kind::kParameter, via_setattr, t.impl())) {
    const bool requires_grad = t.requires_grad();
    pm.Add(name, PyModule::Kind::kParameter, t, nullptr);  // sets requires_grad
    Tensor(t).set_requires_grad(requires_grad);  // Parameter(t, requires_grad=False) stays frozen
  }
  SetInDict(self, name, value);
}

// register_buffer / self.name = tensor where name is a buffer.
void RegisterBufferPy(const py::object& self, const std::string& name, const py::object& value,
                      bool persistent, bool via_setattr) {
  PyModule& pm = Target(self, name, PyModule::Kind::kBuffer);
  ATTEND_CHECK(persistent, TypeName(self), ": register_buffer('", name, "', persistent=False) ",
               "is not supported; attend's state dicts hold every buffer");
  if (value.is_none()) {
    if (CheckName(self, pm, name, PyModule::Kind::kBuffer, via_setattr, nullptr))
      pm.Add(name, PyModule::Kind::kBuffer, Tensor(), nullptr);
    SetInDict(self, name, value);
    return;
  }
  ATTEND_CHECK(py::isinstance<Tensor>(value), TypeName(self), ": the buffer '", name,
               "' must be an attend.Tensor or None, got a ", TypeName(value));
  const Tensor t = value.cast<Tensor>();
  ATTEND_CHECK(t.defined(), TypeName(self), ": the buffer '", name, "' is an undefined tensor");
  if (CheckName(self, pm, name, PyModule::Kind::kBuffer, via_setattr, t.impl()))
    pm.Add(name, PyModule::Kind::kBuffer, t, nullptr);
  SetInDict(self, name, value);
}

// add_module / register_module / self.name = module.
void AddModulePy(const py::object& self, const std::string& name, const py::object& value,
                 bool via_setattr) {
  PyModule& pm = Target(self, name, PyModule::Kind::kModule);
  if (value.is_none()) {
    if (CheckName(self, pm, name, PyModule::Kind::kModule, via_setattr, nullptr))
      pm.Add(name, PyModule::Kind::kModule, Tensor(), nullptr);
    SetInDict(self, name, value);
    return;
  }
  ATTEND_CHECK(py::isinstance<n::Module>(value), TypeName(self), ": the sub-module '", name,
               "' must be an attend.nn.Module or None, got a ", TypeName(value));
  const n::Module* child = ModulePtr(value);
  ATTEND_CHECK(child != nullptr, TypeName(self), ": the ", TypeName(value), " given as '", name,
               "' is not initialised (its __init__ did not call super().__init__())");
  if (CheckName(self, pm, name, PyModule::Kind::kModule, via_setattr, child)) {
    ATTEND_CHECK(!Reaches(*child, &pm), TypeName(self), ": the sub-module '", name,
                 "' contains this module itself (modules cannot form a cycle)");
    pm.Add(name, PyModule::Kind::kModule, Tensor(), value.cast<std::shared_ptr<n::Module>>());
  }
  SetInDict(self, name, value);
}

// torch's Module.__setattr__: a Parameter or a Module registers under the name; a tensor or None
// assigned to a registered or declared name follows that name's kind; anything else is a plain
// attribute.
void ModuleSetAttr(const py::object& self, const std::string& name, const py::object& value) {
  if (py::isinstance<Parameter>(value)) return RegisterParameterPy(self, name, value, true);
  if (py::isinstance<n::Module>(value)) return AddModulePy(self, name, value, true);
  auto* pm = dynamic_cast<PyModule*>(ModulePtr(self));
  const PyModule::Entry* e = pm != nullptr ? pm->Find(name) : nullptr;
  if (e == nullptr) return SetInDict(self, name, value);
  switch (e->kind) {
    case PyModule::Kind::kParameter:
      ATTEND_CHECK(value.is_none(), TypeName(self), ": cannot assign a ", TypeName(value),
                   " to the parameter '", name, "' (an attend.nn.Parameter or None expected)");
      return RegisterParameterPy(self, name, value, true);
    case PyModule::Kind::kBuffer:
      ATTEND_CHECK(value.is_none() || py::isinstance<Tensor>(value), TypeName(self),
                   ": cannot assign a ", TypeName(value), " to the buffer '", name,
                   "' (an attend.Tensor or None expected)");
      return RegisterBufferPy(self, name, value, true, true);
    case PyModule::Kind::kModule:
      ATTEND_CHECK(value.is_none(), TypeName(self), ": cannot assign a ", TypeName(value),
                   " to the sub-module '", name, "' (an attend.nn.Module or None expected)");
      return AddModulePy(self, name, value, true);
  }
}

void ModuleDelAttr(const py::object& self, const std::string& name) {
  if (auto* pm = dynamic_cast<PyModule*>(ModulePtr(self))) {
    if (const PyModule::Entry* e = pm->Find(name)) {
      ATTEND_CHECK(!e->registered, TypeName(self), ": cannot delete the registered ",
                   KindName(e->kind), " '", name,
                   "'; attend's C++ Module base cannot remove a registration");
      pm->Forget(name);
    }
  }
  if (PyObject_GenericSetAttr(self.ptr(), py::str(name).ptr(), nullptr) != 0)
    throw py::error_already_set();
}

// A parameter, buffer or child by name (m.weight_ih_l0, m.encoder), as torch's __getattr__
// (Python only calls it when the ordinary lookup fails).
py::object ModuleGetAttr(const py::object& self, const std::string& name) {
  const n::Module* m = ModulePtr(self);
  if (m == nullptr)
    throw py::attribute_error("'" + TypeName(self) + "' has no attribute '" + name + "' (its " +
                              "__init__ has not called super().__init__() yet)");
  for (const auto& [k, t] : m->NamedParameters())
    if (k == name) return py::cast(t);
  for (const auto& [k, t] : m->NamedBuffers())
    if (k == name) return py::cast(t);
  for (const auto& [k, c] : m->NamedChildren())
    if (k == name) return py::cast(c);
  throw py::attribute_error("'" + TypeName(self) + "' has no attribute '" + name + "'");
}

// The parameters, each once (a tensor registered under two names, tied weights, comes under
// the first): what an optimizer must step once, as torch's named_parameters().
n::NamedTensors UniqueParameters(const n::Module& m) {
  n::NamedTensors out;
  std::unordered_set<const void*> seen;
  for (const auto& [k, t] : m.NamedParameters())
    if (seen.insert(t.impl()).second) out.emplace_back(k, t);
  return out;
}

// A shared_ptr to a Python subclass's C++ half that also keeps its Python half (forward,
// attributes) alive, for a C++ owner (Sequential); released under the GIL.
std::shared_ptr<PyModule> KeepPythonHalf(const py::handle& h, PyModule* pm) {
  PyObject* obj = h.ptr();
  Py_INCREF(obj);
  return std::shared_ptr<PyModule>(pm, [obj](PyModule*) {
    py::gil_scoped_acquire gil;
    Py_DECREF(obj);
  });
}

template <typename M>
bool TryAdd(n::Sequential& seq, const py::handle& h) {
  if (!py::isinstance<M>(h)) return false;
  // A Python subclass of a C++ layer that overrides forward would be bypassed.
  const py::object layer = py::type::of<M>();
  ATTEND_CHECK(py::type::of(h).attr("forward").is(layer.attr("forward")),
               "Sequential: ", TypeName(h), " overrides the forward of ", TypeName(layer),
               ", which a Sequential step would not call; derive from attend.nn.Module instead");
  seq.Add(h.cast<std::shared_ptr<M>>());
  return true;
}

// Appends a Tensor -> Tensor module (a C++ layer or a subclass of attend.nn.Module), or a Python
// callable as a parameter-free step.
void SequentialAppend(n::Sequential& seq, const py::handle& h) {
  if (py::isinstance<n::Module>(h)) {
    n::Module* m = ModulePtr(h);
    ATTEND_CHECK(m != nullptr, "Sequential: the ", TypeName(h), " is not initialised (its ",
                 "__init__ did not call super().__init__())");
    ATTEND_CHECK(!Reaches(*m, &seq), "Sequential: a step cannot contain the Sequential itself");
    if (auto* pm = dynamic_cast<PyModule*>(m)) {
      seq.Add(KeepPythonHalf(h, pm));
      return;
    }
  }
  if (TryAdd<n::Linear>(seq, h) || TryAdd<n::Embedding>(seq, h) ||
      TryAdd<n::LayerNormModule>(seq, h) || TryAdd<n::DropoutModule>(seq, h) ||
      TryAdd<n::Sequential>(seq, h) || TryAdd<n::SinusoidalPositionalEncoding>(seq, h) ||
      TryAdd<n::LearnedPositionalEncoding>(seq, h) || TryAdd<n::Conv1dModule>(seq, h) ||
      TryAdd<n::Conv2dModule>(seq, h) || TryAdd<n::MaxPool2dModule>(seq, h) ||
      TryAdd<n::AvgPool2dModule>(seq, h) || TryAdd<n::GlobalAvgPoolModule>(seq, h))
    return;
  const std::string type = TypeName(h);
  ATTEND_CHECK(!py::isinstance<n::Module>(h), "Sequential: a ", type,
               " is not a Tensor -> Tensor module (its forward takes or returns more); steps "
               "are Tensor -> Tensor layers, subclasses of attend.nn.Module and callables");
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

// torch's constructor of GRU and LSTM (the same arguments for both).
template <typename C>
C& RnnInit(C& cls) {
  using R = typename C::type;
  return cls.def(py::init([](int64_t in, int64_t hidden, int64_t layers, bool bias,
                             bool batch_first, double dropout, bool bidirectional, uint64_t seed,
                             Generator* g, const py::object& dt) {
                   return std::make_shared<R>(
                       in, hidden, Gen(g),
                       RnnOpts(layers, bias, batch_first, dropout, bidirectional, seed, dt));
                 }),
                 "input_size"_a, "hidden_size"_a, "num_layers"_a = 1, "bias"_a = true,
                 "batch_first"_a = false, "dropout"_a = 0.0, "bidirectional"_a = false,
                 py::kw_only(), "dropout_seed"_a = 0, "generator"_a = py::none(),
                 "dtype"_a = "float32");
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
      [](const py::object& path, const py::object& model, const optim::Optimizer* optimizer,
         const optim::LRScheduler* scheduler, const std::string& config,
         const io::Metadata& extra) {
        const std::string p = PathArg(path);
        const n::Module& m = ModuleArg(model, "save_checkpoint: model");
        py::gil_scoped_release release;
        io::SaveCheckpoint(p, m, optimizer, scheduler, config, extra);
      },
      "path"_a, "model"_a, "optimizer"_a = py::none(), "scheduler"_a = py::none(),
      "config"_a = "{}", "extra"_a = io::Metadata{},
      "Saves a training checkpoint: the model's state dict, the optimizer's and schedule's "
      "state, the config JSON and extra str -> str metadata.");
  m.def(
      "load_checkpoint",
      [](const py::object& path, const py::object& model, optim::Optimizer* optimizer,
         optim::LRScheduler* scheduler) {
        const std::string p = PathArg(path);
        n::Module& m = ModuleArg(model, "load_checkpoint: model");
        io::Metadata extra;
        std::string config;
        {
          py::gil_scoped_release release;
          config = io::LoadCheckpoint(p, m, optimizer, scheduler, &extra);
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

  py::class_<Parameter, Tensor>(
      m, "Parameter",
      "A tensor that is a module's trainable parameter once assigned to one of its attributes, "
      "as torch.nn.Parameter: Parameter(t) shares t's memory, as a leaf without history.")
      .def(py::init([](const py::object& data, bool requires_grad) {
             Tensor t = data.is_none() ? Tensor::Empty(Shape({0}), DType::kF32)
                                       : ToTensor(data, "Parameter: data").Detach();
             ATTEND_CHECK(!requires_grad || IsFloating(t.dtype()), "Parameter: only float32 ",
                          "and float64 tensors can require gradients, not ",
                          DTypeToName(t.dtype()));
             t.set_requires_grad(requires_grad);
             return Parameter(t);
           }),
           "data"_a = py::none(), "requires_grad"_a = true)
      .def("__repr__", [](const py::object& self) {
        return "Parameter containing:\n" +
               py::type::of<Tensor>().attr("__repr__")(self).cast<std::string>();
      });

  py::class_<n::Module, std::shared_ptr<n::Module>>(
      m, "Module",
      "Base of every layer: named parameters, buffers, sub-modules, train/eval. Subclass it as "
      "torch.nn.Module: call super().__init__(), assign Parameters and Modules to attributes, "
      "define forward.",
      py::dynamic_attr())
      .def(py::init([]() -> std::shared_ptr<n::Module> { return std::make_shared<PyModule>(); }),
           "An empty module, the base of a Python subclass.")
      .def(
          "forward",
          [](const py::object& self, const py::args&, const py::kwargs&) -> py::object {
            const std::string msg =
                "Module [" + TypeName(self) + "] is missing the required \"forward\" function";
            PyErr_SetString(PyExc_NotImplementedError, msg.c_str());
            throw py::error_already_set();
          },
          "Defined by every layer and subclass; NotImplementedError here.")
      .def("__setattr__", &ModuleSetAttr, "name"_a, "value"_a,
           "A Parameter or a Module registers under the name (in assignment order); anything "
           "else is a plain attribute.")
      .def("__delattr__", &ModuleDelAttr, "name"_a,
           "Deletes a plain attribute (registrations are final).")
      .def(
          "register_parameter",
          [](const py::object& self, const std::string& name, const py::object& param) {
            RegisterParameterPy(self, name, param, false);
          },
          "name"_a, "param"_a,
          "Registers an attend.nn.Parameter (None declares the name) as self.<name>.")
      .def(
          "register_buffer",
          [](const py::object& self, const std::string& name, const py::object& tensor,
             bool persistent) { RegisterBufferPy(self, name, tensor, persistent, false); },
          "name"_a, "tensor"_a, "persistent"_a = true,
          "Registers a tensor saved in the state dict but not trained (None declares the name).")
      .def(
          "add_module",
          [](const py::object& self, const std::string& name, const py::object& module) {
            AddModulePy(self, name, module, false);
          },
          "name"_a, "module"_a, "Registers a sub-module (None declares the name) as self.<name>.")
      .def(
          "register_module",
          [](const py::object& self, const std::string& name, const py::object& module) {
            AddModulePy(self, name, module, false);
          },
          "name"_a, "module"_a, "add_module under torch's other name.")
      .def(
          "parameters",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            std::vector<Tensor> out;
            for (const auto& [k, t] : UniqueParameters(mod)) out.push_back(t);
            return out;
          },
          "The trainable tensors, depth-first in registration order, each once.")
      .def(
          "named_parameters",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            return UniqueParameters(mod);
          },
          "(dotted name, tensor) pairs of the parameters, PyTorch's names, each tensor once.")
      .def(
          "buffers",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            std::vector<Tensor> out;
            for (const auto& [k, t] : mod.NamedBuffers()) out.push_back(t);
            return out;
          },
          "The saved but untrained tensors.")
      .def(
          "named_buffers",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            return mod.NamedBuffers();
          },
          "(dotted name, tensor) pairs of the buffers.")
      .def(
          "children",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            std::vector<std::shared_ptr<n::Module>> out;
            for (const auto& [k, c] : mod.NamedChildren()) out.push_back(c);
            return out;
          },
          "The direct sub-modules.")
      .def(
          "named_children",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            return mod.NamedChildren();
          },
          "(name, module) pairs of the direct sub-modules.")
      .def(
          "state_dict",
          [](const py::object& self) { return DictFromNamed(Self(self).StateDict(), true); },
          "A dict dotted name -> tensor of parameters and buffers (detached, sharing memory).")
      .def("load_state_dict", &LoadStateDict, "state_dict"_a, "strict"_a = true,
           "Copies the dict's tensors into the module in place; with strict, missing or "
           "unexpected names are errors. Returns (missing_keys, unexpected_keys).")
      .def(
          "train",
          [](const py::object& self, bool mode) {
            Self(self).Train(mode);
            return self;
          },
          "mode"_a = true, "Training mode for this module and its sub-modules; returns self.")
      .def(
          "eval",
          [](const py::object& self) {
            Self(self).Eval();
            return self;
          },
          "Evaluation mode (dropout off) for this module and its sub-modules; returns self.")
      .def_property_readonly(
          "training", [](const py::object& self) { return Self(self).training(); },
          "True in training mode.")
      .def(
          "zero_grad",
          [](const py::object& self, bool set_to_none) {
            n::Module& mod = Self(self);
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
      .def(
          "num_parameters",
          [](const py::object& self) {
            const n::Module& mod = Self(self);
            int64_t count = 0;
            for (const auto& [k, t] : UniqueParameters(mod)) count += t.numel();
            return count;
          },
          "How many scalars the parameters hold in all (shared ones once).")
      .def(
          "__call__",
          [](const py::object& self, const py::args& args, const py::kwargs& kwargs) {
            return self.attr("forward")(*args, **kwargs);
          },
          "Calls forward.")
      .def("__getattr__", &ModuleGetAttr, "A parameter, buffer or sub-module by name.")
      .def("__repr__", [](const py::object& self) {
        const n::Module* mod = ModulePtr(self);
        if (mod == nullptr) return TypeName(self) + "(not initialised)";
        int64_t count = 0;
        for (const auto& [k, t] : UniqueParameters(*mod)) count += t.numel();
        return TypeName(self) + "(parameters=" + std::to_string(count) + ")";
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
      "A Linear layer's weight packed once for small-batch decoding (inference only; a copy "
      "that does not follow later changes), in precision 'f32', 'bf16' or 'int8' (weights per "
      "output row, activations per input row).")
      .def(py::init([](const n::Linear& l, const std::string& precision) {
             return n::PrepackedLinear(l, n::ParsePrecision(precision));
           }),
           "linear"_a, py::kw_only(), "precision"_a = "f32")
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
      .def_property_readonly("out_features", &n::PrepackedLinear::out_features)
      .def_property_readonly(
          "precision", [](const n::PrepackedLinear& p) { return n::PrecisionName(p.precision()); });

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
  RnnInit(gru).def(
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
  RnnInit(lstm).def(
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
