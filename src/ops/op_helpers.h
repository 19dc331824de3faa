// Helpers for writing an op (checks, dtype dispatch, SumTo, the threading threshold): used by
// the op files and by the fused ops and updates of the layers above (attention, optim). Not part
// of the public API.
#pragma once

#include <vector>

#include "attend/ops.h"
#include "autograd/node.h"
#include "core/strided.h"
#include "core/tensor_impl.h"

namespace attend {

// Sums g over the dims that broadcasting added or stretched, giving a tensor of `shape`.
Tensor SumTo(const Tensor& g, const Shape& shape);

// Calls fn(T{}) with T = float or double; throws naming `op` for other dtypes.
template <typename Fn>
void DispatchFloat(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::kF32: fn(float{}); return;
    case DType::kF64: fn(double{}); return;
    default:
      ATTEND_CHECK(false, op, ": expected a floating tensor (f32 or f64), got ", DTypeName(t));
  }
}

inline void CheckDefined(const Tensor& t, const char* op) {
  ATTEND_CHECK(t.defined(), op, ": input tensor is undefined");
}
inline void CheckFloating(const Tensor& t, const char* op) {
  CheckDefined(t, op);
  ATTEND_CHECK(IsFloating(t.dtype()), op, ": expected a floating tensor (f32 or f64), got ",
               t.str());
}
inline void CheckSameDType(const Tensor& a, const Tensor& b, const char* op) {
  ATTEND_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", a.str(), " and ", b.str());
}

// Normalises and de-duplicates a dim list; empty means all dims.
std::vector<int> NormalizeDims(const std::vector<int>& dims, const Shape& shape, const char* op);

// Whether OpenMP should split work of `n` elements (each costing about `cost` simple ops).
inline bool WorthThreading(int64_t n, int64_t cost = 1) { return n * cost >= (1 << 15); }

}  // namespace attend
