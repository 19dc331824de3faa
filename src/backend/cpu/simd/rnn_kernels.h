// Vectorised f32 GRU and LSTM gate kernels (Highway, dispatched at run time). Each has the same
// contract as its scalar twin in backend/cpu/reference/rnn_kernels.h (columns [0, h)).
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

void LstmForwardRow(const float* xp, const float* hp, const float* bias, const float* c_prev,
                    float* act, float* c_new, float* tanh_c, float* h_new, int64_t h);
void LstmBackwardRow(const float* act, const float* c_prev, const float* tanh_c, const float* dy,
                     float* dh, float* dc, float* dgates, int64_t h);
void GruForwardRow(const float* xp, const float* hp, const float* bias_x, const float* bias_hn,
                   const float* h_prev, float* act, float* hn, float* h_new, int64_t h);
void GruBackwardRow(const float* act, const float* hn, const float* h_prev, const float* dy,
                    float* dh, float* dgx, float* dgh, int64_t h);

}  // namespace attend::cpu::simd
