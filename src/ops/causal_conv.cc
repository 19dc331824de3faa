// CausalConv2d: a convolution over the rows above and at each output row only (the masked filter
// of pervasive attention). It runs as one Conv2d padded by KH - 1 rows on both sides, of which
// the first H output rows are kept: output row o of that convolution reads input rows
// o - (KH - 1) .. o, and the KH - 1 rows after them (which would read below) are dropped. Storing
// the filter without its zeroed rows saves their parameters and nearly half the products of a
// masked k x k filter; the backward rule is that of Conv2d and Narrow.
#include "attend/error.h"
#include "attend/ops/conv.h"

namespace attend {

Tensor CausalConv2d(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  ATTEND_CHECK(x.defined() && weight.defined(), "CausalConv2d: input or weight is undefined");
  ATTEND_CHECK(x.dim() == 4 && weight.dim() == 4, "CausalConv2d: x ", x.str(), " and weight ",
               weight.str(), " must be [B, C_in, H, W] and [C_out, C_in, KH, KW]");
  const int64_t kh = weight.size(2), kw = weight.size(3);
  ATTEND_CHECK(kh >= 1 && kw >= 1 && kw % 2 == 1, "CausalConv2d: weight ", weight.str(),
               " needs KH >= 1 rows and an odd width KW (the window is centred on the column)");
  return Conv2d(x, weight, bias, 1, Size2{kh - 1, (kw - 1) / 2}).Narrow(2, 0, x.size(2));
}

}  // namespace attend
