// Reductions over any set of dims (sum, mean, amax, amin, var, argmax, argmin) and SumTo, the
// reduction every broadcasting backward ends in.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/dispatch.h"
#include "ops/op_helpers.h"

namespace attend {

std::vector<int> NormalizeDims(const std::vector<int>& dims, const Shape& shape, const char* op) {
  const int ndim = shape.size();
  std::vector<int> out;
  if (dims.empty()) {
    for (int i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int d : dims) {
    int w = WrapDim(d, shape, op);
    ATTEND_CHECK(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", d,
                 " appears twice in the dim list for shape ", shape.str());
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

enum class ReduceKind { kSum, kMax, kMin };

// The reduction viewed as [outer, r, inner] over a contiguous tensor.
struct ReduceLayout {
  Tensor x;  // contiguous
  int64_t outer = 1, r = 1, inner = 1;
  Shape keep_shape;  // the output shape with keepdim
};

ReduceLayout Layout(const Tensor& a, const std::vector<int>& dims) {
  ReduceLayout L;
  const int nd = a.dim();
  L.keep_shape = a.shape();
  for (int d : dims) L.keep_shape[d] = 1;
  bool consecutive =
      dims.empty() || dims.back() - dims.front() + 1 == static_cast<int>(dims.size());
  if (consecutive) {
    L.x = a.Detach().Contiguous();
    if (dims.empty()) return L;
    for (int i = 0; i < dims.front(); ++i) L.outer *= a.shape()[i];
    for (int d : dims) L.r *= a.shape()[d];
    for (int i = dims.back() + 1; i < nd; ++i) L.inner *= a.shape()[i];
    return L;
  }
  // Move the reduced dims last; the copy makes each reduced block one contiguous row.
  std::vector<int> perm;
  for (int i = 0; i < nd; ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) perm.push_back(i);
  for (int d : dims) perm.push_back(d);
  L.x = a.Detach().Permute(perm).Contiguous();
  for (int i = 0; i < nd; ++i) {
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) L.outer *= a.shape()[i];
    else L.r *= a.shape()[i];
  }
  return L;
}

template <typename T>
T ReduceRow(ReduceKind kind, const T* x, int64_t n) {
  switch (kind) {
    case ReduceKind::kSum: return cpu::Sum(x, n);
    case ReduceKind::kMax: return cpu::Max(x, n);
    case ReduceKind::kMin: return cpu::Min(x, n);
  }
  return T(0);
}

// Returns the reduction with the keepdim shape.
Tensor ReduceForward(ReduceKind kind, const Tensor& a, const std::vector<int>& dims,
                     const char* op) {
  ReduceLayout L = Layout(a, dims);
  Tensor out = Tensor::Empty(L.keep_shape, a.dtype());
  if (kind != ReduceKind::kSum)
    ATTEND_CHECK(L.r > 0, op, ": cannot reduce over an empty dim of ", a.str());
  DispatchFloat(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = L.x.template data<T>();
    T* po = out.data<T>();
    const int64_t outer = L.outer, r = L.r, inner = L.inner;
    if (inner == 1) {
      ParallelRange(outer, r >= 4096 ? 2 : (1 << 15) / std::max<int64_t>(r, 1),
                    [&](int64_t s, int64_t e) {
                      for (int64_t o = s; o < e; ++o) po[o] = ReduceRow<T>(kind, px + o * r, r);
                    });
      return;
    }
    // Rows of `inner` contiguous values are combined elementwise, r of them per output row.
    auto run = [&](int64_t o, int64_t i0, int64_t i1) {
      T* dst = po + o * inner;
      const T* src = px + o * r * inner;
      for (int64_t i = i0; i < i1; ++i) dst[i] = src[i];
      for (int64_t k = 1; k < r; ++k) {
        const T* row = src + k * inner;
        if (kind == ReduceKind::kSum) {
          cpu::Accumulate(dst + i0, row + i0, i1 - i0);
        } else if (kind == ReduceKind::kMax) {
          for (int64_t i = i0; i < i1; ++i) dst[i] = std::max(dst[i], row[i]);
        } else {
          for (int64_t i = i0; i < i1; ++i) dst[i] = std::min(dst[i], row[i]);
        }
      }
      if (r == 0)
        for (int64_t i = i0; i < i1; ++i) dst[i] = T(0);
    };
    const int64_t total = outer * r * inner;
    if (outer >= 2) {
      ParallelRange(outer, total >= (1 << 15) ? 2 : outer + 1, [&](int64_t s, int64_t e) {
        for (int64_t o = s; o < e; ++o) run(o, 0, inner);
      });
    } else {
      ParallelRange(inner, total >= (1 << 15) ? 64 : inner + 1,
                    [&](int64_t s, int64_t e) { run(0, s, e); });
    }
  });
  return out;
}

Shape DropDims(const Shape& keep_shape, const std::vector<int>& dims) {
  Shape s;
  for (int i = 0; i < keep_shape.size(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) s.push_back(keep_shape[i]);
  return s;
}

Tensor Finish(const Tensor& keep, const std::vector<int>& dims, bool keepdim) {
  return keepdim ? keep : keep.View(DropDims(keep.shape(), dims));
}

// Gradient g of the reduced output, given back with the keepdim shape.
Tensor ToKeepShape(const Tensor& g, const Shape& keep_shape) { return g.Reshape(keep_shape); }

Tensor MinMax(ReduceKind kind, const Tensor& a, const std::vector<int>& dims_in, bool keepdim,
              const char* op) {
  CheckFloating(a, op);
  std::vector<int> dims = NormalizeDims(dims_in, a.shape(), op);
  Tensor keep = ReduceForward(kind, a, dims, op);
  Tensor out = Finish(keep, dims, keepdim);
  if (!GradMode::enabled() || !a.requires_grad()) return out;
  Tensor x = a.Detach(), k = keep.Detach();
  Shape keep_shape = keep.shape();
  RecordOp(op, out, {&a}, [x, k, keep_shape, dims](const Tensor& g) {
    // Ties share the gradient equally (torch.amax / amin).
    Tensor hit = Eq(x, k).To(x.dtype());
    Tensor count = Sum(hit, dims, /*keepdim=*/true);
    return std::vector<Tensor>{Mul(hit, Div(ToKeepShape(g, keep_shape), count))};
  });
  return out;
}

template <bool kMax>
Tensor ArgExtreme(const Tensor& a, int dim, bool keepdim, const char* op) {
  CheckFloating(a, op);
  dim = WrapDim(dim, a.shape(), op);
  std::vector<int> dims{dim};
  ReduceLayout L = Layout(a, dims);
  ATTEND_CHECK(L.r > 0, op, ": cannot reduce over an empty dim of ", a.str());
  Tensor out = Tensor::Empty(L.keep_shape, DType::kI64);
  int64_t* po = out.data<int64_t>();
  DispatchFloat(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = L.x.template data<T>();
    for (int64_t o = 0; o < L.outer; ++o)
      for (int64_t i = 0; i < L.inner; ++i) {
        const T* p = px + o * L.r * L.inner + i;
        int64_t best = 0;
        T bv = p[0];
        for (int64_t k = 1; k < L.r; ++k) {
          T v = p[k * L.inner];
          // NaN wins, as in PyTorch; otherwise the first extreme.
          if (std::isnan(bv)) break;
          if (std::isnan(v) || (kMax ? v > bv : v < bv)) {
            bv = v;
            best = k;
          }
        }
        po[o * L.inner + i] = best;
      }
  });
  return Finish(out, dims, keepdim);
}

}  // namespace

Tensor Sum(const Tensor& a, const std::vector<int>& dims_in, bool keepdim) {
  CheckFloating(a, "Sum");
  std::vector<int> dims = NormalizeDims(dims_in, a.shape(), "Sum");
  Tensor keep = ReduceForward(ReduceKind::kSum, a, dims, "Sum");
  Tensor out = Finish(keep, dims, keepdim);
  Shape keep_shape = keep.shape(), in_shape = a.shape();
  RecordOp("Sum", out, {&a}, [keep_shape, in_shape](const Tensor& g) {
    return std::vector<Tensor>{ToKeepShape(g, keep_shape).Expand(in_shape)};
  });
  return out;
}

Tensor Mean(const Tensor& a, const std::vector<int>& dims_in, bool keepdim) {
  CheckFloating(a, "Mean");
  std::vector<int> dims = NormalizeDims(dims_in, a.shape(), "Mean");
  int64_t count = 1;
  for (int d : dims) count *= a.shape()[d];
  Tensor s = Sum(a, dims, keepdim);
  return MulScalar(s, count == 0 ? NAN : 1.0 / static_cast<double>(count));
}

Tensor Max(const Tensor& a, const std::vector<int>& dims, bool keepdim) {
  return MinMax(ReduceKind::kMax, a, dims, keepdim, "Max");
}
Tensor Min(const Tensor& a, const std::vector<int>& dims, bool keepdim) {
  return MinMax(ReduceKind::kMin, a, dims, keepdim, "Min");
}
Tensor Argmax(const Tensor& a, int dim, bool keepdim) {
  return ArgExtreme<true>(a, dim, keepdim, "Argmax");
}
Tensor Argmin(const Tensor& a, int dim, bool keepdim) {
  return ArgExtreme<false>(a, dim, keepdim, "Argmin");
}

Tensor Var(const Tensor& a, const std::vector<int>& dims_in, int correction, bool keepdim) {
  CheckFloating(a, "Var");
  std::vector<int> dims = NormalizeDims(dims_in, a.shape(), "Var");
  ATTEND_CHECK(correction >= 0, "Var: correction must be >= 0, got ", correction);
  int64_t count = 1;
  for (int d : dims) count *= a.shape()[d];
  Tensor mean = Mean(a, dims, /*keepdim=*/true);
  Tensor diff = Sub(a, mean);
  Tensor ss = Sum(Mul(diff, diff), dims, keepdim);
  double denom = static_cast<double>(count - correction);
  return MulScalar(ss, denom > 0 ? 1.0 / denom : NAN);
}

Tensor SumTo(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int nd = g.dim(), m = shape.size();
  ATTEND_ASSERT(nd >= m, "SumTo ", g.shape().str(), " -> ", shape.str());
  std::vector<int> dims;
  for (int i = 0; i < nd; ++i) {
    int j = i - (nd - m);
    if (j < 0 || (shape[j] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  }
  if (dims.empty()) return g.Reshape(shape);
  return Sum(g, dims, /*keepdim=*/true).Reshape(shape);
}

}  // namespace attend
