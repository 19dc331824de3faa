// Joining and splitting along a dim: concat, stack, split, chunk.
#include "ops/op_helpers.h"

namespace attend {

Tensor Concat(const std::vector<Tensor>& xs, int dim) {
  ATTEND_CHECK(!xs.empty(), "Concat: needs at least one tensor");
  const Tensor& first = xs[0];
  CheckDefined(first, "Concat");
  const int nd = first.dim();
  ATTEND_CHECK(nd > 0, "Concat: cannot concatenate zero-dim tensors (use Stack)");
  dim = WrapDim(dim, first.shape(), "Concat");
  Shape out_shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    CheckDefined(t, "Concat");
    ATTEND_CHECK(t.dtype() == first.dtype(), "Concat: tensor ", i, " is ", t.str(),
                 " but tensor 0 is ", first.str());
    ATTEND_CHECK(t.dim() == nd, "Concat: tensor ", i, " is ", t.str(), " but tensor 0 is ",
                 first.str(), " (different number of dims)");
    for (int d = 0; d < nd; ++d)
      ATTEND_CHECK(d == dim || t.shape()[d] == first.shape()[d], "Concat: tensor ", i,
                   " has shape ", t.shape().str(), " but tensor 0 has ", first.shape().str(),
                   "; they may differ only in dim ", dim);
    total += t.shape()[dim];
  }
  out_shape[dim] = total;
  Tensor out = Tensor::Empty(out_shape, first.dtype());
  std::vector<int64_t> sizes;
  int64_t off = 0;
  for (const Tensor& t : xs) {
    int64_t s = t.shape()[dim];
    if (s > 0) out.Detach().Narrow(dim, off, s).CopyFrom(t);
    sizes.push_back(s);
    off += s;
  }
  RecordOp("Concat", out, xs, [sizes, dim](const Tensor& g) {
    std::vector<Tensor> gs;
    int64_t o = 0;
    for (int64_t s : sizes) {
      gs.push_back(g.Narrow(dim, o, s));
      o += s;
    }
    return gs;
  });
  return out;
}

Tensor Stack(const std::vector<Tensor>& xs, int dim) {
  ATTEND_CHECK(!xs.empty(), "Stack: needs at least one tensor");
  CheckDefined(xs[0], "Stack");
  const int nd = xs[0].dim() + 1;
  ATTEND_CHECK(dim >= -nd && dim < nd, "Stack: dim ", dim, " is out of range for stacking ",
               xs[0].str(), " tensors (expected ", -nd, "..", nd - 1, ")");
  if (dim < 0) dim += nd;
  std::vector<Tensor> us;
  for (size_t i = 0; i < xs.size(); ++i) {
    CheckDefined(xs[i], "Stack");
    ATTEND_CHECK(xs[i].shape() == xs[0].shape(), "Stack: tensor ", i, " is ", xs[i].str(),
                 " but tensor 0 is ", xs[0].str(), "; all must have the same shape");
    us.push_back(xs[i].Unsqueeze(dim));
  }
  return Concat(us, dim);
}

std::vector<Tensor> Split(const Tensor& a, int64_t split_size, int dim) {
  CheckDefined(a, "Split");
  dim = WrapDim(dim, a.shape(), "Split");
  ATTEND_CHECK(split_size > 0, "Split: split_size must be positive, got ", split_size);
  std::vector<Tensor> out;
  const int64_t n = a.shape()[dim];
  for (int64_t s = 0; s < n; s += split_size)
    out.push_back(a.Narrow(dim, s, std::min(split_size, n - s)));
  if (n == 0) out.push_back(a);
  return out;
}

std::vector<Tensor> Chunk(const Tensor& a, int64_t chunks, int dim) {
  CheckDefined(a, "Chunk");
  ATTEND_CHECK(chunks > 0, "Chunk: number of chunks must be positive, got ", chunks);
  dim = WrapDim(dim, a.shape(), "Chunk");
  const int64_t n = a.shape()[dim];
  const int64_t size = std::max<int64_t>(1, (n + chunks - 1) / chunks);
  return Split(a, size, dim);
}

}  // namespace attend
