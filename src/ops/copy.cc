// The Tensor methods that are differentiable ops (declared with the class in attend/tensor.h, so
// that t.Clone() and t.To(dtype) read naturally): a copy, and a copy into another dtype.
#include "ops/op_helpers.h"

namespace attend {

Tensor Tensor::Clone() const {
  Tensor out = Tensor::Empty(shape(), dtype());
  out.CopyFrom(*this);
  RecordOp("Clone", out, {this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::To(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = Tensor::Empty(shape(), dt);
  out.CopyFrom(*this);
  if (IsFloating(dt) && IsFloating(dtype())) {
    DType src_dt = dtype();
    RecordOp("To", out, {this},
             [src_dt](const Tensor& g) { return std::vector<Tensor>{g.To(src_dt)}; });
  }
  return out;
}

}  // namespace attend
