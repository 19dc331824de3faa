// Highway implementations of the GRU and LSTM gate kernels, compiled once per target and
// dispatched at run time. Tails shorter than a vector go to the scalar reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/rnn_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include "backend/cpu/simd/math-inl.h"

#include "backend/cpu/reference/rnn_kernels.h"
#include "backend/cpu/simd/rnn_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// x[j] (+ b[j] when b is given).
HWY_INLINE VF LoadPlus(DF d, const float* x, const float* b, int64_t j) {
  const VF v = hn::LoadU(d, x + j);
  return b ? hn::Add(v, hn::LoadU(d, b + j)) : v;
}

// Gate k's pre-activation at j of rows laid out [gates, h]: x + y (+ b when given).
HWY_INLINE VF Gate(DF d, const float* x, const float* y, const float* b, int64_t h, int k,
                   int64_t j) {
  const int64_t at = k * h + j;
  const VF s = hn::Add(hn::LoadU(d, x + at), hn::LoadU(d, y + at));
  return b ? hn::Add(s, hn::LoadU(d, b + at)) : s;  // (x + y) + b, as the scalar twin
}

void LstmForwardRowImpl(const float* xp, const float* hp, const float* bias, const float* c_prev,
                        float* act, float* c_new, float* tanh_c, float* h_new, int64_t h) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t j = 0;
  for (; j + N <= h; j += N) {
    const VF i = Sigmoid(d, Gate(d, xp, hp, bias, h, 0, j));
    const VF f = Sigmoid(d, Gate(d, xp, hp, bias, h, 1, j));
    const VF g = hn::Tanh(d, Gate(d, xp, hp, bias, h, 2, j));
    const VF o = Sigmoid(d, Gate(d, xp, hp, bias, h, 3, j));
    const VF c = hn::MulAdd(f, hn::LoadU(d, c_prev + j), hn::Mul(i, g));
    const VF tc = hn::Tanh(d, c);
    hn::StoreU(i, d, act + j);
    hn::StoreU(f, d, act + h + j);
    hn::StoreU(g, d, act + 2 * h + j);
    hn::StoreU(o, d, act + 3 * h + j);
    hn::StoreU(c, d, c_new + j);
    hn::StoreU(tc, d, tanh_c + j);
    hn::StoreU(hn::Mul(o, tc), d, h_new + j);
  }
  if (j < h) ref::LstmForwardRow(xp, hp, bias, c_prev, act, c_new, tanh_c, h_new, h, j);
}

void LstmBackwardRowImpl(const float* act, const float* c_prev, const float* tanh_c,
                         const float* dy, float* dh, float* dc, float* dgates, int64_t h) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF one = hn::Set(d, 1.0f), zero = hn::Zero(d);
  int64_t j = 0;
  for (; j + N <= h; j += N) {
    const VF i = hn::LoadU(d, act + j), f = hn::LoadU(d, act + h + j);
    const VF g = hn::LoadU(d, act + 2 * h + j), o = hn::LoadU(d, act + 3 * h + j);
    const VF tc = hn::LoadU(d, tanh_c + j);
    VF dht = hn::LoadU(d, dh + j);
    if (dy) dht = hn::Add(dht, hn::LoadU(d, dy + j));
    // dct = dc + dht * o * (1 - tc^2)
    const VF dct = hn::MulAdd(hn::Mul(dht, o), hn::NegMulAdd(tc, tc, one), hn::LoadU(d, dc + j));
    const VF sig_i = hn::Mul(i, hn::Sub(one, i)), sig_f = hn::Mul(f, hn::Sub(one, f));
    const VF sig_o = hn::Mul(o, hn::Sub(one, o));
    hn::StoreU(hn::Mul(hn::Mul(dct, g), sig_i), d, dgates + j);
    hn::StoreU(hn::Mul(hn::Mul(dct, hn::LoadU(d, c_prev + j)), sig_f), d, dgates + h + j);
    hn::StoreU(hn::Mul(hn::Mul(dct, i), hn::NegMulAdd(g, g, one)), d, dgates + 2 * h + j);
    hn::StoreU(hn::Mul(hn::Mul(dht, tc), sig_o), d, dgates + 3 * h + j);
    hn::StoreU(hn::Mul(dct, f), d, dc + j);
    hn::StoreU(zero, d, dh + j);
  }
  if (j < h) ref::LstmBackwardRow(act, c_prev, tanh_c, dy, dh, dc, dgates, h, j);
}

void GruForwardRowImpl(const float* xp, const float* hp, const float* bias_x, const float* bias_hn,
                       const float* h_prev, float* act, float* hn_out, float* h_new, int64_t h) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t j = 0;
  for (; j + N <= h; j += N) {
    const VF r = Sigmoid(d, Gate(d, xp, hp, bias_x, h, 0, j));
    const VF z = Sigmoid(d, Gate(d, xp, hp, bias_x, h, 1, j));
    const VF hnv = LoadPlus(d, hp + 2 * h, bias_hn, j);
    const VF xn = LoadPlus(d, xp + 2 * h, bias_x ? bias_x + 2 * h : nullptr, j);
    const VF n = hn::Tanh(d, hn::MulAdd(r, hnv, xn));
    const VF hp_j = hn::LoadU(d, h_prev + j);
    hn::StoreU(r, d, act + j);
    hn::StoreU(z, d, act + h + j);
    hn::StoreU(n, d, act + 2 * h + j);
    hn::StoreU(hnv, d, hn_out + j);
    hn::StoreU(hn::MulAdd(z, hn::Sub(hp_j, n), n), d, h_new + j);
  }
  if (j < h) ref::GruForwardRow(xp, hp, bias_x, bias_hn, h_prev, act, hn_out, h_new, h, j);
}

void GruBackwardRowImpl(const float* act, const float* hn_in, const float* h_prev, const float* dy,
                        float* dh, float* dgx, float* dgh, int64_t h) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF one = hn::Set(d, 1.0f);
  int64_t j = 0;
  for (; j + N <= h; j += N) {
    const VF r = hn::LoadU(d, act + j), z = hn::LoadU(d, act + h + j);
    const VF n = hn::LoadU(d, act + 2 * h + j);
    VF dht = hn::LoadU(d, dh + j);
    if (dy) dht = hn::Add(dht, hn::LoadU(d, dy + j));
    const VF dpn = hn::Mul(hn::Mul(dht, hn::Sub(one, z)), hn::NegMulAdd(n, n, one));
    const VF dpz =
        hn::Mul(hn::Mul(dht, hn::Sub(hn::LoadU(d, h_prev + j), n)), hn::Mul(z, hn::Sub(one, z)));
    const VF dpr = hn::Mul(hn::Mul(dpn, hn::LoadU(d, hn_in + j)), hn::Mul(r, hn::Sub(one, r)));
    hn::StoreU(dpr, d, dgx + j);
    hn::StoreU(dpz, d, dgx + h + j);
    hn::StoreU(dpn, d, dgx + 2 * h + j);
    hn::StoreU(dpr, d, dgh + j);
    hn::StoreU(dpz, d, dgh + h + j);
    hn::StoreU(hn::Mul(dpn, r), d, dgh + 2 * h + j);
    hn::StoreU(hn::Mul(dht, z), d, dh + j);
  }
  if (j < h) ref::GruBackwardRow(act, hn_in, h_prev, dy, dh, dgx, dgh, h, j);
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(LstmForwardRowImpl);
HWY_EXPORT(LstmBackwardRowImpl);
HWY_EXPORT(GruForwardRowImpl);
HWY_EXPORT(GruBackwardRowImpl);

void LstmForwardRow(const float* xp, const float* hp, const float* bias, const float* c_prev,
                    float* act, float* c_new, float* tanh_c, float* h_new, int64_t h) {
  HWY_DYNAMIC_DISPATCH(LstmForwardRowImpl)(xp, hp, bias, c_prev, act, c_new, tanh_c, h_new, h);
}
void LstmBackwardRow(const float* act, const float* c_prev, const float* tanh_c, const float* dy,
                     float* dh, float* dc, float* dgates, int64_t h) {
  HWY_DYNAMIC_DISPATCH(LstmBackwardRowImpl)(act, c_prev, tanh_c, dy, dh, dc, dgates, h);
}
void GruForwardRow(const float* xp, const float* hp, const float* bias_x, const float* bias_hn,
                   const float* h_prev, float* act, float* hn, float* h_new, int64_t h) {
  HWY_DYNAMIC_DISPATCH(GruForwardRowImpl)(xp, hp, bias_x, bias_hn, h_prev, act, hn, h_new, h);
}
void GruBackwardRow(const float* act, const float* hn, const float* h_prev, const float* dy,
                    float* dh, float* dgx, float* dgh, int64_t h) {
  HWY_DYNAMIC_DISPATCH(GruBackwardRowImpl)(act, hn, h_prev, dy, dh, dgx, dgh, h);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
