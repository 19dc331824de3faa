// Highway kernels of fused additive (Bahdanau) attention scores, compiled once per target and
// dispatched at run time (once per call; the OpenMP split happens outside the target code).
//
// Lanes run over the attention dim A, which is contiguous in both q and k, so nothing is
// transposed or copied: for one query row and four keys at a time, four accumulators of
// v * tanh(q + k) walk A in vectors (the last one masked), and one horizontal sum per pair
// finishes each score. The [Tq, Tk, A] tensor of tanh values only ever exists one vector at a
// time, in registers. Backward walks A in vectors on the outside and recomputes tanh.
//
// Fast tanh: FastTanh in math-inl.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/additive_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include "backend/cpu/simd/additive_kernels.h"
#include "backend/cpu/simd/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Lanes [0, n) of p, zeros after: the last, partial vector of a row. Highway promises that
// MaskedLoad reads only the lanes it keeps where HWY_MEM_OPS_MIGHT_FAULT is 0 (AVX-512), and
// AVX2 implements it for f32 with vmaskmovps, which does not touch masked-off lanes either. On
// the other targets (the emulated baseline, SSE4) it loads the whole vector, past the end of
// the row: found by AddressSanitizer (clang) on AdditiveAttention's every-target test. There
// the tail is copied through a buffer. (BlendedStore writes only the kept lanes on every
// target compiled here.)
HWY_INLINE VF LoadTail(DF d, const float* HWY_RESTRICT p, size_t n) {
#if HWY_MEM_OPS_MIGHT_FAULT && HWY_TARGET != HWY_AVX2
  HWY_ALIGN float buf[HWY_LANES(float)] = {};
  for (size_t i = 0; i < n; ++i) buf[i] = p[i];
  return hn::Load(d, buf);
#else
  return hn::MaskedLoad(hn::FirstN(d, n), d, p);
#endif
}

void FastTanhImpl(const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(FastTanh(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    const size_t tail = static_cast<size_t>(n - i);
    hn::BlendedStore(FastTanh(d, LoadTail(d, x + i, tail)), hn::FirstN(d, tail), d, y + i);
  }
}

// Scores of one query row qr [A] against kKeys consecutive keys k0 [kKeys, A] into out[kKeys].
// Masked-off lanes of the last chunk load v = 0, so they add nothing whatever tanh gives there.
template <int kKeys>
HWY_INLINE void ScoreKeys(DF d, const float* HWY_RESTRICT qr, const float* HWY_RESTRICT k0,
                          const float* HWY_RESTRICT v, float* HWY_RESTRICT out, int64_t na) {
  const int64_t N = hn::Lanes(d);
  VF acc[kKeys];
  for (int i = 0; i < kKeys; ++i) acc[i] = hn::Zero(d);
  int64_t c = 0;
  for (; c + N <= na; c += N) {
    const VF qv = hn::LoadU(d, qr + c), vv = hn::LoadU(d, v + c);
    for (int i = 0; i < kKeys; ++i)
      acc[i] = hn::MulAdd(vv, FastTanh(d, hn::Add(qv, hn::LoadU(d, k0 + i * na + c))), acc[i]);
  }
  if (c < na) {
    const size_t tail = static_cast<size_t>(na - c);
    const VF qv = LoadTail(d, qr + c, tail), vv = LoadTail(d, v + c, tail);
    for (int i = 0; i < kKeys; ++i)
      acc[i] = hn::MulAdd(vv, FastTanh(d, hn::Add(qv, LoadTail(d, k0 + i * na + c, tail))), acc[i]);
  }
  for (int i = 0; i < kKeys; ++i) out[i] = hn::GetLane(hn::SumOfLanes(d, acc[i]));
}

// Rows [r0, r1) of the flattened batch x query rows.
void ForwardRowsImpl(const float* q, const float* k, const float* v, float* s, int64_t nq,
                     int64_t nk, int64_t na, int64_t r0, int64_t r1) {
  const DF d;
  for (int64_t r = r0; r < r1; ++r) {
    const float* qr = q + r * na;              // [A]
    const float* kb = k + (r / nq) * nk * na;  // [Tk, A] of this row's batch item
    float* sr = s + r * nk;                    // [Tk]
    int64_t j = 0;
    // Four keys at a time: four independent tanh chains keep the FMA pipes busy.
    for (; j + 4 <= nk; j += 4) ScoreKeys<4>(d, qr, kb + j * na, v, sr + j, na);
    for (; j < nk; ++j) ScoreKeys<1>(d, qr, kb + j * na, v, sr + j, na);
  }
}

// One chunk [c, c + N) of A (kFull) or the masked last one, of the backward below. Masked lanes
// load zeros (v = 0 there) and are never stored.
template <bool kFull>
HWY_INLINE void BackwardChunk(DF d, const float* HWY_RESTRICT q, const float* HWY_RESTRICT k,
                              const float* HWY_RESTRICT v, const float* HWY_RESTRICT g,
                              float* HWY_RESTRICT dq, float* HWY_RESTRICT dk,
                              float* HWY_RESTRICT dv, int64_t nk, int64_t na, int64_t t0,
                              int64_t t1, int64_t c) {
  const auto m = hn::FirstN(d, static_cast<size_t>(kFull ? hn::Lanes(d) : na - c));
  auto load = [&](const float* p) {
    return kFull ? hn::LoadU(d, p) : LoadTail(d, p, static_cast<size_t>(na - c));
  };
  auto store = [&](VF x, float* p) {
    if (kFull) hn::StoreU(x, d, p);
    else hn::BlendedStore(x, m, d, p);
  };
  // One (t, j) pair: returns g (1 - th^2) and adds g th into dv_acc and v g (1 - th^2) into dk.
  auto pair = [&](VF qv, VF vv, float gtj, int64_t j, VF& dv_acc) {
    const VF th = FastTanh(d, hn::Add(qv, load(k + j * na + c)));
    const VF gj = hn::Set(d, gtj);
    const VF gth = hn::Mul(gj, th);
    const VF u = hn::NegMulAdd(gth, th, gj);  // g (1 - th^2)
    dv_acc = hn::Add(dv_acc, gth);
    float* dkp = dk + j * na + c;
    store(hn::MulAdd(vv, u, load(dkp)), dkp);
    return u;
  };
  const VF vv = load(v + c);
  VF dv0 = hn::Zero(d), dv1 = hn::Zero(d);
  for (int64_t t = t0; t < t1; ++t) {
    const VF qv = load(q + t * na + c);
    const float* gt = g + t * nk;
    // Two keys per iteration with separate accumulators: two independent tanh chains.
    VF dq0 = hn::Zero(d), dq1 = hn::Zero(d);
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
      dq0 = hn::Add(dq0, pair(qv, vv, gt[j], j, dv0));
      dq1 = hn::Add(dq1, pair(qv, vv, gt[j + 1], j + 1, dv1));
    }
    if (j < nk) dq0 = hn::Add(dq0, pair(qv, vv, gt[j], j, dv0));
    store(hn::Mul(vv, hn::Add(dq0, dq1)), dq + t * na + c);
  }
  store(hn::Add(load(dv + c), hn::Add(dv0, dv1)), dv + c);
}

// Backward of one batch item over its query rows [t0, t1): q [Tq, A], k [Tk, A], g [Tq, Tk].
// Writes dq rows [t0, t1); adds into dk [Tk, A] and dv [A]. A is walked in vectors on the
// outside, so each pass over the keys touches one column block of k and dk.
void BackwardRowsImpl(const float* q, const float* k, const float* v, const float* g, float* dq,
                      float* dk, float* dv, int64_t nk, int64_t na, int64_t t0, int64_t t1) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t c = 0;
  for (; c + N <= na; c += N) BackwardChunk<true>(d, q, k, v, g, dq, dk, dv, nk, na, t0, t1, c);
  if (c < na) BackwardChunk<false>(d, q, k, v, g, dq, dk, dv, nk, na, t0, t1, c);
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace attend::cpu::simd {

HWY_EXPORT(FastTanhImpl);
HWY_EXPORT(ForwardRowsImpl);
HWY_EXPORT(BackwardRowsImpl);

void FastTanh(const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(FastTanhImpl)(x, y, n); }

void AdditiveScoresForward(const float* q, const float* k, const float* v, float* s, int64_t nb,
                           int64_t nq, int64_t nk, int64_t na, int threads) {
  // The target is looked up once here; the threads call the chosen function directly.
  auto* fn = &HWY_DYNAMIC_DISPATCH(ForwardRowsImpl);
  const int64_t rows = nb * nq;
  const int nt = static_cast<int>(std::min<int64_t>(std::max(threads, 1), rows));
  if (nt <= 1) {
    fn(q, k, v, s, nq, nk, na, 0, rows);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t n = omp_get_num_threads(), i = omp_get_thread_num();
    fn(q, k, v, s, nq, nk, na, rows * i / n, rows * (i + 1) / n);
  }
}

void AdditiveScoresBackward(const float* q, const float* k, const float* v, const float* g,
                            float* dq, float* dk, float* dv, int64_t nb, int64_t nq, int64_t nk,
                            int64_t na, int threads, bool accumulate_dk) {
  auto* fn = &HWY_DYNAMIC_DISPATCH(BackwardRowsImpl);
  if (!accumulate_dk) std::fill(dk, dk + nb * nk * na, 0.0f);
  std::fill(dv, dv + na, 0.0f);
  threads = std::max(threads, 1);
  if (nb < threads) threads = static_cast<int>(std::min<int64_t>(threads, nq));
  if (threads <= 1) {
    for (int64_t b = 0; b < nb; ++b)
      fn(q + b * nq * na, k + b * nk * na, v, g + b * nq * nk, dq + b * nq * na, dk + b * nk * na,
         dv, nk, na, 0, nq);
    return;
  }
  // Each thread adds into its own dv (and, when one item's queries are split, its own dk), so
  // no two threads ever write the same element; the partial sums are added up at the end.
  std::vector<float> dv_part(static_cast<size_t>(threads) * na, 0.0f);
  int used = 1;
  if (nb >= threads) {
#pragma omp parallel num_threads(threads)
    {
      const int i = omp_get_thread_num();
#pragma omp single
      used = omp_get_num_threads();
#pragma omp for schedule(static)
      for (int64_t b = 0; b < nb; ++b)
        fn(q + b * nq * na, k + b * nk * na, v, g + b * nq * nk, dq + b * nq * na, dk + b * nk * na,
           dv_part.data() + i * na, nk, na, 0, nq);
    }
  } else {
    // Few items: split each item's query rows; thread 0 adds into dk itself, the others into
    // zeroed scratch rows that are summed into dk afterwards.
    std::vector<float> dk_part(static_cast<size_t>(threads - 1) * nk * na);
    for (int64_t b = 0; b < nb; ++b) {
      std::fill(dk_part.begin(), dk_part.end(), 0.0f);
      float* dkb = dk + b * nk * na;
#pragma omp parallel num_threads(threads)
      {
        const int64_t n = omp_get_num_threads(), i = omp_get_thread_num();
#pragma omp single
        used = static_cast<int>(n);
        float* dki = i == 0 ? dkb : dk_part.data() + (i - 1) * nk * na;
        fn(q + b * nq * na, k + b * nk * na, v, g + b * nq * nk, dq + b * nq * na, dki,
           dv_part.data() + i * na, nk, na, nq * i / n, nq * (i + 1) / n);
      }
      for (int i = 1; i < used; ++i) {
        const float* p = dk_part.data() + (i - 1) * nk * na;
        for (int64_t e = 0; e < nk * na; ++e) dkb[e] += p[e];
      }
    }
  }
  for (int i = 0; i < used; ++i)
    for (int64_t a = 0; a < na; ++a) dv[a] += dv_part[i * na + a];
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
