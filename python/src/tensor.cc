// attend.Tensor: the engine's tensor in Python, NumPy exchange without copies both ways,
// creation functions, the default generator and no_grad.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attend/autograd.h"
#include "attend/external.h"
#include "attend/ops.h"
#include "bind.h"

namespace attend::python {
namespace {

using namespace pybind11::literals;

// NumPy's type characters for the four dtypes.
std::string Format(DType d) {
  switch (d) {
    case DType::kF32: return py::format_descriptor<float>::format();
    case DType::kF64: return py::format_descriptor<double>::format();
    case DType::kI64: return py::format_descriptor<int64_t>::format();
    case DType::kBool: return "?";
    case DType::kI8: return py::format_descriptor<int8_t>::format();
  }
  return "?";
}

// The dtype of a NumPy array, or false when attend has no such dtype.
bool NumpyDType(const py::array& a, DType* out) {
  const py::dtype dt = a.dtype();
  if (dt.is(py::dtype::of<float>())) {
    *out = DType::kF32;
  } else if (dt.is(py::dtype::of<double>())) {
    *out = DType::kF64;
  } else if (dt.is(py::dtype::of<int64_t>())) {
    *out = DType::kI64;
  } else if (dt.is(py::dtype::of<bool>())) {
    *out = DType::kBool;
  } else {
    return false;
  }
  return true;
}

std::string DTypeOfArray(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Sizes or dims as PyTorch takes them: f(2, 3) or f((2, 3)) or f([2, 3]); `fn` names the
// function in the error for too many dims.
std::vector<int64_t> DimsFromArgs(const py::args& args, const char* fn) {
  std::vector<int64_t> dims;
  if (args.size() == 1 && !py::isinstance<py::int_>(args[0])) {
    for (const py::handle& d : args[0]) dims.push_back(d.cast<int64_t>());
  } else {
    for (const py::handle& d : args) dims.push_back(d.cast<int64_t>());
  }
  ATTEND_CHECK(dims.size() <= static_cast<size_t>(Shape::kMaxDims), fn, ": ", dims.size(),
               " dimensions, at most ", Shape::kMaxDims);
  return dims;
}

Shape ShapeFromArgs(const py::args& args, const char* fn) {
  const std::vector<int64_t> dims = DimsFromArgs(args, fn);
  for (int64_t d : dims) ATTEND_CHECK(d >= 0, fn, ": negative size ", d, " in the shape");
  return Shape(dims);
}

py::tuple ShapeTuple(const Shape& s) {
  py::tuple t(s.size());
  for (int i = 0; i < s.size(); ++i) t[i] = s[i];
  return t;
}

// Holds a Python object for C++ (a tensor over a NumPy array keeps the array alive); the
// reference is dropped under the GIL, whichever thread lets go last.
std::shared_ptr<void> KeepAlive(const py::object& obj) {
  PyObject* p = obj.ptr();
  Py_INCREF(p);
  return std::shared_ptr<void>(p, [](void* q) {
    py::gil_scoped_acquire gil;
    Py_DECREF(static_cast<PyObject*>(q));
  });
}

// A NumPy array's memory as a tensor, without a copy; attend::Error naming what prevents it.
Tensor FromNumpy(const py::array& a) {
  DType dtype;
  ATTEND_CHECK(NumpyDType(a, &dtype), "from_numpy: arrays of ", DTypeOfArray(a),
               " are not supported (float32, float64, int64, bool); convert with .astype()");
  ATTEND_CHECK(a.writeable(),
               "from_numpy: the array is read-only (the tensor would share and "
               "could write it); use attend.tensor(array) for a copy");
  ATTEND_CHECK(a.ndim() <= Shape::kMaxDims, "from_numpy: ", a.ndim(), " dimensions, at most ",
               Shape::kMaxDims);
  Shape shape, strides;
  const int64_t item = static_cast<int64_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    shape.push_back(a.shape(d));
    const int64_t s = a.strides(d);
    ATTEND_CHECK(s >= 0 && s % item == 0, "from_numpy: stride ", s, " bytes of dimension ", d,
                 " is negative or not a multiple of the element size (", item,
                 "); use attend.tensor(array) for a copy");
    strides.push_back(s / item);
  }
  return FromExternal(const_cast<void*>(a.data()), shape, strides, dtype, KeepAlive(a));
}

// A copy of anything NumPy can read, in `dtype` (or the natural one: Python floats become
// float32 as in PyTorch, integers int64, booleans bool; a NumPy array keeps its dtype).
Tensor CopyFromPython(const py::handle& data, const py::object& dtype) {
  py::module_ np = py::module_::import("numpy");
  const bool was_array = py::isinstance<py::array>(data);
  py::array a = np.attr("asarray")(data);
  std::string target;
  if (!dtype.is_none()) {
    target = DTypeToName(DTypeFromName(py::str(dtype).cast<std::string>()));
  } else {
    const char kind = a.dtype().kind();
    if (kind == 'f') {
      target = was_array && a.itemsize() == 8 ? "float64" : "float32";
    } else if (kind == 'i' || kind == 'u') {
      target = "int64";
    } else if (kind == 'b') {
      target = "bool";
    } else {
      ATTEND_CHECK(false, "tensor: cannot make a tensor of ", DTypeOfArray(a),
                   " data (numbers, booleans, nested lists of them or NumPy arrays)");
    }
  }
  // asarray with order "C" (ascontiguousarray would turn a 0-d array into a 1-d one).
  a = np.attr("asarray")(a, "dtype"_a = target, "order"_a = "C");
  DType d = DTypeFromName(target);
  Shape shape;
  ATTEND_CHECK(a.ndim() <= Shape::kMaxDims, "tensor: ", a.ndim(), " dimensions, at most ",
               Shape::kMaxDims);
  for (py::ssize_t i = 0; i < a.ndim(); ++i) shape.push_back(a.shape(i));
  Tensor t = Tensor::Empty(shape, d);
  if (t.numel() > 0) std::memcpy(t.raw_data(), a.data(), t.numel() * DTypeSize(d));
  return t;
}

// ---- indexing ----

Tensor IndexTensor(const py::handle& h) {
  Tensor idx = ToTensor(h, "index");
  ATTEND_CHECK(idx.dtype() != DType::kBool,
               "Tensor indexing: boolean masks are not supported; use attend.where or "
               "attend.masked_fill");
  ATTEND_CHECK(idx.dtype() == DType::kI64 && idx.dim() == 1,
               "Tensor indexing: an index tensor must be 1-D int64, got ", idx.str());
  return idx;
}

bool IsAdvanced(const py::handle& h) {
  return !py::isinstance<py::int_>(h) && !py::isinstance<py::slice>(h) && !h.is_none() &&
         !h.is(py::ellipsis()) && !py::isinstance<py::bool_>(h);
}

// t[key] for ints, slices (any step), None, Ellipsis and 1-D int64 index tensors or lists.
// `views_only` refuses what would copy (for assignment).
Tensor GetItem(const Tensor& t, const py::handle& key, bool views_only) {
  py::tuple items =
      py::isinstance<py::tuple>(key) ? py::reinterpret_borrow<py::tuple>(key) : py::make_tuple(key);
  int consumed = 0;  // dims of t the key addresses
  bool ellipsis = false;
  for (const py::handle& k : items) {
    if (k.is(py::ellipsis())) {
      ATTEND_CHECK(!ellipsis, "Tensor indexing: at most one Ellipsis (...)");
      ellipsis = true;
    } else if (!k.is_none()) {
      ++consumed;
    }
  }
  ATTEND_CHECK(consumed <= t.dim(), "Tensor indexing: ", consumed, " indices for a tensor of ",
               t.dim(), " dimensions (", t.str(), ")");
  Tensor out = t;
  int d = 0;  // the dim of `out` the next index applies to
  for (const py::handle& k : items) {
    if (k.is(py::ellipsis())) {
      d += t.dim() - consumed;
    } else if (k.is_none()) {
      out = out.Unsqueeze(d);
      ++d;
    } else if (py::isinstance<py::bool_>(k)) {
      ATTEND_CHECK(false, "Tensor indexing: a boolean index is not supported");
    } else if (py::isinstance<py::int_>(k)) {
      int64_t i = k.cast<int64_t>();
      const int64_t n = out.size(d);
      ATTEND_CHECK(i >= -n && i < n, "Tensor indexing: index ", i, " is out of range for ",
                   "dimension ", d, " of size ", n);
      out = out.Select(d, i < 0 ? i + n : i);
    } else if (py::isinstance<py::slice>(k)) {
      py::ssize_t start, stop, step, length;
      if (!py::reinterpret_borrow<py::slice>(k).compute(out.size(d), &start, &stop, &step, &length))
        throw py::error_already_set();
      if (step == 1) {
        out = out.Narrow(d, start, length);
      } else {
        ATTEND_CHECK(!views_only, "Tensor assignment: a slice with step ", step,
                     " is not a view; assign through a step-1 slice");
        std::vector<int64_t> idx;
        for (py::ssize_t j = 0; j < length; ++j) idx.push_back(start + j * step);
        out = IndexSelect(out, d, Tensor::FromVector(idx, {length}));
      }
      ++d;
    } else {
      ATTEND_CHECK(!views_only, "Tensor assignment: an index tensor makes a copy, not a view");
      out = IndexSelect(out, d, IndexTensor(k));
      ++d;
    }
  }
  return out;
}

void SetItem(Tensor& t, const py::handle& key, const py::handle& value) {
  ATTEND_CHECK(!(GradMode::enabled() && t.requires_grad()),
               "Tensor assignment: in-place change of a tensor that requires grad (", t.str(),
               "); do it under attend.no_grad()");
  for (const py::handle& k : py::isinstance<py::tuple>(key) ? py::reinterpret_borrow<py::tuple>(key)
                                                            : py::make_tuple(key))
    ATTEND_CHECK(!IsAdvanced(k), "Tensor assignment: index tensors are not supported");
  NoGradGuard no_grad;
  Tensor view = GetItem(t, key, /*views_only=*/true);
  if (py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value) ||
      py::isinstance<py::bool_>(value)) {
    view.Fill(value.cast<double>());
  } else {
    view.CopyFrom(ToTensor(value, "value"));
  }
}

// ---- operators ----

bool IsNumber(const py::handle& h) {
  return py::isinstance<py::float_>(h) || py::isinstance<py::int_>(h);
}

// A Python number as a 0-d tensor of t's dtype (comparisons and where take tensors).
Tensor AsOperand(const Tensor& t, const py::handle& other) {
  if (IsNumber(other) || py::isinstance<py::bool_>(other))
    return Tensor::Scalar(other.cast<double>(), t.dtype());
  return ToTensor(other, "operand");
}

py::buffer_info Buffer(Tensor& t) {
  ATTEND_CHECK(!t.requires_grad(), "Tensor.numpy(): the tensor requires grad (", t.str(),
               "); call .detach() first");
  static char empty_byte = 0;
  std::vector<py::ssize_t> shape, strides;
  const py::ssize_t item = static_cast<py::ssize_t>(DTypeSize(t.dtype()));
  for (int d = 0; d < t.dim(); ++d) {
    shape.push_back(t.size(d));
    strides.push_back(t.stride(d) * item);
  }
  void* ptr = t.numel() > 0 ? t.raw_data() : &empty_byte;
  return py::buffer_info(ptr, item, Format(t.dtype()), t.dim(), shape, strides);
}

// The scope object of attend.no_grad() / attend.enable_grad().
struct GradScope {
  bool enable;
  std::vector<bool> saved;
};

std::string Repr(const Tensor& t) {
  if (!t.defined()) return "attend.Tensor(undefined)";
  std::string s = "attend.Tensor(" + t.str();
  if (t.requires_grad()) s += ", requires_grad=True";
  return s + ")\n" + t.ToString();
}

}  // namespace

const char* DTypeToName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "float32";
    case DType::kF64: return "float64";
    case DType::kI64: return "int64";
    case DType::kBool: return "bool";
    case DType::kI8: return "int8";
  }
  return "?";
}

DType DTypeFromName(const std::string& name) {
  if (name == "float32" || name == "float" || name == "f32") return DType::kF32;
  if (name == "float64" || name == "double" || name == "f64") return DType::kF64;
  if (name == "int64" || name == "long" || name == "i64") return DType::kI64;
  if (name == "bool") return DType::kBool;
  ATTEND_CHECK(false, "unknown dtype '", name, "' (float32, float64, int64, bool)");
  return DType::kF32;
}

Generator& DefaultGenerator() {
  static Generator gen(0);
  return gen;
}

Tensor ToTensor(const py::handle& obj, const char* what) {
  ATTEND_CHECK(!obj.is_none(), what, ": None where a tensor is needed");
  if (py::isinstance<Tensor>(obj)) {
    Tensor t = obj.cast<Tensor>();
    ATTEND_CHECK(t.defined(), what, ": an undefined tensor");
    return t;
  }
  if (py::isinstance<py::array>(obj)) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    DType d;
    bool strides_ok = true;
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
      strides_ok = strides_ok && a.strides(i) >= 0 && a.strides(i) % a.itemsize() == 0;
    if (NumpyDType(a, &d) && a.writeable() && strides_ok && a.ndim() <= Shape::kMaxDims)
      return FromNumpy(a);
  }
  return CopyFromPython(obj, py::none());
}

void BindTensor(py::module_& m) {
  py::class_<Generator>(m, "Generator",
                        "Counter-based random numbers: the same seed gives the same numbers "
                        "whatever the thread count.")
      .def(py::init<uint64_t>(), "seed"_a = 0)
      .def_property_readonly("seed", &Generator::seed)
      .def_property_readonly("offset", &Generator::offset)
      .def(
          "manual_seed", [](Generator& g, uint64_t s) { g.set_state(s, 0); }, "seed"_a,
          "Restarts the stream at `seed`.")
      .def("__repr__", [](const Generator& g) {
        return "attend.Generator(seed=" + std::to_string(g.seed()) +
               ", offset=" + std::to_string(g.offset()) + ")";
      });
  m.def(
      "manual_seed", [](uint64_t s) { DefaultGenerator().set_state(s, 0); }, "seed"_a,
      "Seeds the default generator that functions without `generator=` draw from.");
  m.def(
      "default_generator", []() -> Generator& { return DefaultGenerator(); },
      py::return_value_policy::reference, "The default generator.");

  py::class_<Tensor> cls(m, "Tensor", py::buffer_protocol(),
                         "An n-dimensional array of float32, float64, int64 or bool with "
                         "reverse-mode autograd.");
  cls.def_buffer(&Buffer)
      .def_property_readonly(
          "shape", [](const Tensor& t) { return ShapeTuple(t.shape()); }, "The sizes, a tuple.")
      .def(
          "size", [](const Tensor& t) { return ShapeTuple(t.shape()); }, "The sizes, a tuple.")
      .def(
          "size", [](const Tensor& t, int d) { return t.size(d); }, "dim"_a,
          "The size of one dimension (negative counts from the end).")
      .def_property_readonly(
          "dtype", [](const Tensor& t) { return DTypeToName(t.dtype()); },
          "'float32', 'float64', 'int64' or 'bool'.")
      .def_property_readonly("ndim", &Tensor::dim)
      .def("dim", &Tensor::dim, "The number of dimensions.")
      .def("numel", &Tensor::numel, "The number of elements.")
      .def(
          "stride", [](const Tensor& t) { return ShapeTuple(t.strides()); },
          "The strides in elements, a tuple.")
      .def("is_contiguous", &Tensor::is_contiguous, "Whether the elements lie in row-major order.")
      .def("__len__",
           [](const Tensor& t) {
             ATTEND_CHECK(t.dim() > 0, "len() of a 0-d tensor");
             return t.size(0);
           })
      .def_property(
          "requires_grad", &Tensor::requires_grad,
          [](Tensor& t, bool r) {
            ATTEND_CHECK(!r || IsFloating(t.dtype()), "requires_grad: only float32/float64 ",
                         "tensors can require gradients, not ", DTypeToName(t.dtype()));
            ATTEND_CHECK(r || t.is_leaf(), "requires_grad: only a leaf can be switched off; ",
                         "use .detach()");
            t.set_requires_grad(r);
          },
          "Whether backward() computes a gradient for this tensor (leaves only).")
      .def(
          "requires_grad_",
          [](Tensor& t, bool r) -> Tensor& {
            ATTEND_CHECK(!r || IsFloating(t.dtype()), "requires_grad_: only float32/float64 ",
                         "tensors can require gradients, not ", DTypeToName(t.dtype()));
            t.set_requires_grad(r);
            return t;
          },
          "requires_grad"_a = true, py::return_value_policy::reference_internal,
          "Sets requires_grad in place and returns the tensor.")
      .def_property(
          "grad",
          [](const Tensor& t) -> py::object {
            Tensor g = t.grad();
            if (!g.defined()) return py::none();
            return py::cast(g);
          },
          [](Tensor& t, const py::object& g) {
            if (g.is_none()) {
              t.ZeroGrad();
              return;
            }
            Tensor v = ToTensor(g, "grad");
            ATTEND_CHECK(v.shape() == t.shape() && v.dtype() == t.dtype(), "grad: ", v.str(),
                         " for a tensor of ", t.str());
            t.set_grad(v);
          },
          "The accumulated gradient (None before backward() or after zero_grad).")
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def(
          "backward",
          [](const Tensor& t, const py::object& gradient, bool retain_graph) {
            Tensor g = gradient.is_none() ? Tensor() : ToTensor(gradient, "gradient");
            py::gil_scoped_release release;
            t.Backward(g, retain_graph);
          },
          "gradient"_a = py::none(), "retain_graph"_a = false,
          "Accumulates d(self)/d(leaf) into every leaf's .grad (a one-element tensor, or with "
          "`gradient` of self's shape).")
      .def("zero_grad", &Tensor::ZeroGrad, "Drops .grad.")
      .def("detach", &Tensor::Detach, "The same memory without history.")
      .def("clone", &Tensor::Clone, "A fresh contiguous copy (differentiable).")
      .def("contiguous", &Tensor::Contiguous, "Itself when contiguous, else a contiguous copy.")
      .def(
          "numpy",
          [](const py::object& self) {
            Tensor& t = self.cast<Tensor&>();
            py::buffer_info b = Buffer(t);
            return py::array(py::dtype(b.format), b.shape, b.strides, b.ptr, self);
          },
          "A NumPy array over the same memory (no copy; it keeps the tensor alive).")
      .def(
          "item",
          [](const Tensor& t) -> py::object {
            ATTEND_CHECK(t.numel() == 1, "item(): the tensor ", t.str(),
                         " has more than one element");
            const double v = t.item();
            if (t.dtype() == DType::kI64) return py::int_(static_cast<int64_t>(v));
            if (t.dtype() == DType::kBool) return py::bool_(v != 0.0);
            return py::float_(v);
          },
          "The value of a one-element tensor as a Python number.")
      .def(
          "tolist",
          [](const py::object& self) {
            Tensor t = self.cast<Tensor>().Detach();
            return py::cast(t).attr("numpy")().attr("tolist")();
          },
          "The values as nested Python lists.")
      .def(
          "to",
          [](const Tensor& t, const std::string& dtype) { return t.To(DTypeFromName(dtype)); },
          "dtype"_a, "A copy in `dtype` (differentiable between float types).")
      .def(
          "float", [](const Tensor& t) { return t.To(DType::kF32); }, "A float32 copy.")
      .def(
          "double", [](const Tensor& t) { return t.To(DType::kF64); }, "A float64 copy.")
      .def(
          "long", [](const Tensor& t) { return t.To(DType::kI64); }, "An int64 copy.")
      .def(
          "reshape",
          [](const Tensor& t, const py::args& shape) {
            return t.Reshape(Shape(DimsFromArgs(shape, "reshape")));
          },
          "The same elements in another shape (a view when the strides allow; one -1).")
      .def(
          "view",
          [](const Tensor& t, const py::args& shape) {
            return t.View(Shape(DimsFromArgs(shape, "view")));
          },
          "The same elements in another shape, always a view (an error when impossible).")
      .def("flatten", &Tensor::Flatten, "start_dim"_a = 0, "end_dim"_a = -1,
           "Dims start_dim..end_dim merged into one (a view when the strides allow).")
      .def("transpose", &Tensor::Transpose, "dim0"_a, "dim1"_a, "Two dims swapped (a view).")
      .def_property_readonly("T", &Tensor::T, "The last two dims swapped.")
      .def("t", &Tensor::T, "The last two dims swapped (a view).")
      .def(
          "permute",
          [](const Tensor& t, const py::args& dims) {
            const std::vector<int64_t> d = DimsFromArgs(dims, "permute");
            return t.Permute(std::vector<int>(d.begin(), d.end()));
          },
          "The dims reordered (a view).")
      .def("narrow", &Tensor::Narrow, "dim"_a, "start"_a, "length"_a,
           "Elements start..start+length-1 of one dim (a view).")
      .def("select", &Tensor::Select, "dim"_a, "index"_a,
           "One index of a dim, which goes (a view).")
      .def(
          "expand",
          [](const Tensor& t, const py::args& shape) {
            return t.Expand(Shape(DimsFromArgs(shape, "expand")));
          },
          "Broadcasts size-1 dims without a copy (-1 keeps a size).")
      .def(
          "squeeze",
          [](const Tensor& t, const py::object& dim) {
            return dim.is_none() ? t.Squeeze() : t.Squeeze(dim.cast<int>());
          },
          "dim"_a = py::none(), "Size-1 dims removed (all, or `dim`; a view).")
      .def("unsqueeze", &Tensor::Unsqueeze, "dim"_a, "A new size-1 dim at `dim` (a view).")
      .def(
          "copy_",
          [](Tensor& t, const py::object& src) -> Tensor& {
            ATTEND_CHECK(!(GradMode::enabled() && t.requires_grad()),
                         "copy_: in-place change of a tensor that requires grad; do it under "
                         "attend.no_grad()");
            t.CopyFrom(ToTensor(src, "src"));
            return t;
          },
          "src"_a, py::return_value_policy::reference_internal,
          "Copies src (broadcast, converted) into this tensor in place; not recorded.")
      .def(
          "fill_",
          [](Tensor& t, double v) -> Tensor& {
            ATTEND_CHECK(!(GradMode::enabled() && t.requires_grad()),
                         "fill_: in-place change of a tensor that requires grad; do it under "
                         "attend.no_grad()");
            t.Fill(v);
            return t;
          },
          "value"_a, py::return_value_policy::reference_internal,
          "Sets every element to `value` in place; not recorded.")
      .def(
          "data_ptr", [](Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()); },
          "The address of the first element.")
      .def("__getitem__",
           [](const Tensor& t, const py::handle& key) { return GetItem(t, key, false); })
      .def("__setitem__", &SetItem)
      .def("__repr__", &Repr)
      .def("__hash__",
           [](const py::object& self) {
             return py::hash(py::int_(reinterpret_cast<uintptr_t>(self.ptr())));
           })
      .def("__bool__",
           [](const Tensor& t) {
             ATTEND_CHECK(t.numel() == 1, "bool() of a tensor of ", t.numel(),
                          " elements is ambiguous");
             return t.item() != 0.0;
           })
      .def("__float__", [](const Tensor& t) { return t.item(); })
      .def("__int__", [](const Tensor& t) { return static_cast<int64_t>(t.item()); })
      .def("__neg__", [](const Tensor& a) { return Neg(a); })
      .def("__abs__", [](const Tensor& a) { return Abs(a); })
      .def("__pow__", [](const Tensor& a, double e) { return Pow(a, e); })
      .def("__matmul__",
           [](const Tensor& a, const py::object& b) { return Matmul(a, ToTensor(b)); })
      .def("__rmatmul__",
           [](const Tensor& a, const py::object& b) { return Matmul(ToTensor(b), a); });
  // Arithmetic with tensors, arrays and Python numbers (numbers take the scalar ops).
  cls.def("__add__",
          [](const Tensor& a, const py::object& b) {
            return IsNumber(b) ? AddScalar(a, b.cast<double>()) : Add(a, ToTensor(b, "operand"));
          })
      .def("__radd__",
           [](const Tensor& a, const py::object& b) {
             return IsNumber(b) ? AddScalar(a, b.cast<double>()) : Add(ToTensor(b, "operand"), a);
           })
      .def("__sub__",
           [](const Tensor& a, const py::object& b) {
             return IsNumber(b) ? AddScalar(a, -b.cast<double>()) : Sub(a, ToTensor(b, "operand"));
           })
      .def("__rsub__",
           [](const Tensor& a, const py::object& b) {
             return IsNumber(b) ? AddScalar(Neg(a), b.cast<double>())
                                : Sub(ToTensor(b, "operand"), a);
           })
      .def("__mul__",
           [](const Tensor& a, const py::object& b) {
             return IsNumber(b) ? MulScalar(a, b.cast<double>()) : Mul(a, ToTensor(b, "operand"));
           })
      .def("__rmul__",
           [](const Tensor& a, const py::object& b) {
             return IsNumber(b) ? MulScalar(a, b.cast<double>()) : Mul(ToTensor(b, "operand"), a);
           })
      .def("__truediv__",
           [](const Tensor& a, const py::object& b) {
             if (IsNumber(b)) return a / b.cast<double>();
             return Div(a, ToTensor(b, "operand"));
           })
      .def("__rtruediv__",
           [](const Tensor& a, const py::object& b) {
             if (IsNumber(b)) return b.cast<double>() / a;
             return Div(ToTensor(b, "operand"), a);
           })
      .def("__eq__", [](const Tensor& a, const py::object& b) { return Eq(a, AsOperand(a, b)); })
      .def("__ne__", [](const Tensor& a, const py::object& b) { return Ne(a, AsOperand(a, b)); })
      .def("__lt__", [](const Tensor& a, const py::object& b) { return Lt(a, AsOperand(a, b)); })
      .def("__le__", [](const Tensor& a, const py::object& b) { return Le(a, AsOperand(a, b)); })
      .def("__gt__", [](const Tensor& a, const py::object& b) { return Gt(a, AsOperand(a, b)); })
      .def("__ge__", [](const Tensor& a, const py::object& b) { return Ge(a, AsOperand(a, b)); })
      .def("__invert__", [](const Tensor& a) { return LogicalNot(a); })
      .def("__and__",
           [](const Tensor& a, const py::object& b) { return LogicalAnd(a, ToTensor(b)); })
      .def("__or__",
           [](const Tensor& a, const py::object& b) { return LogicalOr(a, ToTensor(b)); });

  // ---- creation ----
  m.def(
      "tensor",
      [](const py::object& data, const py::object& dtype, bool requires_grad) {
        Tensor t;
        if (py::isinstance<Tensor>(data)) {
          t = data.cast<Tensor>().Detach().Clone();
          if (!dtype.is_none()) t = t.To(DTypeFromName(py::str(dtype).cast<std::string>()));
        } else {
          ATTEND_CHECK(!data.is_none(), "tensor: None is not data");
          t = CopyFromPython(data, dtype);
        }
        if (requires_grad) {
          ATTEND_CHECK(IsFloating(t.dtype()), "tensor: requires_grad needs float32/float64, not ",
                       DTypeToName(t.dtype()));
          t.set_requires_grad(true);
        }
        return t;
      },
      "data"_a, "dtype"_a = py::none(), "requires_grad"_a = false,
      "A new tensor holding a copy of `data` (numbers, nested lists, NumPy arrays, tensors). "
      "Python floats become float32, integers int64, booleans bool; arrays keep their dtype.");
  m.def("from_numpy", &FromNumpy, "array"_a,
        "A tensor over the NumPy array's memory (no copy): writes through either are seen by "
        "both, and the tensor keeps the array alive. float32, float64, int64 and bool arrays "
        "with non-negative strides.");
  m.def(
      "as_tensor", [](const py::object& obj) { return ToTensor(obj); }, "data"_a,
      "The object itself when it is a tensor, a view of a NumPy array when possible, else a "
      "copy.");
  auto creator = [&m](const char* name, auto make, const char* doc) {
    m.def(
        name,
        [make, name](const py::args& shape, const std::string& dtype, bool requires_grad) {
          Tensor t = make(ShapeFromArgs(shape, name), DTypeFromName(dtype));
          if (requires_grad) t.set_requires_grad(true);
          return t;
        },
        "dtype"_a = "float32", "requires_grad"_a = false, doc);
  };
  creator(
      "zeros", [](const Shape& s, DType d) { return Tensor::Zeros(s, d); },
      "A tensor of zeros: zeros(2, 3) or zeros((2, 3)).");
  creator(
      "ones", [](const Shape& s, DType d) { return Tensor::Ones(s, d); },
      "A tensor of ones: ones(2, 3) or ones((2, 3)).");
  creator(
      "empty", [](const Shape& s, DType d) { return Tensor::Empty(s, d); },
      "A tensor of uninitialised values: empty(2, 3) or empty((2, 3)).");
  m.def(
      "full",
      [](const py::object& shape, double value, const std::string& dtype, bool requires_grad) {
        Tensor t =
            Tensor::Full(ShapeFromArgs(py::make_tuple(shape), "full"), value, DTypeFromName(dtype));
        if (requires_grad) t.set_requires_grad(true);
        return t;
      },
      "shape"_a, "fill_value"_a, "dtype"_a = "float32", "requires_grad"_a = false,
      "A tensor of `shape` with every element fill_value.");
  m.def(
      "arange",
      [](int64_t n, const std::string& dtype) {
        ATTEND_CHECK(n >= 0, "arange: negative length ", n);
        return Tensor::Arange(n, DTypeFromName(dtype));
      },
      "end"_a, "dtype"_a = "int64", "0, 1, ..., end - 1.");
  auto random = [&m](const char* name, auto make, const char* doc) {
    m.def(
        name,
        [make, name](const py::args& shape, const std::string& dtype, Generator* gen,
                     bool requires_grad) {
          Generator& g = gen ? *gen : DefaultGenerator();
          const DType d = DTypeFromName(dtype);
          ATTEND_CHECK(IsFloating(d), name, ": dtype ", dtype, " (float32 or float64)");
          Tensor t = make(ShapeFromArgs(shape, name), g, d);
          if (requires_grad) t.set_requires_grad(true);
          return t;
        },
        "dtype"_a = "float32", "generator"_a = nullptr, "requires_grad"_a = false, doc);
  };
  random(
      "randn", [](const Shape& s, Generator& g, DType d) { return Tensor::Randn(s, g, d); },
      "Standard normal values: randn(2, 3, generator=None).");
  random(
      "rand", [](const Shape& s, Generator& g, DType d) { return Tensor::Rand(s, g, d); },
      "Values uniform in [0, 1): rand(2, 3, generator=None).");
  m.def(
      "randint",
      [](int64_t low, int64_t high, const py::object& shape, Generator* gen) {
        ATTEND_CHECK(low < high, "randint: low ", low, " must be below high ", high);
        return Tensor::Randint(ShapeFromArgs(py::make_tuple(shape), "randint"), low, high,
                               gen ? *gen : DefaultGenerator());
      },
      "low"_a, "high"_a, "size"_a, "generator"_a = nullptr,
      "Integers uniform in [low, high), int64.");

  // ---- grad mode ----
  py::class_<GradScope>(m, "_GradScope")
      .def("__enter__",
           [](GradScope& s) {
             s.saved.push_back(GradMode::enabled());
             GradMode::set_enabled(s.enable);
           })
      .def("__exit__", [](GradScope& s, const py::args&) {
        GradMode::set_enabled(s.saved.back());
        s.saved.pop_back();
        return false;
      });
  m.def(
      "no_grad",
      []() {
        return GradScope{false, {}};
      },
      "A context (with attend.no_grad(): ...) in which no op records history.");
  m.def(
      "enable_grad",
      []() {
        return GradScope{true, {}};
      },
      "A context in which ops record history again.");
  m.def("is_grad_enabled", &GradMode::enabled, "Whether ops record history on this thread.");
  m.def(
      "set_num_threads", [](int n) { SetNumThreads(n); }, "n"_a,
      "Threads of attend's kernels and OpenBLAS (0 = all cores).");
  m.def("get_num_threads", &GetNumThreads, "The threads of attend's kernels.");
  m.def(
      "allocator_stats",
      []() {
        const AllocatorStats s = GetAllocatorStats();
        py::dict d;
        d["system_allocs"] = s.system_allocs;
        d["cache_hits"] = s.cache_hits;
        d["bytes_cached"] = s.bytes_cached;
        d["bytes_in_use"] = s.bytes_in_use;
        d["peak_bytes_in_use"] = s.peak_bytes_in_use;
        return d;
      },
      "The caching allocator's counters (bytes in use, cached, peak; system allocations).");
}

}  // namespace attend::python
