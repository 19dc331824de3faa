// Joining and splitting along a dim: concat, stack, split, chunk.
#include <algorithm>
#include <cstring>

#include "ops/op_helpers.h"

namespace attend {
namespace {

// Concat's copy when every part is contiguous (the deferred gradient terms' rows, a decoder's
// steps): the output (contiguous, fresh) is, block by block of the dims before `dim`, each part's
// block in turn, so its bytes are a list of runs, each one memcpy from a part. The threads split
// the output's bytes evenly and copy the runs (or pieces of runs) in their share, one parallel
// region for all the parts; part by part, a 20-step concatenation of 64-row pieces was 20 copies
// each too small to thread, one core copying megabytes while the others waited. The same bytes
// either way. Returns false (nothing copied) when a part is not contiguous.
bool CopyContiguousParts(const std::vector<Tensor>& xs, const std::vector<int64_t>& sizes, int dim,
                         Tensor& out) {
  for (const Tensor& t : xs)
    if (!t.is_contiguous()) return false;
  const int64_t elem = static_cast<int64_t>(DTypeSize(out.dtype()));
  int64_t outer = 1, inner = elem;
  for (int d = 0; d < dim; ++d) outer *= out.shape()[d];
  for (int d = dim + 1; d < out.dim(); ++d) inner *= out.shape()[d];
  // The runs in the output's order: starts[r] is run r's first output byte; run r copies from
  // src[r] up to starts[r + 1].
  std::vector<int64_t> starts;
  std::vector<const char*> src;
  int64_t at = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < xs.size(); ++i) {
      const int64_t bytes = sizes[i] * inner;
      if (bytes == 0) continue;
      starts.push_back(at);
      src.push_back(static_cast<const char*>(xs[i].raw_data()) + o * bytes);
      at += bytes;
    }
  starts.push_back(at);
  char* dst = static_cast<char*>(out.raw_data());
  ParallelRange(at, int64_t{1} << 18, [&](int64_t b, int64_t e) {
    // The run holding byte b, then every run up to byte e, clipped to [b, e).
    size_t r = std::upper_bound(starts.begin(), starts.end(), b) - starts.begin() - 1;
    for (; b < e; ++r) {
      const int64_t end = std::min(e, starts[r + 1]);
      std::memcpy(dst + b, src[r] + (b - starts[r]), end - b);
      b = end;
    }
  });
  return true;
}

}  // namespace

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
  for (const Tensor& t : xs) sizes.push_back(t.shape()[dim]);
  if (!CopyContiguousParts(xs, sizes, dim, out)) {
    int64_t off = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (sizes[i] > 0) out.Detach().Narrow(dim, off, sizes[i]).CopyFrom(xs[i]);
      off += sizes[i];
    }
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
