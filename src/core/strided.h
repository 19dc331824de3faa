// Iteration over strided tensors: the outer dims are walked with an index counter and the
// innermost dim is handed to a row function, so inner loops stay tight (and vectorisable).
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include <omp.h>

#include "attend/tensor.h"

namespace attend {

// Merges adjacent dims that are contiguous for every operand, which turns most copies of views
// into a few long rows.
template <size_t K>
void CoalesceDims(Shape& shape, std::array<Shape, K>& strides) {
  if (shape.size() <= 1) return;
  Shape s;
  std::array<Shape, K> st;
  s.push_back(shape[0]);
  for (size_t k = 0; k < K; ++k) st[k].push_back(strides[k][0]);
  for (int d = 1; d < shape.size(); ++d) {
    bool mergeable = true;
    int last = s.size() - 1;
    for (size_t k = 0; k < K; ++k)
      if (st[k][last] != strides[k][d] * shape[d]) mergeable = false;
    if (shape[d] == 1) continue;  // size-1 dims never matter
    if (s[last] == 1) {
      s[last] = shape[d];
      for (size_t k = 0; k < K; ++k) st[k][last] = strides[k][d];
      continue;
    }
    if (mergeable) {
      s[last] *= shape[d];
      for (size_t k = 0; k < K; ++k) st[k][last] = strides[k][d];
    } else {
      s.push_back(shape[d]);
      for (size_t k = 0; k < K; ++k) st[k].push_back(strides[k][d]);
    }
  }
  shape = s;
  strides = st;
}

// Calls row(offsets, n, inner_strides) for every innermost row of `shape`; offsets are in elements
// relative to each operand's first element. The rows are split over OpenMP threads when there
// are at least `min_elems_to_thread` elements.
template <size_t K, typename RowFn>
void ParallelForEachRow(Shape shape, std::array<Shape, K> strides, int64_t min_elems_to_thread,
                        RowFn&& row) {
  if (shape.size() == 0) {
    shape.push_back(1);
    for (auto& s : strides) s.push_back(1);
  }
  CoalesceDims(shape, strides);
  const int nd = shape.size();
  const int64_t total = shape.numel();
  if (total == 0) return;
  const int64_t n = shape[nd - 1];
  const int64_t rows = total / n;
  std::array<int64_t, K> inner;
  for (size_t k = 0; k < K; ++k) inner[k] = strides[k][nd - 1];
  auto run_range = [&](int64_t r0, int64_t r1) {
    // Offsets of row r0, from its multi-index.
    int64_t idx[Shape::kMaxDims] = {};
    std::array<int64_t, K> off{};
    int64_t rem = r0;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (size_t k = 0; k < K; ++k) off[k] += idx[d] * strides[k][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      row(off, n, inner);
      for (int d = nd - 2; d >= 0; --d) {
        idx[d]++;
        for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
        if (idx[d] < shape[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * shape[d];
        idx[d] = 0;
      }
    }
  };
  if (total < min_elems_to_thread || rows == 1) {
    run_range(0, rows);
    return;
  }
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    if (r0 < r1) run_range(r0, r1);
  }
}

// The same on the calling thread only.
template <size_t K, typename RowFn>
void ForEachRow(const Shape& shape, const std::array<Shape, K>& strides, RowFn&& row) {
  ParallelForEachRow<K>(shape, strides, INT64_MAX, std::forward<RowFn>(row));
}

// Splits [0, n) into one contiguous range per OpenMP thread when n is large enough.
template <typename Fn>
void ParallelRange(int64_t n, int64_t min_to_thread, Fn&& fn) {
  if (n < min_to_thread) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
}

// Broadcast strides of `t` against `out_shape` (0 on broadcast dims).
Shape BroadcastStrides(const Tensor& t, const Shape& out_shape);
// The NumPy broadcast of two shapes; throws naming `op` when they are incompatible.
Shape BroadcastShapes(const Shape& a, const Shape& b, const char* op);

}  // namespace attend
