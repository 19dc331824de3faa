// Concat's copy: every part lands in its place, byte for byte, whatever the parts' layouts, the
// dim, the dtype, the sizes (empty parts, outputs above and below the threading threshold) and
// the thread count.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "attend/attend.h"

namespace attend {
namespace {

// Whether two tensors of one shape and dtype hold the same bytes, element by element (each read
// through its own strides: Contiguous() copies a view with the strided path, not Concat's).
bool SameBytes(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.Contiguous(), cb = b.Contiguous();
  return ca.shape() == cb.shape() && ca.dtype() == cb.dtype() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), ca.numel() * DTypeSize(ca.dtype())) == 0;
}

TEST(Concat, EveryPartInPlaceForAnyLayoutSizeAndThreads) {
  std::mt19937 rng(20261207);
  Generator gen(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int threads = GetNumThreads();
  int cases = 0, big = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const int nd = pick(1, 4), dim = pick(0, nd - 1), parts = pick(1, 24);
    Shape base;
    // A few large cases (up to ~2 MB outputs: over the 256 KB threading threshold), most small.
    const bool large = trial % 4 == 0;
    for (int d = 0; d < nd; ++d) base.push_back(pick(1, large ? (d == nd - 1 ? 300 : 12) : 5));
    const DType dtype = trial % 3 == 0 ? DType::kF64 : DType::kF32;
    const bool mixed = trial % 5 == 1;  // one part a transposed view: the part-by-part path
    std::vector<Tensor> xs;
    for (int i = 0; i < parts; ++i) {
      Shape s = base;
      s[dim] = pick(0, 3) == 0 ? 0 : pick(1, large ? 40 : 6);
      Tensor t = Tensor::Randn(s, gen, dtype);
      if (mixed && i == parts / 2 && nd >= 2) {
        // The same shape, laid out transposed in memory.
        Shape st = s;
        std::swap(st[0], st[nd - 1]);
        t = Tensor::Randn(st, gen, dtype).Transpose(0, nd - 1);
        ASSERT_EQ(t.shape(), s);
      }
      xs.push_back(t);
    }
    for (int nt : {1, 2}) {
      SetNumThreads(nt);
      const Tensor out = Concat(xs, dim);
      int64_t off = 0;
      for (int i = 0; i < parts; ++i) {
        const int64_t s = xs[i].shape()[dim];
        if (s > 0) {
          ASSERT_TRUE(SameBytes(out.Narrow(dim, off, s), xs[i]))
              << "trial " << trial << " part " << i << " of " << parts << ", dim " << dim
              << ", output " << out.str() << ", " << nt << " thread(s)";
        }
        off += s;
      }
      ASSERT_EQ(off, out.shape()[dim]);
      ++cases;
      big += out.numel() * static_cast<int64_t>(DTypeSize(dtype)) >= (int64_t{1} << 18);
    }
  }
  SetNumThreads(threads);
  EXPECT_EQ(cases, 240);
  EXPECT_GE(big, 10) << "too few outputs above the threading threshold to exercise the threads";
}

}  // namespace
}  // namespace attend
