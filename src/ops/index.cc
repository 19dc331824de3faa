// Indexing: embedding lookup, index_select, gather and top-k, with scatter-add backward.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "backend/cpu/dispatch.h"
#include "ops/op_helpers.h"

namespace attend {

namespace {

template <typename T>
void AddRow(T* dst, const T* src, int64_t n) {
  cpu::Accumulate(dst, src, n);
}

void CheckIndex(const Tensor& index, const char* op) {
  CheckDefined(index, op);
  ATTEND_CHECK(index.dtype() == DType::kI64, op, ": indices must be i64, got ", index.str());
}

// out[o, j, :] = a[o, idx[j], :] over the [outer, n, inner] layout of a contiguous tensor.
Tensor IndexSelectForward(const Tensor& a, int dim, const Tensor& idx, const char* op) {
  Tensor x = a.Detach().Contiguous();
  const int64_t n = x.shape()[dim];
  const int64_t* pi = idx.data<int64_t>();
  const int64_t m = idx.numel();
  for (int64_t j = 0; j < m; ++j)
    ATTEND_CHECK(pi[j] >= 0 && pi[j] < n, op, ": index ", pi[j], " at position ", j,
                 " is out of range for dim ", dim, " of size ", n, " in ", a.str());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= x.shape()[i];
  for (int i = dim + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  Shape out_shape = x.shape();
  out_shape[dim] = m;
  Tensor out = Tensor::Empty(out_shape, x.dtype());
  const size_t es = DTypeSize(x.dtype());
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  ParallelRange(outer * m, (1 << 15) / std::max<int64_t>(inner, 1), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      int64_t o = r / m, j = r % m;
      std::memcpy(dst + (o * m + j) * inner * es, src + (o * n + pi[j]) * inner * es, inner * es);
    }
  });
  return out;
}

// The transpose of IndexSelectForward: rows of g are added into zeros of `shape`.
Tensor IndexAddBackward(const Tensor& g_in, const Shape& shape, int dim, const Tensor& idx,
                        int64_t skip_index) {
  Tensor g = g_in.Contiguous();
  Tensor out = Tensor::Zeros(shape, g.dtype());
  const int64_t n = shape[dim], m = idx.numel();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= shape[i];
  for (int i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t* pi = idx.data<int64_t>();
  DispatchFloat(g.dtype(), "IndexAdd", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* po = out.data<T>();
    // Parallel over outer rows only: within one, repeated indices would race.
    ParallelRange(outer, outer * m * inner >= (1 << 15) ? 2 : outer + 1, [&](int64_t s, int64_t e) {
      for (int64_t o = s; o < e; ++o)
        for (int64_t j = 0; j < m; ++j) {
          if (pi[j] == skip_index) continue;
          AddRow(po + (o * n + pi[j]) * inner, pg + (o * m + j) * inner, inner);
        }
    });
  });
  return out;
}

}  // namespace

Tensor IndexSelect(const Tensor& a, int dim, const Tensor& index) {
  CheckDefined(a, "IndexSelect");
  CheckIndex(index, "IndexSelect");
  ATTEND_CHECK(index.dim() == 1, "IndexSelect: index must be 1-D, got ", index.str());
  dim = WrapDim(dim, a.shape(), "IndexSelect");
  Tensor idx = index.Contiguous();
  Tensor out = IndexSelectForward(a, dim, idx, "IndexSelect");
  Shape in_shape = a.shape();
  RecordOp("IndexSelect", out, {&a}, [in_shape, dim, idx](const Tensor& g) {
    return std::vector<Tensor>{IndexAddBackward(g, in_shape, dim, idx, -1)};
  });
  return out;
}

Tensor Embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  CheckFloating(weight, "Embedding");
  CheckIndex(indices, "Embedding");
  ATTEND_CHECK(weight.dim() == 2, "Embedding: weight must be [vocab, dim], got ", weight.str());
  const int64_t vocab = weight.shape()[0], d = weight.shape()[1];
  if (padding_idx < 0 && padding_idx != -1) padding_idx += vocab;
  Tensor idx = indices.Contiguous().Reshape(Shape{indices.numel()});
  Tensor rows = IndexSelectForward(weight, 0, idx, "Embedding");
  Shape out_shape = indices.shape();
  out_shape.push_back(d);
  Tensor out = rows.View(out_shape);
  Shape w_shape = weight.shape();
  RecordOp("Embedding", out, {&weight}, [w_shape, idx, padding_idx, d](const Tensor& g) {
    return std::vector<Tensor>{
        IndexAddBackward(g.Reshape(Shape{-1, d}), w_shape, 0, idx, padding_idx)};
  });
  (void)vocab;
  return out;
}

namespace {

// For every element of index (same ndim as a): the offset into contiguous a it reads.
void GatherOffsets(const Shape& a_shape, int dim, const Tensor& index, std::vector<int64_t>* offs,
                   const char* op) {
  const int nd = a_shape.size();
  Shape ast = ContiguousStrides(a_shape);
  const Shape& ish = index.shape();
  const int64_t* pi = index.data<int64_t>();
  const int64_t total = index.numel();
  offs->resize(total);
  int64_t idx[Shape::kMaxDims] = {};
  for (int64_t e = 0; e < total; ++e) {
    int64_t v = pi[e];
    ATTEND_CHECK(v >= 0 && v < a_shape[dim], op, ": index ", v, " is out of range for dim ", dim,
                 " of size ", a_shape[dim], " in input shape ", a_shape.str());
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += (d == dim ? v : idx[d]) * ast[d];
    (*offs)[e] = off;
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < ish[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor Gather(const Tensor& a, int dim, const Tensor& index) {
  CheckFloating(a, "Gather");
  CheckIndex(index, "Gather");
  dim = WrapDim(dim, a.shape(), "Gather");
  ATTEND_CHECK(index.dim() == a.dim(), "Gather: index ", index.str(), " must have as many dims as ",
               "the input ", a.str());
  for (int d = 0; d < a.dim(); ++d)
    ATTEND_CHECK(d == dim || index.shape()[d] <= a.shape()[d], "Gather: index ", index.str(),
                 " is larger than the input ", a.str(), " in dim ", d);
  Tensor x = a.Detach().Contiguous();
  Tensor idx = index.Contiguous();
  std::vector<int64_t> offs;
  GatherOffsets(a.shape(), dim, idx, &offs, "Gather");
  Tensor out = Tensor::Empty(idx.shape(), a.dtype());
  DispatchFloat(a.dtype(), "Gather", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (size_t e = 0; e < offs.size(); ++e) po[e] = px[offs[e]];
  });
  Shape in_shape = a.shape();
  RecordOp("Gather", out, {&a}, [in_shape, offs](const Tensor& g_in) {
    Tensor g = g_in.Contiguous();
    Tensor ga = Tensor::Zeros(in_shape, g.dtype());
    DispatchFloat(g.dtype(), "Gather backward", [&](auto tag) {
      using T = decltype(tag);
      const T* pg = g.data<T>();
      T* pa = ga.data<T>();
      for (size_t e = 0; e < offs.size(); ++e) pa[offs[e]] += pg[e];
    });
    return std::vector<Tensor>{ga};
  });
  return out;
}

std::pair<Tensor, Tensor> TopK(const Tensor& a, int64_t k, int dim, bool largest) {
  CheckFloating(a, "TopK");
  dim = WrapDim(dim, a.shape(), "TopK");
  const int nd = a.dim();
  const int64_t n = nd == 0 ? 1 : a.shape()[dim];
  ATTEND_CHECK(k >= 0 && k <= n, "TopK: k = ", k, " is out of range for dim ", dim, " of size ", n,
               " in ", a.str());
  const bool last = nd == 0 || dim == nd - 1;
  Tensor x = last ? a.Detach().Contiguous() : a.Detach().Transpose(dim, nd - 1).Contiguous();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  Shape ishape = x.shape();
  if (nd > 0) ishape[nd - 1] = k;
  Tensor idx = Tensor::Empty(ishape, DType::kI64);
  int64_t* pi = idx.data<int64_t>();
  DispatchFloat(a.dtype(), "TopK", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    ParallelRange(rows, rows * n >= (1 << 15) ? 2 : rows + 1, [&](int64_t s, int64_t e) {
      std::vector<int64_t> order(n);
      for (int64_t r = s; r < e; ++r) {
        const T* row = px + r * n;
        std::iota(order.begin(), order.end(), 0);
        // Ties keep the lower index first, so results are deterministic.
        auto cmp = [&](int64_t i, int64_t j) {
          if (row[i] != row[j]) return largest ? row[i] > row[j] : row[i] < row[j];
          return i < j;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
        std::copy(order.begin(), order.begin() + k, pi + r * k);
      }
    });
  });
  Tensor indices = last ? idx : idx.Transpose(dim, nd - 1).Contiguous();
  Tensor values = Gather(a, dim, indices);
  return {values, indices};
}

}  // namespace attend
