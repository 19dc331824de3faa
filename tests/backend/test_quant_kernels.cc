// The int8 and bf16 decoding GEMMs: the vectorised kernels against their scalar twins bit for
// bit (where the CPU has the instructions), the scalar twins against exact integer products and
// against f32 within the bounds rounding allows, and PrepackedLinear's precisions and Rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "attend/autograd.h"
#include "attend/nn.h"
#include "backend/cpu/reference/quant_kernels.h"
#include "backend/cpu/simd/quant_kernels.h"
#include "support/random.h"

namespace attend::cpu {
namespace {

using attend::testing::RandomFloats;

struct Int8Weight {
  std::vector<int8_t> packed;
  std::vector<float> scale;
  std::vector<int32_t> colsum;
};

Int8Weight QuantizeInt8(const std::vector<float>& w, int64_t n, int64_t k) {
  Int8Weight q;
  std::vector<int8_t> rows(static_cast<size_t>(n * k));
  q.scale.resize(n);
  q.colsum.resize(n);
  QuantizeWeightInt8(w.data(), n, k, k, rows.data(), q.scale.data(), q.colsum.data());
  q.packed.resize(static_cast<size_t>(Int8PackedSize(n, k)));
  PackInt8(rows.data(), n, k, q.packed.data());
  return q;
}

// Which kernel a product runs on: the scalar twin, the one the CPU would pick, or the AVX2 one.
enum class Kernel { kScalar, kDispatched, kAvx2 };

// Calls `run` with the hook that selects `kernel` in place.
template <typename Fn>
void WithKernel(Kernel kernel, Fn&& run) {
  if (kernel == Kernel::kScalar) {
    simd::ForceScalarQuantKernels force;
    run();
  } else if (kernel == Kernel::kAvx2) {
    simd::UseAvx2QuantKernels avx2;
    run();
  } else {
    run();
  }
}

std::vector<float> RunInt8(const std::vector<float>& x, int64_t m, int64_t k, const Int8Weight& q,
                           int64_t n, const float* bias, Kernel kernel) {
  std::vector<float> y(static_cast<size_t>(m * n), -1.0f);
  WithKernel(kernel, [&] {
    simd::Int8Gemm(x.data(), m, k, k, q.packed.data(), q.scale.data(), q.colsum.data(), n, bias,
                   y.data(), n);
  });
  return y;
}

std::vector<float> RunBf16(const std::vector<float>& x, int64_t m, int64_t k,
                           const std::vector<uint16_t>& packed, int64_t n, const float* bias,
                           Kernel kernel) {
  std::vector<float> y(static_cast<size_t>(m * n), -1.0f);
  WithKernel(kernel,
             [&] { simd::Bf16Gemm(x.data(), m, k, k, packed.data(), n, bias, y.data(), n); });
  return y;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// Shapes around the tile edges: rows 1..13 (tiles of 6), columns around 16 and 64 (panels of 16,
// groups of 4 panels), features not a multiple of 4 or 2.
const int64_t kRows[] = {1, 2, 5, 6, 7, 13};
const int64_t kCols[] = {1, 15, 16, 17, 64, 70, 130};
const int64_t kFeatures[] = {1, 3, 4, 7, 64, 257};

// `kernel` against the scalar twin over every shape above, with and without a bias.
void CheckInt8AgainstTwin(Kernel kernel) {
  unsigned seed = 1;
  for (int64_t m : kRows)
    for (int64_t n : kCols)
      for (int64_t k : kFeatures) {
        const auto w = RandomFloats(n * k, -0.5f, 0.5f, seed++);
        const auto x = RandomFloats(m * k, -3.0f, 3.0f, seed++);
        const auto bias = RandomFloats(n, -1.0f, 1.0f, seed++);
        const Int8Weight q = QuantizeInt8(w, n, k);
        for (const float* b : {static_cast<const float*>(nullptr), bias.data()})
          EXPECT_TRUE(SameBits(RunInt8(x, m, k, q, n, b, kernel),
                               RunInt8(x, m, k, q, n, b, Kernel::kScalar)))
              << "m " << m << " n " << n << " k " << k << (b ? " with bias" : "");
      }
}

void CheckBf16AgainstTwin(Kernel kernel) {
  unsigned seed = 100;
  for (int64_t m : kRows)
    for (int64_t n : kCols)
      for (int64_t k : kFeatures) {
        const auto w = RandomFloats(n * k, -0.5f, 0.5f, seed++);
        const auto x = RandomFloats(m * k, -3.0f, 3.0f, seed++);
        const auto bias = RandomFloats(n, -1.0f, 1.0f, seed++);
        std::vector<uint16_t> packed(static_cast<size_t>(Bf16PackedSize(n, k)));
        PackBf16(w.data(), n, k, k, packed.data());
        for (const float* b : {static_cast<const float*>(nullptr), bias.data()})
          EXPECT_TRUE(SameBits(RunBf16(x, m, k, packed, n, b, kernel),
                               RunBf16(x, m, k, packed, n, b, Kernel::kScalar)))
              << "m " << m << " n " << n << " k " << k << (b ? " with bias" : "");
      }
}

TEST(QuantKernels, Int8KernelEqualsScalarTwinBitForBit) {
  if (!simd::HasInt8Kernel()) GTEST_SKIP() << "no AVX512-VNNI: the AVX2 test covers this CPU";
  simd::AvoidAmxKernels avoid;  // the AVX-512 kernel at every shape (AMX's own test is below)
  CheckInt8AgainstTwin(Kernel::kDispatched);
}

TEST(QuantKernels, Bf16KernelEqualsScalarTwinBitForBit) {
  if (!simd::HasBf16Kernel()) GTEST_SKIP() << "no AVX512-BF16: the AVX2 test covers this CPU";
  simd::AvoidAmxKernels avoid;  // AMX sums in its own order (its test is below)
  CheckBf16AgainstTwin(Kernel::kDispatched);
}

// What `attend translate --timing` names follows the kernel that runs.
TEST(QuantKernels, KernelNamesFollowTheHooks) {
  {
    simd::ForceScalarQuantKernels force;
    EXPECT_STREQ(nn::PrecisionKernelName(nn::Precision::kInt8), "scalar");
    EXPECT_STREQ(nn::PrecisionKernelName(nn::Precision::kBF16), "scalar");
  }
  if (simd::HasAvx2QuantKernels()) {
    simd::UseAvx2QuantKernels avx2;
    EXPECT_STREQ(nn::PrecisionKernelName(nn::Precision::kInt8), "AVX2");
    EXPECT_STREQ(nn::PrecisionKernelName(nn::Precision::kBF16), "AVX2");
  }
  if (simd::HasInt8Kernel()) {
    simd::AvoidAmxKernels avoid;
    EXPECT_STREQ(nn::PrecisionKernelName(nn::Precision::kInt8), "AVX512-VNNI");
  }
  EXPECT_STRNE(nn::PrecisionKernelName(nn::Precision::kF32), "");
}

// The AVX2 kernels (the ones CPUs without AVX-512 run; selected here on any CPU with AVX2).
TEST(QuantKernels, Int8Avx2KernelEqualsScalarTwinBitForBit) {
  if (!simd::HasAvx2QuantKernels()) GTEST_SKIP() << "no AVX2 and FMA: the scalar twin runs";
  CheckInt8AgainstTwin(Kernel::kAvx2);
}

TEST(QuantKernels, Bf16Avx2KernelEqualsScalarTwinBitForBit) {
  if (!simd::HasAvx2QuantKernels()) GTEST_SKIP() << "no AVX2 and FMA: the scalar twin runs";
  CheckBf16AgainstTwin(Kernel::kAvx2);
}

struct AmxShape {
  int64_t m, n, k;
};

// The AMX tests' shapes: from the kernel's first row count, features over 1 and 5 tiles (k1, k5)
// and one that pads the last group (kpad).
std::vector<AmxShape> AmxShapes(int64_t min_rows, int64_t k1, int64_t kpad, int64_t k5) {
  std::vector<AmxShape> shapes = {{64, 520, 256}};
  for (int64_t m : {min_rows, int64_t{16}, int64_t{17}, int64_t{33}, int64_t{50}})
    for (int64_t n : {1, 16, 17, 33, 70})
      for (int64_t k : {k1, kpad, k5}) shapes.push_back({m, n, k});
  return shapes;
}

// The AMX tile kernels (products of >= kAmxInt8MinRows rows over whole tiles of features) against
// the scalar twin bit for bit, around the tiles' edges: 16-row tiles in blocks of 32 rows, pairs
// of 16-column panels, 64 features per tile (k = 255 pads the last group), and one product large
// enough to split among the threads.
TEST(QuantKernels, Int8AmxEqualsScalarTwinBitForBit) {
  if (!simd::HasAmxInt8Kernel()) GTEST_SKIP() << "no AMX-INT8: the AVX-512 kernel runs instead";
  unsigned seed = 500;
  for (const AmxShape& sh : AmxShapes(simd::kAmxInt8MinRows, 64, 255, 320)) {
    const auto [m, n, k] = sh;
    ASSERT_TRUE(simd::Int8UsesAmx(m, k)) << "m " << m << " k " << k;
    const auto w = RandomFloats(n * k, -0.5f, 0.5f, seed++);
    const auto x = RandomFloats(m * k, -3.0f, 3.0f, seed++);
    const auto bias = RandomFloats(n, -1.0f, 1.0f, seed++);
    const Int8Weight q = QuantizeInt8(w, n, k);
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()})
      EXPECT_TRUE(SameBits(RunInt8(x, m, k, q, n, b, Kernel::kDispatched),
                           RunInt8(x, m, k, q, n, b, Kernel::kScalar)))
          << "m " << m << " n " << n << " k " << k << (b ? " with bias" : "");
  }
  // Where AMX does not run: too few rows, features not whole tiles, or avoided.
  EXPECT_FALSE(simd::Int8UsesAmx(simd::kAmxInt8MinRows - 1, 256));
  EXPECT_FALSE(simd::Int8UsesAmx(32, 257));
  simd::AvoidAmxKernels avoid;
  EXPECT_FALSE(simd::Int8UsesAmx(32, 256));
}

// The bf16 tile instruction sums the (exact) products of the rounded operands in an order of its
// own, so it is held, as the scalar twin is, to the bound of any order of k - 1 f32 additions plus
// the bias's: |y - e| <= k 2^-24 (sum |x w| + |bias|), e the exact sum (double) of the products
// of the bf16 operands plus the bias.
TEST(QuantKernels, Bf16AmxWithinSummationBoundOfExactProducts) {
  if (!simd::HasAmxBf16Kernel()) GTEST_SKIP() << "no AMX-BF16: the AVX-512 kernel runs instead";
  unsigned seed = 600;
  for (const AmxShape& sh : AmxShapes(simd::kAmxBf16MinRows, 32, 63, 160)) {
    const auto [m, n, k] = sh;
    ASSERT_TRUE(simd::Bf16UsesAmx(m, k)) << "m " << m << " k " << k;
    const auto w = RandomFloats(n * k, -0.5f, 0.5f, seed++);
    const auto x = RandomFloats(m * k, -3.0f, 3.0f, seed++);
    const auto bias = RandomFloats(n, -1.0f, 1.0f, seed++);
    std::vector<uint16_t> packed(static_cast<size_t>(Bf16PackedSize(n, k)));
    PackBf16(w.data(), n, k, k, packed.data());
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      const auto y = RunBf16(x, m, k, packed, n, b, Kernel::kDispatched);
      const auto twin = RunBf16(x, m, k, packed, n, b, Kernel::kScalar);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < n; ++c) {
          double exact = b ? b[c] : 0.0, size = b ? std::fabs(b[c]) : 0.0;
          for (int64_t i = 0; i < k; ++i) {
            const double p =
                double{FromBf16(ToBf16(x[r * k + i]))} * double{FromBf16(ToBf16(w[c * k + i]))};
            exact += p;
            size += std::fabs(p);
          }
          const double bound = static_cast<double>(k) * std::ldexp(1.0, -24) * size;
          ASSERT_LE(std::fabs(y[r * n + c] - exact), bound)
              << "m " << m << " n " << n << " k " << k << " at " << r << ", " << c;
          ASSERT_LE(std::fabs(twin[r * n + c] - exact), bound);
        }
    }
  }
  EXPECT_FALSE(simd::Bf16UsesAmx(simd::kAmxBf16MinRows - 1, 256));
  EXPECT_FALSE(simd::Bf16UsesAmx(32, 257));
  simd::AvoidAmxKernels avoid;
  EXPECT_FALSE(simd::Bf16UsesAmx(32, 256));
}

// Integers whose rows reach 127 quantize with scale 1 and no rounding: the int8 product is then
// the exact integer product (sums stay below 2^24, so their f32 is exact too), on every kernel.
TEST(QuantKernels, Int8IsExactOnIntegersItCanHold) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> v(-127, 127);
  for (int64_t k : {4, 37, 256}) {
    const int64_t m = 7, n = 33;
    std::vector<float> w(n * k), x(m * k);
    for (auto& e : w) e = static_cast<float>(v(rng));
    for (auto& e : x) e = static_cast<float>(v(rng));
    for (int64_t r = 0; r < n; ++r) w[r * k] = (r % 2) ? 127.0f : -127.0f;
    for (int64_t r = 0; r < m; ++r) x[r * k + k - 1] = -127.0f;
    // Rows of +-127 throughout: each pair of products is +-2 * 127 * 127, the most the AVX2
    // kernel's int16 pair sums must hold.
    for (int64_t i = 0; i < k; ++i) {
      x[i] = w[i] = 127.0f;
      x[k + i] = w[k + i] = -127.0f;
    }
    const Int8Weight q = QuantizeInt8(w, n, k);
    for (Kernel kernel : {Kernel::kScalar, Kernel::kDispatched, Kernel::kAvx2}) {
      const auto y = RunInt8(x, m, k, q, n, nullptr, kernel);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < n; ++c) {
          int64_t exact = 0;
          for (int64_t i = 0; i < k; ++i)
            exact += static_cast<int64_t>(x[r * k + i]) * static_cast<int64_t>(w[c * k + i]);
          ASSERT_EQ(y[r * n + c], static_cast<float>(exact)) << "k " << k << " r " << r;
        }
    }
  }
}

// Against the f32 product: each weight moves by at most s_n / 2 and each activation by a_m / 2
// when rounded, so |y - y32| <= a_m/2 sum|w| + s_n/2 sum|x| + k a_m s_n / 4, plus f32 rounding
// of the result (a few ulp of sum |x||w|).
TEST(QuantKernels, Int8WithinRoundingBoundOfF32) {
  unsigned seed = 300;
  for (int64_t k : {5, 64, 300}) {
    const int64_t m = 9, n = 40;
    const auto w = RandomFloats(n * k, -0.2f, 0.2f, seed++);
    const auto x = RandomFloats(m * k, -2.0f, 2.0f, seed++);
    const Int8Weight q = QuantizeInt8(w, n, k);
    const auto y = RunInt8(x, m, k, q, n, nullptr, Kernel::kDispatched);
    double worst = 0;
    for (int64_t r = 0; r < m; ++r) {
      double xmax = 0, xabs = 0;
      for (int64_t i = 0; i < k; ++i) {
        xmax = std::max(xmax, std::fabs(double{x[r * k + i]}));
        xabs += std::fabs(x[r * k + i]);
      }
      const double a = xmax / 127;
      for (int64_t c = 0; c < n; ++c) {
        double exact = 0, wabs = 0, xw = 0;
        for (int64_t i = 0; i < k; ++i) {
          exact += double{x[r * k + i]} * w[c * k + i];
          wabs += std::fabs(w[c * k + i]);
          xw += std::fabs(double{x[r * k + i]} * w[c * k + i]);
        }
        const double s = q.scale[c];
        const double bound = a / 2 * wabs + s / 2 * xabs + k * a * s / 4 + 1e-6 * (xw + 1);
        const double err = std::fabs(y[r * n + c] - exact);
        EXPECT_LE(err, bound) << "k " << k << " r " << r << " c " << c;
        worst = std::max(worst, err / bound);
      }
    }
    EXPECT_GT(worst, 0.0);  // the check compares something
  }
}

// bf16 keeps 8 significant bits, so rounding moves each operand by at most u = 2^-8 relatively
// and each product by 2u + u^2: |y - y32| <= sum|x||w| (2^-7 + 2^-16) plus the f32 sum's
// rounding, k 2^-24 sum|x||w|.
TEST(QuantKernels, Bf16WithinRoundingBoundOfF32) {
  unsigned seed = 400;
  for (int64_t m : {8, 40})  // 40 rows over k = 64: the AMX kernel where the CPU has it
    for (int64_t k : {3, 64, 301}) {
      const int64_t n = 35;
      const auto w = RandomFloats(n * k, -0.2f, 0.2f, seed++);
      const auto x = RandomFloats(m * k, -2.0f, 2.0f, seed++);
      std::vector<uint16_t> packed(static_cast<size_t>(Bf16PackedSize(n, k)));
      PackBf16(w.data(), n, k, k, packed.data());
      const auto y = RunBf16(x, m, k, packed, n, nullptr, Kernel::kDispatched);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < n; ++c) {
          double exact = 0, xw = 0;
          for (int64_t i = 0; i < k; ++i) {
            exact += double{x[r * k + i]} * w[c * k + i];
            xw += std::fabs(double{x[r * k + i]} * w[c * k + i]);
          }
          const double bound = xw * (std::ldexp(1.0, -7) + std::ldexp(1.0, -16)) +
                               static_cast<double>(k) * std::ldexp(1.0, -24) * xw;
          EXPECT_LE(std::fabs(y[r * n + c] - exact), bound) << "k " << k;
        }
    }
}

// A quantized checkpoint stores q and s and loads w' = q * s: quantizing w' again gives the same
// q (and s within an ulp), so decoding it in int8 runs the same integer products.
TEST(QuantKernels, Int8RequantizesItsOwnValuesToTheSameIntegers) {
  for (unsigned seed : {1u, 2u, 3u}) {
    const int64_t n = 37, k = 129;
    auto w = RandomFloats(n * k, -0.7f, 0.7f, seed);
    w[5] = 0.0f;
    std::vector<int8_t> q(n * k), q2(n * k);
    std::vector<float> s(n), s2(n);
    std::vector<int32_t> cs(n), cs2(n);
    QuantizeWeightInt8(w.data(), n, k, k, q.data(), s.data(), cs.data());
    std::vector<float> back(n * k);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c) back[r * k + c] = static_cast<float>(q[r * k + c]) * s[r];
    QuantizeWeightInt8(back.data(), n, k, k, q2.data(), s2.data(), cs2.data());
    EXPECT_EQ(q, q2);
    EXPECT_EQ(cs, cs2);
    for (int64_t r = 0; r < n; ++r) EXPECT_NEAR(s2[r], s[r], std::ldexp(s[r], -22));
  }
}

TEST(QuantKernels, ZeroRowsAndRoundingToBf16) {
  // An all-zero weight row and an all-zero input row give zeros (scale 1, no division by zero).
  const int64_t m = 2, n = 3, k = 5;
  std::vector<float> w(n * k, 0.0f), x(m * k, 0.0f);
  for (int64_t i = 0; i < k; ++i) {
    w[1 * k + i] = 0.1f * static_cast<float>(i + 1);
    x[1 * k + i] = 1.0f;
  }
  const Int8Weight q = QuantizeInt8(w, n, k);
  EXPECT_EQ(q.scale[0], 1.0f);
  const auto y = RunInt8(x, m, k, q, n, nullptr, Kernel::kDispatched);
  for (int64_t c = 0; c < n; ++c) EXPECT_EQ(y[c], 0.0f);
  EXPECT_EQ(y[n + 0], 0.0f);
  EXPECT_NEAR(y[n + 1], 1.5f, 0.5f / 127 * 5);
  // Round to nearest even at the halfway point, and NaN stays NaN.
  EXPECT_EQ(ToBf16(1.0f + std::ldexp(1.0f, -8)), ToBf16(1.0f));
  EXPECT_EQ(FromBf16(ToBf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(FromBf16(ToBf16(std::nanf("")))));
  EXPECT_EQ(FromBf16(ToBf16(-2.5f)), -2.5f);
}

TEST(PrepackedLinearPrecision, RowsComputeWhatTheFullLayerComputesForThem) {
  NoGradGuard no_grad;
  const int64_t out = 70, in = 37, m = 5;
  Tensor w = Tensor::FromVector(RandomFloats(out * in, -0.3f, 0.3f, 11), {out, in});
  Tensor b = Tensor::FromVector(RandomFloats(out, -0.5f, 0.5f, 12), {out});
  Tensor x = Tensor::FromVector(RandomFloats(m * in, -1.0f, 1.0f, 13), {m, in});
  const std::vector<int64_t> rows = {69, 0, 3, 16, 17, 40, 41, 2};
  for (nn::Precision p : {nn::Precision::kF32, nn::Precision::kBF16, nn::Precision::kInt8}) {
    const nn::PrepackedLinear full(w, b, p);
    EXPECT_EQ(full.precision(), p);
    const Tensor y = full.Forward(x);
    const Tensor yc = full.Rows(rows).Forward(x);
    ASSERT_EQ(yc.shape(), (Shape{m, static_cast<int64_t>(rows.size())}));
    for (int64_t r = 0; r < m; ++r)
      for (size_t j = 0; j < rows.size(); ++j)
        EXPECT_EQ(yc.data<float>()[r * rows.size() + j], y.data<float>()[r * out + rows[j]])
            << nn::PrecisionName(p);
    // Close to the f32 layer (the precisions' own bounds are tested above).
    const Tensor y32 = nn::PrepackedLinear(w, b).Forward(x);
    for (int64_t i = 0; i < y.numel(); ++i)
      EXPECT_NEAR(y.data<float>()[i], y32.data<float>()[i], 0.05) << nn::PrecisionName(p);
  }
  EXPECT_LT(nn::PrepackedLinear(w, b, nn::Precision::kInt8).weight_bytes(),
            nn::PrepackedLinear(w, b).weight_bytes() / 3);
  EXPECT_THROW(nn::PrepackedLinear(w, b).Rows({70}), Error);
  EXPECT_THROW(nn::ParsePrecision("fp16"), Error);
  EXPECT_EQ(nn::ParsePrecision("int8"), nn::Precision::kInt8);
}

}  // namespace
}  // namespace attend::cpu
