// The differentiable ops as module-level functions (attend.softmax, attend.conv2d, attend.grad,
// ...), named and keyworded as in torch / torch.nn.functional.
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/ops.h"
#include "attend/ops/conv.h"
#include "attend/ops/image.h"
#include "attend/ops/rnn.h"
#include "bind.h"

namespace attend::python {
namespace {

using namespace pybind11::literals;

// Named-tuple types for the ops that return (values, indices), as torch.return_types. Created
// once and never freed (they must outlive every call, including those at interpreter exit).
py::handle topk_type, max_type, min_type;

py::object NamedPair(py::handle type, Tensor values, Tensor indices) {
  return type(std::move(values), std::move(indices));
}

bool IsNumber(const py::handle& h) {
  return py::isinstance<py::float_>(h) || py::isinstance<py::int_>(h);
}

// An optional tensor argument: None is the library's undefined tensor.
Tensor Optional(const py::object& obj, const char* what) {
  return obj.is_none() ? Tensor() : ToTensor(obj, what);
}

// A Python number as a 0-d tensor of `like`'s dtype, anything else as a tensor.
Tensor Operand(const py::handle& obj, const Tensor& like, const char* what) {
  if (IsNumber(obj)) {
    const double v = obj.cast<double>();
    // An int64/bool tensor against 0.5 would silently compare against 0.
    ATTEND_CHECK(IsFloating(like.dtype()) || v == std::floor(v), what, ": the number ", v,
                 " against a tensor of ", DTypeToName(like.dtype()), " (convert it first)");
    return Tensor::Scalar(v, like.dtype());
  }
  return ToTensor(obj, what);
}

// A sequence of ints (sizes, dims), attend::Error naming `what` for anything else.
std::vector<int64_t> IntList(const py::object& obj, const char* what) {
  ATTEND_CHECK(py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj), what,
               ": an int or a sequence of ints, got ", py::str(obj.get_type()).cast<std::string>());
  std::vector<int64_t> out;
  for (const py::handle& h : obj) {
    ATTEND_CHECK(py::isinstance<py::int_>(h), what, ": an int or a sequence of ints, got an item ",
                 py::str(h.get_type()).cast<std::string>());
    out.push_back(h.cast<int64_t>());
  }
  return out;
}

// One dim argument, attend::Error for anything but an int.
int DimInt(const py::object& dim, const char* what) {
  ATTEND_CHECK(py::isinstance<py::int_>(dim), what, ": dim must be an int, got ",
               py::str(dim.get_type()).cast<std::string>());
  return dim.cast<int>();
}

// dim=None (every dim), an int, or a tuple/list of ints.
std::vector<int> Dims(const py::object& dim) {
  std::vector<int> dims;
  if (dim.is_none()) return dims;
  if (py::isinstance<py::int_>(dim)) {
    dims.push_back(dim.cast<int>());
    return dims;
  }
  for (int64_t d : IntList(dim, "dim")) dims.push_back(static_cast<int>(d));
  return dims;
}

// PyTorch's int-or-pair arguments (kernel sizes, strides, paddings).
Size2 ToSize2(const py::object& obj, const char* what) {
  if (py::isinstance<py::int_>(obj)) return Size2(obj.cast<int64_t>());
  std::vector<int64_t> v = IntList(obj, what);
  ATTEND_CHECK(v.size() == 2, what, ": an int or a pair (h, w), got ", v.size(), " values");
  return Size2(v[0], v[1]);
}

std::vector<Tensor> TensorList(const py::object& seq, const char* what) {
  ATTEND_CHECK(!seq.is_none(), what, ": None where a sequence of tensors is needed");
  std::vector<Tensor> out;
  if (py::isinstance<Tensor>(seq)) {
    out.push_back(ToTensor(seq, what));
    return out;
  }
  for (const py::handle& h : seq) out.push_back(ToTensor(h, what));
  return out;
}

py::tuple Tuple(const std::vector<Tensor>& ts) {
  py::tuple t(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) t[i] = py::cast(ts[i]);
  return t;
}

Reduction ReductionFromName(const std::string& name) {
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  if (name == "none") return Reduction::kNone;
  ATTEND_CHECK(false, "cross_entropy: reduction '", name, "' (mean, sum or none)");
  return Reduction::kMean;
}

// x + alpha * other / x - alpha * other with numbers on either side, as torch.add / torch.sub.
Tensor AddLike(const py::object& input, const py::object& other, double alpha, double sign) {
  const double s = sign * alpha;
  if (IsNumber(other)) return AddScalar(ToTensor(input, "input"), s * other.cast<double>());
  Tensor b = ToTensor(other, "other");
  if (s != 1.0) b = MulScalar(b, s);
  if (IsNumber(input)) return AddScalar(b, input.cast<double>());
  return Add(ToTensor(input, "input"), b);
}

void BindElementwise(py::module_& m) {
  m.def(
      "add",
      [](const py::object& input, const py::object& other, double alpha) {
        return AddLike(input, other, alpha, 1.0);
      },
      "input"_a, "other"_a, py::kw_only(), "alpha"_a = 1.0,
      "input + alpha * other, broadcasting (either may be a number).");
  m.def(
      "sub",
      [](const py::object& input, const py::object& other, double alpha) {
        return AddLike(input, other, alpha, -1.0);
      },
      "input"_a, "other"_a, py::kw_only(), "alpha"_a = 1.0,
      "input - alpha * other, broadcasting (either may be a number).");
  m.def(
      "mul",
      [](const py::object& input, const py::object& other) {
        if (IsNumber(other)) return MulScalar(ToTensor(input, "input"), other.cast<double>());
        if (IsNumber(input)) return MulScalar(ToTensor(other, "other"), input.cast<double>());
        return Mul(ToTensor(input, "input"), ToTensor(other, "other"));
      },
      "input"_a, "other"_a, "input * other, broadcasting (either may be a number).");
  m.def(
      "div",
      [](const py::object& input, const py::object& other) {
        if (IsNumber(other)) return ToTensor(input, "input") / other.cast<double>();
        if (IsNumber(input)) return input.cast<double>() / ToTensor(other, "other");
        return Div(ToTensor(input, "input"), ToTensor(other, "other"));
      },
      "input"_a, "other"_a, "input / other (true division), broadcasting.");
  m.def(
      "pow",
      [](const py::object& input, double exponent) {
        return Pow(ToTensor(input, "input"), exponent);
      },
      "input"_a, "exponent"_a, "input ** exponent, elementwise (exponent a number).");
  auto unary = [&m](const char* name, Tensor (*fn)(const Tensor&), const char* doc) {
    m.def(
        name, [fn](const py::object& input) { return fn(ToTensor(input, "input")); }, "input"_a,
        doc);
  };
  unary("neg", &Neg, "-input, elementwise.");
  unary("abs", &Abs, "|input|, elementwise.");
  unary("exp", &Exp, "e ** input, elementwise.");
  unary("log", &Log, "The natural logarithm, elementwise.");
  unary("sqrt", &Sqrt, "The square root, elementwise.");
  unary("rsqrt", &Rsqrt, "1 / sqrt(input), elementwise.");
  unary("tanh", &Tanh, "The hyperbolic tangent, elementwise.");
  unary("sigmoid", &Sigmoid, "The logistic sigmoid 1 / (1 + e ** -input), elementwise.");
  unary("relu", &Relu, "max(input, 0), elementwise.");
  m.def(
      "gelu",
      [](const py::object& input, const std::string& approximate) {
        ATTEND_CHECK(approximate == "none", "gelu: approximate='", approximate,
                     "' is not supported (only the exact erf form, 'none')");
        return Gelu(ToTensor(input, "input"));
      },
      "input"_a, "approximate"_a = "none",
      "GELU, the exact form input * Phi(input) (Phi the standard normal CDF).");
  auto clamp = [](const py::object& input, std::optional<double> min, std::optional<double> max) {
    ATTEND_CHECK(min || max, "clamp: at least one of min and max must be given");
    return Clamp(ToTensor(input, "input"), min, max);
  };
  m.def("clamp", clamp, "input"_a, "min"_a = py::none(), "max"_a = py::none(),
        "input limited to [min, max] (either bound may be None).");
  m.def("clip", clamp, "input"_a, "min"_a = py::none(), "max"_a = py::none(), "An alias of clamp.");
}

void BindSelection(py::module_& m) {
  auto compare = [&m](const char* name, Tensor (*fn)(const Tensor&, const Tensor&),
                      const char* doc) {
    m.def(
        name,
        [fn](const py::object& input, const py::object& other) {
          Tensor a = ToTensor(input, "input");
          return fn(a, Operand(other, a, "other"));
        },
        "input"_a, "other"_a, doc);
  };
  compare("eq", &Eq, "input == other, elementwise, broadcasting; bool.");
  compare("ne", &Ne, "input != other, elementwise, broadcasting; bool.");
  compare("lt", &Lt, "input < other, elementwise, broadcasting; bool.");
  compare("le", &Le, "input <= other, elementwise, broadcasting; bool.");
  compare("gt", &Gt, "input > other, elementwise, broadcasting; bool.");
  compare("ge", &Ge, "input >= other, elementwise, broadcasting; bool.");
  m.def(
      "logical_not", [](const py::object& input) { return LogicalNot(ToTensor(input, "input")); },
      "input"_a, "not input, elementwise (bool).");
  m.def(
      "logical_and",
      [](const py::object& input, const py::object& other) {
        return LogicalAnd(ToTensor(input, "input"), ToTensor(other, "other"));
      },
      "input"_a, "other"_a, "input and other, elementwise, broadcasting (bool).");
  m.def(
      "logical_or",
      [](const py::object& input, const py::object& other) {
        return LogicalOr(ToTensor(input, "input"), ToTensor(other, "other"));
      },
      "input"_a, "other"_a, "input or other, elementwise, broadcasting (bool).");
  m.def(
      "where",
      [](const py::object& condition, const py::object& input, const py::object& other) {
        Tensor cond = ToTensor(condition, "condition");
        ATTEND_CHECK(!(IsNumber(input) && IsNumber(other)),
                     "where: at least one of input and other must be a tensor");
        Tensor a, b;
        if (IsNumber(input)) {
          b = ToTensor(other, "other");
          a = Operand(input, b, "input");
        } else {
          a = ToTensor(input, "input");
          b = Operand(other, a, "other");
        }
        return Where(cond, a, b);
      },
      "condition"_a, "input"_a, "other"_a,
      "condition ? input : other, elementwise; all three broadcast together.");
  m.def(
      "masked_fill",
      [](const py::object& input, const py::object& mask, double value) {
        return MaskedFill(ToTensor(input, "input"), ToTensor(mask, "mask"), value);
      },
      "input"_a, "mask"_a, "value"_a,
      "input with `value` where the bool mask (broadcast to input) is true.");
}

// max(x) / max(x, dim): the overall maximum, or (values, indices) along dim as torch.max. The
// values are gathered at the indices, so the gradient goes to that element, as in PyTorch.
py::object MaxMin(const py::object& input, const py::object& dim, bool keepdim, bool is_max) {
  Tensor a = ToTensor(input, "input");
  if (dim.is_none()) return py::cast(is_max ? Max(a) : Min(a));
  const int d = DimInt(dim, is_max ? "max" : "min");
  Tensor idx = is_max ? Argmax(a, d, /*keepdim=*/true) : Argmin(a, d, /*keepdim=*/true);
  Tensor values = Gather(a, d, idx);
  if (!keepdim) {
    values = values.Squeeze(d);
    idx = idx.Squeeze(d);
  }
  return NamedPair(is_max ? max_type : min_type, values, idx);
}

// The correction of var/std from torch's two spellings (unbiased= or correction=).
int Correction(bool unbiased, const std::optional<int>& correction) {
  return correction ? *correction : (unbiased ? 1 : 0);
}

void BindReductions(py::module_& m) {
  using Reducer = Tensor (*)(const Tensor&, const std::vector<int>&, bool);
  auto reduce = [&m](const char* name, Reducer fn, const char* doc) {
    m.def(
        name,
        [fn](const py::object& input, const py::object& dim, bool keepdim) {
          return fn(ToTensor(input, "input"), Dims(dim), keepdim);
        },
        "input"_a, "dim"_a = py::none(), "keepdim"_a = false, doc);
  };
  reduce("sum", &Sum, "The sum over dim (an int, a tuple, or None for all dims).");
  reduce("mean", &Mean, "The mean over dim (an int, a tuple, or None for all dims).");
  reduce("amax", &Max,
         "The maximum over dim (int, tuple or None); ties share the gradient equally.");
  reduce("amin", &Min,
         "The minimum over dim (int, tuple or None); ties share the gradient equally.");
  m.def(
      "max",
      [](const py::object& input, const py::object& dim, bool keepdim) {
        return MaxMin(input, dim, keepdim, true);
      },
      "input"_a, "dim"_a = py::none(), "keepdim"_a = false,
      "max(input): the largest element; max(input, dim): (values, indices) along dim.");
  m.def(
      "min",
      [](const py::object& input, const py::object& dim, bool keepdim) {
        return MaxMin(input, dim, keepdim, false);
      },
      "input"_a, "dim"_a = py::none(), "keepdim"_a = false,
      "min(input): the smallest element; min(input, dim): (values, indices) along dim.");
  m.def(
      "argmax",
      [](const py::object& input, const py::object& dim, bool keepdim) {
        Tensor a = ToTensor(input, "input");
        if (dim.is_none()) return Argmax(a.Flatten(), 0);
        return Argmax(a, DimInt(dim, "argmax"), keepdim);
      },
      "input"_a, "dim"_a = py::none(), "keepdim"_a = false,
      "The index (int64) of the first maximum along dim, or in the flattened input.");
  m.def(
      "argmin",
      [](const py::object& input, const py::object& dim, bool keepdim) {
        Tensor a = ToTensor(input, "input");
        if (dim.is_none()) return Argmin(a.Flatten(), 0);
        return Argmin(a, DimInt(dim, "argmin"), keepdim);
      },
      "input"_a, "dim"_a = py::none(), "keepdim"_a = false,
      "The index (int64) of the first minimum along dim, or in the flattened input.");
  m.def(
      "var",
      [](const py::object& input, const py::object& dim, bool unbiased, bool keepdim,
         std::optional<int> correction) {
        return Var(ToTensor(input, "input"), Dims(dim), Correction(unbiased, correction), keepdim);
      },
      "input"_a, "dim"_a = py::none(), "unbiased"_a = true, "keepdim"_a = false, py::kw_only(),
      "correction"_a = py::none(),
      "The variance over dim (int, tuple or None), divided by n - correction (1 = unbiased).");
  m.def(
      "std",
      [](const py::object& input, const py::object& dim, bool unbiased, bool keepdim,
         std::optional<int> correction) {
        return Sqrt(
            Var(ToTensor(input, "input"), Dims(dim), Correction(unbiased, correction), keepdim));
      },
      "input"_a, "dim"_a = py::none(), "unbiased"_a = true, "keepdim"_a = false, py::kw_only(),
      "correction"_a = py::none(), "The standard deviation, sqrt(var(...)).");
}

void BindLinearAlgebra(py::module_& m) {
  m.def(
      "matmul",
      [](const py::object& input, const py::object& other) {
        Tensor a = ToTensor(input, "input"), b = ToTensor(other, "other");
        py::gil_scoped_release release;
        return Matmul(a, b);
      },
      "input"_a, "other"_a,
      "The matrix product as torch.matmul: 1-D, 2-D and batched operands, batch dims "
      "broadcast.");
  m.def(
      "linear",
      [](const py::object& input, const py::object& weight, const py::object& bias) {
        Tensor x = ToTensor(input, "input"), w = ToTensor(weight, "weight");
        Tensor b = bias.is_none() ? Tensor() : ToTensor(bias, "bias");
        py::gil_scoped_release release;
        return Linear(x, w, b);
      },
      "input"_a, "weight"_a, "bias"_a = py::none(),
      "input [..., in] @ weight [out, in]^T + bias [out], as torch.nn.functional.linear: one GEMM\n"
      "that starts from the bias.");
  m.def(
      "mm",
      [](const py::object& input, const py::object& mat2) {
        Tensor a = ToTensor(input, "input"), b = ToTensor(mat2, "mat2");
        ATTEND_CHECK(a.dim() == 2 && b.dim() == 2, "mm: two matrices, got ", a.str(), " and ",
                     b.str());
        py::gil_scoped_release release;
        return Matmul(a, b);
      },
      "input"_a, "mat2"_a, "[n, k] @ [k, m] -> [n, m].");
  m.def(
      "bmm",
      [](const py::object& input, const py::object& mat2) {
        Tensor a = ToTensor(input, "input"), b = ToTensor(mat2, "mat2");
        ATTEND_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: two batches of matrices, got ", a.str(),
                     " and ", b.str());
        py::gil_scoped_release release;
        return Matmul(a, b);
      },
      "input"_a, "mat2"_a, "[b, n, k] @ [b, k, m] -> [b, n, m].");
}

void BindNormalisation(py::module_& m) {
  m.def(
      "softmax",
      [](const py::object& input, int dim, const py::object& mask) {
        return Softmax(ToTensor(input, "input"), dim, Optional(mask, "mask"));
      },
      "input"_a, "dim"_a, "mask"_a = py::none(),
      "Softmax along dim. mask (bool, broadcastable): true = excluded (weight 0; a fully "
      "masked row is all zeros).");
  m.def(
      "log_softmax",
      [](const py::object& input, int dim, const py::object& mask) {
        return LogSoftmax(ToTensor(input, "input"), dim, Optional(mask, "mask"));
      },
      "input"_a, "dim"_a, "mask"_a = py::none(),
      "log(softmax(input, dim)), computed stably; masked positions are -inf.");
  m.def(
      "layer_norm",
      [](const py::object& input, const py::object& normalized_shape, const py::object& weight,
         const py::object& bias, double eps) {
        Tensor a = ToTensor(input, "input");
        std::vector<int64_t> norm;
        if (py::isinstance<py::int_>(normalized_shape)) {
          norm.push_back(normalized_shape.cast<int64_t>());
        } else {
          norm = IntList(normalized_shape, "layer_norm normalized_shape");
        }
        const int n = static_cast<int>(norm.size());
        ATTEND_CHECK(n >= 1 && n <= a.dim(), "layer_norm: normalized_shape of ", n,
                     " dims for an input ", a.str());
        for (int i = 0; i < n; ++i)
          ATTEND_CHECK(a.size(a.dim() - n + i) == norm[i], "layer_norm: normalized_shape does ",
                       "not match the trailing dims of the input ", a.str());
        return LayerNorm(a, n, Optional(weight, "weight"), Optional(bias, "bias"), eps);
      },
      "input"_a, "normalized_shape"_a, "weight"_a = py::none(), "bias"_a = py::none(),
      "eps"_a = 1e-5,
      "Normalises over the trailing dims named by normalized_shape, then * weight + bias.");
  m.def(
      "dropout",
      [](const py::object& input, double p, bool training, Generator* generator) {
        return Dropout(ToTensor(input, "input"), p, training,
                       generator ? *generator : DefaultGenerator());
      },
      "input"_a, "p"_a = 0.5, "training"_a = true, "generator"_a = nullptr,
      "Inverted dropout: zeroes elements with probability p, scales the rest by 1/(1-p); the "
      "identity when not training.");
}

void BindIndexing(py::module_& m) {
  m.def(
      "embedding",
      [](const py::object& input, const py::object& weight, std::optional<int64_t> padding_idx) {
        Tensor w = ToTensor(weight, "weight");
        int64_t pad = -1;
        if (padding_idx) {
          ATTEND_CHECK(w.dim() == 2, "embedding: weight must be [vocab, dim], got ", w.str());
          pad = *padding_idx < 0 ? *padding_idx + w.size(0) : *padding_idx;
          ATTEND_CHECK(pad >= 0 && pad < w.size(0), "embedding: padding_idx ", *padding_idx,
                       " is out of range for ", w.size(0), " rows");
        }
        return Embedding(w, ToTensor(input, "input"), pad);
      },
      "input"_a, "weight"_a, "padding_idx"_a = py::none(),
      "Rows of weight [V, D] at the int64 indices of any shape -> [..., D]; padding_idx's row "
      "gets no gradient.");
  m.def(
      "index_select",
      [](const py::object& input, int dim, const py::object& index) {
        return IndexSelect(ToTensor(input, "input"), dim, ToTensor(index, "index"));
      },
      "input"_a, "dim"_a, "index"_a, "The entries at the 1-D int64 index along dim.");
  m.def(
      "gather",
      [](const py::object& input, int dim, const py::object& index) {
        return Gather(ToTensor(input, "input"), dim, ToTensor(index, "index"));
      },
      "input"_a, "dim"_a, "index"_a,
      "out[i][j] = input[index[i][j]][j] (dim 0), as torch.gather; index int64.");
  m.def(
      "topk",
      [](const py::object& input, int64_t k, int dim, bool largest, bool sorted) {
        (void)sorted;  // always sorted, which is also a valid unsorted answer
        auto [values, indices] = TopK(ToTensor(input, "input"), k, dim, largest);
        return NamedPair(topk_type, values, indices);
      },
      "input"_a, "k"_a, "dim"_a = -1, "largest"_a = true, "sorted"_a = true,
      "(values, indices) of the k largest (or smallest) entries along dim, sorted.");
}

void BindJoining(py::module_& m) {
  auto cat = [](const py::object& tensors, int dim) {
    return Concat(TensorList(tensors, "tensors"), dim);
  };
  m.def("cat", cat, "tensors"_a, "dim"_a = 0, "Joins the tensors along an existing dim.");
  m.def("concat", cat, "tensors"_a, "dim"_a = 0, "An alias of cat.");
  m.def(
      "stack",
      [](const py::object& tensors, int dim) { return Stack(TensorList(tensors, "tensors"), dim); },
      "tensors"_a, "dim"_a = 0, "Joins same-shaped tensors along a new dim.");
  m.def(
      "split",
      [](const py::object& tensor, const py::object& split_size_or_sections, int dim) {
        Tensor a = ToTensor(tensor, "tensor");
        if (py::isinstance<py::int_>(split_size_or_sections))
          return Tuple(Split(a, split_size_or_sections.cast<int64_t>(), dim));
        // A list of section sizes: narrow views that must cover the dim exactly.
        const std::vector<int64_t> sections = IntList(split_size_or_sections, "split");
        const int64_t n = a.size(dim);
        std::vector<Tensor> parts;
        int64_t start = 0;
        for (int64_t s : sections) {
          ATTEND_CHECK(s >= 0, "split: negative section size ", s);
          ATTEND_CHECK(start + s <= n, "split: sections sum past the size ", n, " of dim ", dim);
          parts.push_back(a.Narrow(dim, start, s));
          start += s;
        }
        ATTEND_CHECK(start == n, "split: sections sum to ", start, ", not the size ", n, " of dim ",
                     dim);
        return Tuple(parts);
      },
      "tensor"_a, "split_size_or_sections"_a, "dim"_a = 0,
      "Views of pieces of split_size along dim (the last may be smaller), or of the listed "
      "sizes.");
  m.def(
      "chunk",
      [](const py::object& input, int64_t chunks, int dim) {
        return Tuple(Chunk(ToTensor(input, "input"), chunks, dim));
      },
      "input"_a, "chunks"_a, "dim"_a = 0, "At most `chunks` views along dim, as torch.chunk.");
  m.def(
      "cross_entropy",
      [](const py::object& input, const py::object& target, int64_t ignore_index,
         double label_smoothing, const std::string& reduction) {
        return CrossEntropy(ToTensor(input, "input"), ToTensor(target, "target"), ignore_index,
                            label_smoothing, ReductionFromName(reduction));
      },
      "input"_a, "target"_a, "ignore_index"_a = -100, "label_smoothing"_a = 0.0,
      "reduction"_a = "mean",
      "Cross-entropy of logits [N, C] (or [C]) against int64 classes [N]; targets equal to "
      "ignore_index are skipped; reduction 'mean', 'sum' or 'none'.");
}

void BindConv(py::module_& m) {
  m.def(
      "conv1d",
      [](const py::object& input, const py::object& weight, const py::object& bias, int64_t stride,
         int64_t padding, int64_t dilation, int64_t groups) {
        ATTEND_CHECK(stride >= 1 && dilation >= 1 && groups >= 1 && padding >= 0,
                     "conv1d: stride, dilation and groups must be positive and padding "
                     "non-negative");
        return Conv1d(ToTensor(input, "input"), ToTensor(weight, "weight"), Optional(bias, "bias"),
                      stride, padding, dilation, groups);
      },
      "input"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1, "padding"_a = 0,
      "dilation"_a = 1, "groups"_a = 1,
      "Cross-correlation of [B, C_in, L] with weight [C_out, C_in/groups, K] -> [B, C_out, "
      "L_out].");
  m.def(
      "conv2d",
      [](const py::object& input, const py::object& weight, const py::object& bias,
         const py::object& stride, const py::object& padding, const py::object& dilation,
         int64_t groups) {
        const Size2 s = ToSize2(stride, "conv2d stride"), p = ToSize2(padding, "conv2d padding"),
                    d = ToSize2(dilation, "conv2d dilation");
        ATTEND_CHECK(
            s.h >= 1 && s.w >= 1 && d.h >= 1 && d.w >= 1 && groups >= 1 && p.h >= 0 && p.w >= 0,
            "conv2d: stride, dilation and groups must be positive and padding "
            "non-negative");
        return Conv2d(ToTensor(input, "input"), ToTensor(weight, "weight"), Optional(bias, "bias"),
                      s, p, d, groups);
      },
      "input"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1, "padding"_a = 0,
      "dilation"_a = 1, "groups"_a = 1,
      "Cross-correlation of [B, C_in, H, W] with weight [C_out, C_in/groups, KH, KW] -> [B, "
      "C_out, H_out, W_out]; stride/padding/dilation an int or a pair.");
  m.def(
      "causal_conv2d",
      [](const py::object& input, const py::object& weight, const py::object& bias) {
        return CausalConv2d(ToTensor(input, "input"), ToTensor(weight, "weight"),
                            Optional(bias, "bias"));
      },
      "input"_a, "weight"_a, "bias"_a = py::none(),
      "A 2-D convolution that never reads below its row (pervasive attention): [B, C_in, H, W] "
      "with weight [C_out, C_in, KH, KW] (KW odd) -> [B, C_out, H, W].");
  m.def(
      "max_pool1d",
      [](const py::object& input, int64_t kernel_size, std::optional<int64_t> stride,
         int64_t padding) {
        ATTEND_CHECK(!stride || *stride >= 1, "max_pool1d: stride must be positive");
        ATTEND_CHECK(padding >= 0, "max_pool1d: negative padding ", padding);
        return MaxPool1d(ToTensor(input, "input"), kernel_size, stride, padding);
      },
      "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
      "The maximum over windows of [B, C, L] (stride defaults to kernel_size).");
  m.def(
      "max_pool2d",
      [](const py::object& input, const py::object& kernel_size, const py::object& stride,
         const py::object& padding) {
        std::optional<Size2> s;
        if (!stride.is_none()) s = ToSize2(stride, "max_pool2d stride");
        const Size2 p = ToSize2(padding, "max_pool2d padding");
        ATTEND_CHECK(!s || (s->h >= 1 && s->w >= 1), "max_pool2d: stride must be positive");
        ATTEND_CHECK(p.h >= 0 && p.w >= 0, "max_pool2d: negative padding");
        return MaxPool2d(ToTensor(input, "input"), ToSize2(kernel_size, "max_pool2d kernel_size"),
                         s, p);
      },
      "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
      "The maximum over windows of [B, C, H, W]; sizes an int or a pair.");
  m.def(
      "avg_pool1d",
      [](const py::object& input, int64_t kernel_size, std::optional<int64_t> stride,
         int64_t padding, bool count_include_pad) {
        ATTEND_CHECK(!stride || *stride >= 1, "avg_pool1d: stride must be positive");
        ATTEND_CHECK(padding >= 0, "avg_pool1d: negative padding ", padding);
        return AvgPool1d(ToTensor(input, "input"), kernel_size, stride, padding, count_include_pad);
      },
      "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
      "count_include_pad"_a = true, "The mean over windows of [B, C, L].");
  m.def(
      "avg_pool2d",
      [](const py::object& input, const py::object& kernel_size, const py::object& stride,
         const py::object& padding, bool count_include_pad) {
        std::optional<Size2> s;
        if (!stride.is_none()) s = ToSize2(stride, "avg_pool2d stride");
        const Size2 p = ToSize2(padding, "avg_pool2d padding");
        ATTEND_CHECK(!s || (s->h >= 1 && s->w >= 1), "avg_pool2d: stride must be positive");
        ATTEND_CHECK(p.h >= 0 && p.w >= 0, "avg_pool2d: negative padding");
        return AvgPool2d(ToTensor(input, "input"), ToSize2(kernel_size, "avg_pool2d kernel_size"),
                         s, p, count_include_pad);
      },
      "input"_a, "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0,
      "count_include_pad"_a = true,
      "The mean over windows of [B, C, H, W]; sizes an int or a pair.");
  m.def(
      "adaptive_avg_pool2d",
      [](const py::object& input, const py::object& output_size) {
        return AdaptiveAvgPool2d(ToTensor(input, "input"),
                                 ToSize2(output_size, "adaptive_avg_pool2d output_size"));
      },
      "input"_a, "output_size"_a,
      "Means over windows chosen so that [B, C, H, W] becomes [B, C, *output_size].");
  m.def(
      "global_avg_pool",
      [](const py::object& input, bool keepdim) {
        return GlobalAvgPool(ToTensor(input, "input"), keepdim);
      },
      "input"_a, "keepdim"_a = false,
      "The mean over every spatial dim: [B, C, ...] -> [B, C] (or [B, C, 1, ...]).");
}

void BindRnnAndImage(py::module_& m) {
  m.def(
      "rnn_layer",
      [](const std::string& mode, const py::object& input, const py::object& w_ih,
         const py::object& w_hh, const py::object& b_ih, const py::object& b_hh,
         const py::object& h0, const py::object& c0, const py::object& lengths) {
        ATTEND_CHECK(mode == "lstm" || mode == "gru", "rnn_layer: mode '", mode, "' (lstm or gru)");
        const RnnMode rm = mode == "lstm" ? RnnMode::kLstm : RnnMode::kGru;
        Tensor x = ToTensor(input, "input");
        std::vector<Tensor> wi = TensorList(w_ih, "w_ih"), wh = TensorList(w_hh, "w_hh");
        std::vector<Tensor> bi, bh;
        if (!b_ih.is_none()) bi = TensorList(b_ih, "b_ih");
        if (!b_hh.is_none()) bh = TensorList(b_hh, "b_hh");
        Tensor h = Optional(h0, "h0"), c = Optional(c0, "c0"), len = Optional(lengths, "lengths");
        RnnLayerOutput out;
        {
          py::gil_scoped_release release;
          out = RnnLayer(rm, x, wi, wh, bi, bh, h, c, len);
        }
        return py::make_tuple(out.output, out.h_n,
                              out.c_n.defined() ? py::cast(out.c_n) : py::object(py::none()));
      },
      "mode"_a, "input"_a, "w_ih"_a, "w_hh"_a, "b_ih"_a = py::none(), "b_hh"_a = py::none(),
      "h0"_a = py::none(), "c0"_a = py::none(), "lengths"_a = py::none(),
      "One GRU or LSTM layer (mode 'gru'/'lstm') over batch-first [B, T, in] in len(w_ih) "
      "directions -> (output [B, T, D*H], h_n [D, B, H], c_n or None); weights as PyTorch.");
  m.def(
      "crop_zoom",
      [](const py::object& input, const py::object& boxes, int64_t out_h, int64_t out_w) {
        ATTEND_CHECK(out_h >= 1 && out_w >= 1, "crop_zoom: output size must be positive, got ",
                     out_h, " x ", out_w);
        return CropZoom(ToTensor(input, "input"), ToTensor(boxes, "boxes"), out_h, out_w);
      },
      "input"_a, "boxes"_a, "out_h"_a, "out_w"_a,
      "Bilinear zoom of [B, C, H, W] into one square box (t_x, t_y, t_l) per image, boxes [B, "
      "3] -> [B, C, out_h, out_w]; differentiable w.r.t. both.");
  m.def(
      "boxcar_mask",
      [](const py::object& boxes, int64_t h, int64_t w, double k) {
        ATTEND_CHECK(h >= 1 && w >= 1, "boxcar_mask: size must be positive, got ", h, " x ", w);
        ATTEND_CHECK(k > 0, "boxcar_mask: k must be positive, got ", k);
        return BoxcarMask(ToTensor(boxes, "boxes"), h, w, k);
      },
      "boxes"_a, "h"_a, "w"_a, "k"_a = 10.0,
      "RA-CNN's smooth boxcar mask of boxes [B, 3] -> [B, 1, h, w] (sharpness k).");
}

void BindAutograd(py::module_& m) {
  m.def(
      "backward",
      [](const py::object& tensors, const py::object& grad_tensors, bool retain_graph) {
        std::vector<Tensor> roots = TensorList(tensors, "tensors");
        std::vector<Tensor> grads;
        if (!grad_tensors.is_none()) {
          const py::sequence seq = py::isinstance<Tensor>(grad_tensors)
                                       ? py::sequence(py::make_tuple(grad_tensors))
                                       : grad_tensors.cast<py::sequence>();
          for (const py::handle& g : seq)
            grads.push_back(g.is_none() ? Tensor() : ToTensor(g, "grad_tensors"));
          ATTEND_CHECK(grads.size() == roots.size(), "backward: ", grads.size(),
                       " grad_tensors for ", roots.size(), " tensors");
        }
        py::gil_scoped_release release;
        Backward(roots, grads, retain_graph);
      },
      "tensors"_a, "grad_tensors"_a = py::none(), "retain_graph"_a = false,
      "Backward from several roots at once, accumulating into every leaf's .grad "
      "(grad_tensors: one per root, None for a one-element root).");
  m.def(
      "grad",
      [](const py::object& outputs, const py::object& inputs, const py::object& grad_outputs) {
        std::vector<Tensor> outs = TensorList(outputs, "outputs");
        std::vector<Tensor> ins = TensorList(inputs, "inputs");
        std::vector<Tensor> gouts(outs.size());
        if (!grad_outputs.is_none()) {
          std::vector<Tensor> given;
          const py::sequence seq = py::isinstance<Tensor>(grad_outputs)
                                       ? py::sequence(py::make_tuple(grad_outputs))
                                       : grad_outputs.cast<py::sequence>();
          for (const py::handle& g : seq)
            given.push_back(g.is_none() ? Tensor() : ToTensor(g, "grad_outputs"));
          ATTEND_CHECK(given.size() == outs.size(), "grad: ", given.size(), " grad_outputs for ",
                       outs.size(), " outputs");
          gouts = given;
        }
        ATTEND_CHECK(!outs.empty(), "grad: no outputs");
        std::vector<Tensor> total;
        {
          py::gil_scoped_release release;
          NoGradGuard no_grad;
          // The gradient of the sum of the outputs: one pass per output, added up.
          for (size_t i = 0; i < outs.size(); ++i) {
            std::vector<Tensor> g = Grad(outs[i], ins, gouts[i]);
            if (total.empty()) {
              total = std::move(g);
            } else {
              for (size_t j = 0; j < g.size(); ++j) total[j] = Add(total[j], g[j]);
            }
          }
        }
        return Tuple(total);
      },
      "outputs"_a, "inputs"_a, "grad_outputs"_a = py::none(),
      "The gradients of the outputs (summed) w.r.t. each input, as a tuple, without touching "
      ".grad; zeros for an input the outputs do not depend on. The graph is kept.");
}

}  // namespace

void BindOps(py::module_& m) {
  py::object namedtuple = py::module_::import("collections").attr("namedtuple");
  topk_type = namedtuple("topk", py::make_tuple("values", "indices")).release();
  max_type = namedtuple("max", py::make_tuple("values", "indices")).release();
  min_type = namedtuple("min", py::make_tuple("values", "indices")).release();
  BindElementwise(m);
  BindSelection(m);
  BindReductions(m);
  BindLinearAlgebra(m);
  BindNormalisation(m);
  BindIndexing(m);
  BindJoining(m);
  BindConv(m);
  BindRnnAndImage(m);
  BindAutograd(m);
}

}  // namespace attend::python
