// The f32 GEMM kernel (backend/cpu/simd/gemm_kernels.cc) beside raw cblas_sgemm on the same
// operands: the Transformer's training products in all three orientations (forward x W^T, input
// gradient dY W, weight gradient dY^T X) and the decoding products on a weight packed once
// (PackedGemm, a few rows against the 8000 x 256 output layer), and the same decoding products in
// bf16 and int8 (simd/quant_kernels.cc; the activations' conversion included, as decoding runs
// it; "ops" counted as for f32: 2 m n k), with oneDNN's matmul on them where libdnnl-dev is
// installed. GFLOP/s counters; run with OMP_NUM_THREADS=1 for one core. The thresholds in
// backend/cpu/gemm.cc, nn/prepacked.cc and simd/quant_kernels.h come from these rows.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstring>
#include <optional>
#include <vector>

#if defined(ATTEND_BENCH_ONEDNN)
#include <dnnl.hpp>

#include <unordered_map>
#endif

#include "attend/tensor.h"
#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/reference/quant_kernels.h"
#include "backend/cpu/simd/gemm_kernels.h"
#include "backend/cpu/simd/quant_kernels.h"

namespace {

std::vector<float> Filled(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(static_cast<int>(i % 97) - 48);
  return v;
}

void SetFlops(benchmark::State& st, int64_t m, int64_t n, int64_t k) {
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Filled(n, scale) in a tensor: from the tensor allocator, as training's operands are, whose
// blocks of 2 MiB and more are offered transparent huge pages. With 4 KiB pages (std::vector) the
// output layer's product (C: 65 MB) varied 98-125 GFLOP/s between runs of one binary on an Intel
// VM, OpenBLAS's 145-148; with huge pages 136-138 and 153 (the TLB, not the arithmetic).
attend::Tensor FilledTensor(int64_t n, float scale) {
  attend::Tensor t = attend::Tensor::Empty({n});
  const std::vector<float> v = Filled(static_cast<size_t>(n), scale);
  std::memcpy(t.data<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

// The kernel (Gemm, SmallGemm for the heads' products, FewRowsGemm for the thin ones) or
// cblas_sgemm.
enum class Kernel { kOurs, kSmall, kFew, kSgemm };
// cold: before each timed product, untimed, a pass over 128 MiB evicts the operands from every
// cache level (a recurrent decoder's step finds its weights there after the other steps' work).
void GemmRows(benchmark::State& st, Kernel kernel, bool ta, bool tb, int64_t m, int64_t n,
              int64_t k, bool cold) {
  const attend::Tensor at = FilledTensor(m * k, 1e-3f), bt = FilledTensor(k * n, 1e-3f);
  attend::Tensor ct = FilledTensor(m * n, 0.0f);
  const float *a = at.data<float>(), *b = bt.data<float>();
  float* c = ct.data<float>();
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  std::vector<float> evict(cold ? size_t{1} << 25 : 0);
  for (auto _ : st) {
    if (cold) {
      st.PauseTiming();
      for (size_t i = 0; i < evict.size(); i += 16) evict[i] += 1.0f;
      benchmark::DoNotOptimize(evict.data());
      st.ResumeTiming();
    }
    if (kernel == Kernel::kOurs)
      attend::cpu::simd::Gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
    else if (kernel == Kernel::kSmall)
      attend::cpu::simd::SmallGemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
    else if (kernel == Kernel::kFew)
      attend::cpu::simd::FewRowsGemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
    else
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                  n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
    benchmark::DoNotOptimize(c);
  }
  SetFlops(st, m, n, k);
}
void BM_Gemm(benchmark::State& st, Kernel kernel, bool ta, bool tb, int64_t m, int64_t n,
             int64_t k) {
  GemmRows(st, kernel, ta, tb, m, n, k, false);
}
void BM_GemmCold(benchmark::State& st, Kernel kernel, bool ta, bool tb, int64_t m, int64_t n,
                 int64_t k) {
  GemmRows(st, kernel, ta, tb, m, n, k, true);
}

// Decoding: m rows times a weight [n, k] packed once (ours) or passed transposed to sgemm.
void BM_Decode(benchmark::State& st, bool ours, int64_t m, int64_t n, int64_t k) {
  auto x = Filled(m * k, 1e-3f), w = Filled(n * k, 1e-3f), y = Filled(m * n, 0.0f);
  std::vector<float> packed(attend::cpu::PackedSize(n, k));
  attend::cpu::PackWeight(w.data(), n, k, k, packed.data());
  for (auto _ : st) {
    if (ours)
      attend::cpu::simd::PackedGemm(x.data(), m, k, k, packed.data(), n, nullptr, y.data(), n);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data(), k, w.data(), k,
                  0.0f, y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  SetFlops(st, m, n, k);
}

// Which low-precision kernel BM_DecodeLow runs: the one the CPU picks, the AVX-512 ones even where
// the product would run on AMX tiles, the AVX2 ones (the CPUs without AVX-512 run these), or the
// scalar twins (what runs without AVX2).
enum class Path { kDispatched, kAvx512, kAvx2, kScalar };

// The same product with the weight in bf16 (bf16 = true) or int8, packed once.
void BM_DecodeLow(benchmark::State& st, bool bf16, Path path, int64_t m, int64_t n, int64_t k) {
  namespace cpu = attend::cpu;
  auto x = Filled(m * k, 1e-3f), w = Filled(n * k, 1e-3f), y = Filled(m * n, 0.0f);
  std::vector<uint16_t> b16(cpu::Bf16PackedSize(n, k));
  std::vector<int8_t> q(n * k), q8(cpu::Int8PackedSize(n, k));
  std::vector<float> scale(n);
  std::vector<int32_t> colsum(n);
  cpu::PackBf16(w.data(), n, k, k, b16.data());
  cpu::QuantizeWeightInt8(w.data(), n, k, k, q.data(), scale.data(), colsum.data());
  cpu::PackInt8(q.data(), n, k, q8.data());
  std::optional<cpu::simd::AvoidAmxKernels> avoid;
  std::optional<cpu::simd::UseAvx2QuantKernels> avx2;
  if (path == Path::kAvx512) avoid.emplace();
  std::optional<cpu::simd::ForceScalarQuantKernels> scalar;
  if (path == Path::kAvx2) avx2.emplace();
  if (path == Path::kScalar) scalar.emplace();
  for (auto _ : st) {
    if (bf16) cpu::simd::Bf16Gemm(x.data(), m, k, k, b16.data(), n, nullptr, y.data(), n);
    else
      cpu::simd::Int8Gemm(x.data(), m, k, k, q8.data(), scale.data(), colsum.data(), n, nullptr,
                          y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  SetFlops(st, m, n, k);
}

#if defined(ATTEND_BENCH_ONEDNN)
// oneDNN's matmul (libdnnl-dev, Debian's 2.6) on the same product: int8 (u8 activations x s8
// weights, f32 out with a scale per output column) or bf16, the weight reordered once into the
// layout oneDNN chooses, the primitive made once. It is given activations already converted
// (u8 / bf16), and int8 without the per-row activation scale, which our kernels apply: oneDNN
// 2.6 has that scale only as a binary post-op, and with one its int8 matmul falls back to its
// reference implementation (measured: 0.5-10 s per call). So these rows are a lower bound on
// oneDNN's time for our work.
void BM_OneDnn(benchmark::State& st, bool bf16, int64_t m, int64_t n, int64_t k) {
  using dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  const dt adt = bf16 ? dt::bf16 : dt::u8, wdt = bf16 ? dt::bf16 : dt::s8;
  const memory::desc a_md({m, k}, adt, tag::ab), w_any({k, n}, wdt, tag::any),
      w_md({k, n}, wdt, tag::ba), d_md({m, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (!bf16) attr.set_output_scales(1 << 1, std::vector<float>(static_cast<size_t>(n), 1e-3f));
  dnnl::matmul::primitive_desc pd;
  try {
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, w_any, d_md), attr, eng);
  } catch (const dnnl::error& e) {
    // oneDNN 2.6 has no bf16 matmul without AVX-512 (measured on a Zen 3): skip the row.
    st.SkipWithError((std::string("oneDNN has no such matmul on this CPU: ") + e.what()).c_str());
    return;
  }
  memory a(a_md, eng), w_rows(w_md, eng), w(pd.weights_desc(), eng), d(d_md, eng);
  std::memset(a.get_data_handle(), bf16 ? 0x3c : 1, a_md.get_size());
  std::memset(w_rows.get_data_handle(), bf16 ? 0x3c : 1, w_md.get_size());
  dnnl::reorder(w_rows, w).execute(stream, w_rows, w);
  const dnnl::matmul mm(pd);
  const std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}};
  for (auto _ : st) {
    mm.execute(stream, args);
    stream.wait();
    benchmark::DoNotOptimize(d.get_data_handle());
  }
  st.SetLabel(pd.impl_info_str());
  SetFlops(st, m, n, k);
}
#endif

#define REG(name, fn, ...) \
  benchmark::RegisterBenchmark(name, fn, __VA_ARGS__)->UseRealTime()->Unit(benchmark::kMicrosecond)

int RegisterAll() {
  namespace simd = attend::cpu::simd;
  // The AVX-512 (AVX2) rows where the CPU has those kernels: elsewhere they would time another.
  const bool avx512_bf16 = simd::HasBf16Kernel(), avx512_int8 = simd::HasInt8Kernel(),
             avx2 = simd::HasAvx2QuantKernels();
  struct S {
    const char* name;
    bool ta, tb;
    int64_t m, n, k;
  };
  const S shapes[] = {
      {"fwd_xWt/2048x768x256", false, true, 2048, 768, 256},
      {"dx_dYW/2048x256x768", false, false, 2048, 256, 768},
      // The same with one block of k (GemmImpl's kKc): the blocks of k cost the products above.
      {"dx_dYW/2048x768x256", false, false, 2048, 768, 256},
      {"dw_dYtX/768x256x2048", true, false, 768, 256, 2048},
      {"fwd_xWt/2048x8000x256", false, true, 2048, 8000, 256},
      {"dx_dYW/2048x256x8000", false, false, 2048, 256, 8000},
      {"dw_dYtX/8000x256x2048", true, false, 8000, 256, 2048},
      // nn::Linear's weight gradient as it is computed: x^T dY, [in, out] (then a transposed view).
      {"dwt_XtdY/256x8000x2048", true, false, 256, 8000, 2048},
      {"dwt_XtdY/256x768x2048", true, false, 256, 768, 2048},
      {"square/128x128x128", false, false, 128, 128, 128},
      {"square/64x64x64", false, false, 64, 64, 64},
      {"head/20x20x64", false, true, 20, 20, 64},
      // A recurrent decoder's training step, one time step of 64 sentences (GRU 256: 768 gates).
      {"step_fwd_xWt/64x768x256", false, true, 64, 768, 256},
      {"step_dx_dYW/64x256x768", false, false, 64, 256, 768},
      {"step_dx_dYW/64x256x8000", false, false, 64, 256, 8000},
      // The GRU's input weight of bench_nmt's decoder (input: embedding and context, 512).
      {"step_dx_dYW/64x512x768", false, false, 64, 512, 768},
      // That weight's gradient from one step (a rank-64 update, as each step added it before
      // issue 20's twentieth pass) and from all 20 steps at once (DeferGradientProduct's sum).
      {"step_dw_dYtX/768x512x64", true, false, 768, 512, 64},
      {"dw_dYtX/768x512x1280", true, false, 768, 512, 1280},
  };
  for (const S& s : shapes) {
    REG((std::string("gemm/") + s.name).c_str(), BM_Gemm, Kernel::kOurs, s.ta, s.tb, s.m, s.n, s.k);
    REG((std::string("sgemm/") + s.name).c_str(), BM_Gemm, Kernel::kSgemm, s.ta, s.tb, s.m, s.n,
        s.k);
    // The decoder's per-step products again, their operands in no cache.
    if (std::string(s.name).rfind("step_", 0) == 0) {
      REG((std::string("gemm_cold/") + s.name).c_str(), BM_GemmCold, Kernel::kOurs, s.ta, s.tb, s.m,
          s.n, s.k);
      REG((std::string("sgemm_cold/") + s.name).c_str(), BM_GemmCold, Kernel::kSgemm, s.ta, s.tb,
          s.m, s.n, s.k);
    }
  }
  // A Transformer's attention heads at the quickstart's sizes (T 20-21, 8 heads of 32): scores
  // q k^T, context P v, and the backward's dv = P^T dout; with 20 x 20 x 64 above.
  const S heads[] = {{"head/20x20x64", false, true, 20, 20, 64},
                     {"head_qk/20x21x32", false, true, 20, 21, 32},
                     {"head_pv/20x32x21", false, false, 20, 32, 21},
                     {"head_dv/21x32x20", true, false, 21, 32, 20}};
  for (const S& s : heads) {
    REG((std::string("small/") + s.name).c_str(), BM_Gemm, Kernel::kSmall, s.ta, s.tb, s.m, s.n,
        s.k);
    if (std::string(s.name) != "head/20x20x64") {
      REG((std::string("sgemm/") + s.name).c_str(), BM_Gemm, Kernel::kSgemm, s.ta, s.tb, s.m, s.n,
          s.k);
    }
  }
  // An RNN decoder's attention at one time step, per sentence (source length 20, 256
  // encoder features: bench_nmt's rnn_attention): scores q K^T, context w V, and the keys'
  // gradient w^T dctx, a rank-1 update.
  const S thin[] = {{"scores/1x20x256", false, true, 1, 20, 256},
                    {"context/1x256x20", false, false, 1, 256, 20},
                    {"rank1/20x256x1", true, false, 20, 256, 1}};
  for (const S& s : thin) {
    REG((std::string("few/") + s.name).c_str(), BM_Gemm, Kernel::kFew, s.ta, s.tb, s.m, s.n, s.k);
    REG((std::string("sgemm/") + s.name).c_str(), BM_Gemm, Kernel::kSgemm, s.ta, s.tb, s.m, s.n,
        s.k);
  }
  for (int64_t m : {1, 2, 4, 8, 16, 32, 128, 256}) {
    const std::string shape = std::to_string(m) + "x8000x256";
    REG(("packed/" + shape).c_str(), BM_Decode, true, m, 8000, 256);
    REG(("sgemm_bt/" + shape).c_str(), BM_Decode, false, m, 8000, 256);
    REG(("bf16/" + shape).c_str(), BM_DecodeLow, true, Path::kDispatched, m, 8000, 256);
    REG(("int8/" + shape).c_str(), BM_DecodeLow, false, Path::kDispatched, m, 8000, 256);
    if (m >= 4) {  // the AVX-512 kernels where AMX tiles run (quant_kernels.h's kAmx*MinRows)
      if (avx512_bf16)
        REG(("bf16_avx512/" + shape).c_str(), BM_DecodeLow, true, Path::kAvx512, m, 8000, 256);
      if (avx512_int8)
        REG(("int8_avx512/" + shape).c_str(), BM_DecodeLow, false, Path::kAvx512, m, 8000, 256);
    }
    if (avx2) {
      REG(("bf16_avx2/" + shape).c_str(), BM_DecodeLow, true, Path::kAvx2, m, 8000, 256);
      REG(("int8_avx2/" + shape).c_str(), BM_DecodeLow, false, Path::kAvx2, m, 8000, 256);
    }
    if (m == 1 || m == 32) {
      REG(("bf16_scalar/" + shape).c_str(), BM_DecodeLow, true, Path::kScalar, m, 8000, 256);
      REG(("int8_scalar/" + shape).c_str(), BM_DecodeLow, false, Path::kScalar, m, 8000, 256);
    }
#if defined(ATTEND_BENCH_ONEDNN)
    REG(("onednn_bf16/" + shape).c_str(), BM_OneDnn, true, m, 8000, 256);
    REG(("onednn_int8/" + shape).c_str(), BM_OneDnn, false, m, 8000, 256);
#endif
  }
  // The decoder's other products: a GRU's 768 x 256 and a feed-forward 1024 x 256, for 32 rows
  // and for one (a single sentence decoded greedily).
  for (int64_t m : {1, 32})
    for (int64_t n : {768, 1024}) {
      const std::string shape = std::to_string(m) + "x" + std::to_string(n) + "x256";
      REG(("packed/" + shape).c_str(), BM_Decode, true, m, n, 256);
      REG(("bf16/" + shape).c_str(), BM_DecodeLow, true, Path::kDispatched, m, n, 256);
      REG(("int8/" + shape).c_str(), BM_DecodeLow, false, Path::kDispatched, m, n, 256);
      if (avx512_bf16)
        REG(("bf16_avx512/" + shape).c_str(), BM_DecodeLow, true, Path::kAvx512, m, n, 256);
      if (avx512_int8)
        REG(("int8_avx512/" + shape).c_str(), BM_DecodeLow, false, Path::kAvx512, m, n, 256);
      if (avx2) {
        REG(("bf16_avx2/" + shape).c_str(), BM_DecodeLow, true, Path::kAvx2, m, n, 256);
        REG(("int8_avx2/" + shape).c_str(), BM_DecodeLow, false, Path::kAvx2, m, n, 256);
      }
    }
  return 0;
}
const int registered = RegisterAll();

}  // namespace

BENCHMARK_MAIN();
