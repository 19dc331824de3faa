// Scalar reference of fused scaled dot-product attention (forward and backward): the readable
// definition of the Highway kernel, its oracle in the tests, and the f64 path. Accumulates in
// double whatever T is.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <vector>

#include "attend/tensor.h"  // Generator: the dropout stream
#include "backend/cpu/attention_args.h"

namespace attend::cpu::ref {

// The dropout multiplier of weight (b, h, i, j): 0 or 1 / (1 - p) (1 without dropout).
inline double SdpaDropScale(const SdpaArgs& a, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (a.dropout <= 0.0) return 1.0;
  if (a.dropout >= 1.0) return 0.0;
  const uint64_t counter =
      a.offset + static_cast<uint64_t>(((b * a.heads + h) * a.tq + i) * a.tk + j);
  return Generator::UniformD(a.seed, counter) >= a.dropout ? 1.0 / (1.0 - a.dropout) : 0.0;
}

// out [B, H, Tq, Dv] and lse [B, H, Tq] (log-sum-exp of the scaled, masked scores; +inf for a
// row whose keys are all excluded, whose output is zero). One query row at a time, one key at a
// time, with the online softmax: running max m and sum l, rescaled whenever m grows.
template <typename T>
void SdpaForward(const SdpaArgs& a, const T* q, const T* k, const T* v, T* out, T* lse) {
  std::vector<double> acc(a.dv);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h) {
      const T* qh = q + b * a.q_stride[0] + h * a.q_stride[1];
      const T* kh = k + a.KvBatch(b) * a.k_stride[0] + h * a.k_stride[1];
      const T* vh = v + a.KvBatch(b) * a.v_stride[0] + h * a.v_stride[1];
      for (int64_t i = 0; i < a.tq; ++i) {
        const T* qi = qh + i * a.q_stride[2];
        double m = -std::numeric_limits<double>::infinity(), l = 0.0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < a.tk; ++j) {
          if (a.Excluded(b, i, j)) continue;
          const T* kj = kh + j * a.k_stride[2];
          double s = 0.0;
          for (int64_t c = 0; c < a.d; ++c) s += static_cast<double>(qi[c]) * kj[c];
          s *= a.scale;
          const double m_new = std::max(m, s);
          const double alpha = std::exp(m - m_new);  // 0 on the first visible key
          const double p = std::exp(s - m_new);
          l = l * alpha + p;  // the normaliser counts every weight, dropped or not
          const double pz = p * SdpaDropScale(a, b, h, i, j);
          const T* vj = vh + j * a.v_stride[2];
          for (int64_t c = 0; c < a.dv; ++c) acc[c] = acc[c] * alpha + pz * vj[c];
          m = m_new;
        }
        T* oi = out + ((b * a.heads + h) * a.tq + i) * a.dv;
        for (int64_t c = 0; c < a.dv; ++c) oi[c] = static_cast<T>(l > 0.0 ? acc[c] / l : 0.0);
        lse[(b * a.heads + h) * a.tq + i] =
            static_cast<T>(l > 0.0 ? m + std::log(l) : std::numeric_limits<double>::infinity());
      }
    }
}

// Gradients dq [B, H, Tq, D], dk [B, H, Tk, D], dv [B, H, Tk, Dv] (overwritten) from the
// forward's out and lse and the incoming dout [B, H, Tq, Dv]. The weights are recomputed:
// p_ij = exp(s_ij - lse_i); with z_ij the dropout multiplier and D_i = sum_c dout_ic out_ic,
// dv_j += p z dout_i, ds_ij = p (z dout_i . v_j - D_i), dq_i += scale ds k_j, dk_j += scale ds q_i.
template <typename T>
void SdpaBackward(const SdpaArgs& a, const T* q, const T* k, const T* v, const T* out,
                  const T* dout, const T* lse, T* dq, T* dk, T* dv) {
  if (a.kv_batch != nullptr) std::abort();  // forward only (the op never asks for it)
  std::vector<double> gq(a.tq * a.d), gk(a.tk * a.d), gv(a.tk * a.dv);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h) {
      const int64_t bh = b * a.heads + h;
      const T* qh = q + b * a.q_stride[0] + h * a.q_stride[1];
      const T* kh = k + b * a.k_stride[0] + h * a.k_stride[1];
      const T* vh = v + b * a.v_stride[0] + h * a.v_stride[1];
      std::fill(gq.begin(), gq.end(), 0.0);
      std::fill(gk.begin(), gk.end(), 0.0);
      std::fill(gv.begin(), gv.end(), 0.0);
      for (int64_t i = 0; i < a.tq; ++i) {
        const T* qi = qh + i * a.q_stride[2];
        const T* oi = out + (bh * a.tq + i) * a.dv;
        const T* gi = dout + (bh * a.tq + i) * a.dv;
        const double lse_i = lse[bh * a.tq + i];
        if (std::isinf(lse_i)) continue;  // every key excluded: zero gradient
        double d_i = 0.0;
        for (int64_t c = 0; c < a.dv; ++c) d_i += static_cast<double>(gi[c]) * oi[c];
        for (int64_t j = 0; j < a.tk; ++j) {
          if (a.Excluded(b, i, j)) continue;
          const T* kj = kh + j * a.k_stride[2];
          const T* vj = vh + j * a.v_stride[2];
          double s = 0.0, dp = 0.0;
          for (int64_t c = 0; c < a.d; ++c) s += static_cast<double>(qi[c]) * kj[c];
          for (int64_t c = 0; c < a.dv; ++c) dp += static_cast<double>(gi[c]) * vj[c];
          const double p = std::exp(s * a.scale - lse_i);
          const double z = SdpaDropScale(a, b, h, i, j);
          for (int64_t c = 0; c < a.dv; ++c) gv[j * a.dv + c] += p * z * gi[c];
          const double ds = p * (dp * z - d_i) * a.scale;
          for (int64_t c = 0; c < a.d; ++c) {
            gq[i * a.d + c] += ds * kj[c];
            gk[j * a.d + c] += ds * qi[c];
          }
        }
      }
      for (int64_t x = 0; x < a.tq * a.d; ++x) dq[bh * a.tq * a.d + x] = static_cast<T>(gq[x]);
      for (int64_t x = 0; x < a.tk * a.d; ++x) dk[bh * a.tk * a.d + x] = static_cast<T>(gk[x]);
      for (int64_t x = 0; x < a.tk * a.dv; ++x) dv[bh * a.tk * a.dv + x] = static_cast<T>(gv[x]);
    }
}

}  // namespace attend::cpu::ref
