// Scalar reference of the fused GRU and LSTM gate kernels: one batch row of one time step, forward
// and backward. They serve f64 and are the oracle the Highway versions (simd/rnn_kernels.cc) are
// tested against.
//
// Gate layouts follow PyTorch: LSTM rows are [i | f | g | o] and GRU rows [r | z | n], each block
// `h` wide. "xp" is the input projection W_ih x of the step and "hp" the hidden projection W_hh h
// (both without biases). Each kernel handles the columns [begin, h) of the row, so the vector
// versions can hand their tails here.
#pragma once

#include <cmath>
#include <cstdint>

#include "backend/cpu/reference/elementwise_kernels.h"

namespace attend::cpu::ref {

// LSTM forward. bias (nullable) is b_ih + b_hh [4h]. c_prev and c_new may alias (the running
// cell state is updated in place), h_new may alias nothing else.
//   act [4h]: i, f, g, o after their activations; tanh_c [h]: tanh(c_new), both for backward.
template <typename T>
inline void LstmForwardRow(const T* xp, const T* hp, const T* bias, const T* c_prev, T* act,
                           T* c_new, T* tanh_c, T* h_new, int64_t h, int64_t begin = 0) {
  for (int64_t j = begin; j < h; ++j) {
    T pre[4];
    for (int k = 0; k < 4; ++k)
      pre[k] = xp[k * h + j] + hp[k * h + j] + (bias ? bias[k * h + j] : T(0));
    const T i = Sigmoid(pre[0]), f = Sigmoid(pre[1]), g = std::tanh(pre[2]), o = Sigmoid(pre[3]);
    const T c = f * c_prev[j] + i * g;
    const T tc = std::tanh(c);
    act[j] = i;
    act[h + j] = f;
    act[2 * h + j] = g;
    act[3 * h + j] = o;
    c_new[j] = c;
    tanh_c[j] = tc;
    h_new[j] = o * tc;
  }
}

// LSTM backward of one step. dh [h] is the gradient reaching h_new from later steps, dy [h]
// (nullable) the gradient of this step's output (the same h_new); dc [h] the gradient reaching
// c_new. Writes the gate pre-activation gradients dgates [4h], replaces dc with the gradient of
// c_prev, and zeroes dh (the caller then adds dgates @ W_hh for the gradient of h_prev).
template <typename T>
inline void LstmBackwardRow(const T* act, const T* c_prev, const T* tanh_c, const T* dy, T* dh,
                            T* dc, T* dgates, int64_t h, int64_t begin = 0) {
  for (int64_t j = begin; j < h; ++j) {
    const T i = act[j], f = act[h + j], g = act[2 * h + j], o = act[3 * h + j];
    const T tc = tanh_c[j];
    const T dht = dh[j] + (dy ? dy[j] : T(0));
    const T dct = dc[j] + dht * o * (T(1) - tc * tc);
    dgates[j] = dct * g * i * (T(1) - i);
    dgates[h + j] = dct * c_prev[j] * f * (T(1) - f);
    dgates[2 * h + j] = dct * i * (T(1) - g * g);
    dgates[3 * h + j] = dht * tc * o * (T(1) - o);
    dc[j] = dct * f;
    dh[j] = T(0);
  }
}

// GRU forward, PyTorch's form: r = σ(x_r + h_r), z = σ(x_z + h_z),
// n = tanh(x_n + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h.
// bias_x (nullable) [3h] is [b_ir + b_hr, b_iz + b_hz, b_in]; bias_hn (nullable) [h] is b_hn.
// h_prev and h_new may alias. act [3h]: r, z, n; hn [h]: W_hn h + b_hn, both for backward.
template <typename T>
inline void GruForwardRow(const T* xp, const T* hp, const T* bias_x, const T* bias_hn,
                          const T* h_prev, T* act, T* hn, T* h_new, int64_t h, int64_t begin = 0) {
  for (int64_t j = begin; j < h; ++j) {
    const T r = Sigmoid(xp[j] + hp[j] + (bias_x ? bias_x[j] : T(0)));
    const T z = Sigmoid(xp[h + j] + hp[h + j] + (bias_x ? bias_x[h + j] : T(0)));
    const T hnj = hp[2 * h + j] + (bias_hn ? bias_hn[j] : T(0));
    const T n = std::tanh(xp[2 * h + j] + (bias_x ? bias_x[2 * h + j] : T(0)) + r * hnj);
    act[j] = r;
    act[h + j] = z;
    act[2 * h + j] = n;
    hn[j] = hnj;
    h_new[j] = n + z * (h_prev[j] - n);
  }
}

// GRU backward of one step. dh [h] (in: gradient reaching h_new from later steps; out: the part
// of h_prev's gradient that bypasses W_hh, z * dh'), dy [h] nullable as for the LSTM.
// dgx [3h]: gradients of the input-side pre-activations (also b_ih's); dgh [3h]: of the hidden
// projection W_hh h + b_hh (they differ in the n block, which r scales).
template <typename T>
inline void GruBackwardRow(const T* act, const T* hn, const T* h_prev, const T* dy, T* dh, T* dgx,
                           T* dgh, int64_t h, int64_t begin = 0) {
  for (int64_t j = begin; j < h; ++j) {
    const T r = act[j], z = act[h + j], n = act[2 * h + j];
    const T dht = dh[j] + (dy ? dy[j] : T(0));
    const T dpn = dht * (T(1) - z) * (T(1) - n * n);
    const T dpz = dht * (h_prev[j] - n) * z * (T(1) - z);
    const T dpr = dpn * hn[j] * r * (T(1) - r);
    dgx[j] = dpr;
    dgx[h + j] = dpz;
    dgx[2 * h + j] = dpn;
    dgh[j] = dpr;
    dgh[h + j] = dpz;
    dgh[2 * h + j] = dpn * r;
    dh[j] = dht * z;
  }
}

}  // namespace attend::cpu::ref
