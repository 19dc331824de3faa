// RnnLayer: one GRU or LSTM layer over padded sequences (one or two directions) as a single op
// with a fused forward and a hand-written backward through time.
//
// Why one op per layer rather than per step: per step the work is one small GEMM and a few
// elementwise operations on [B, G*H]; recording each as graph nodes would cost more than the
// arithmetic. Here the input projections of all steps are one GEMM per direction, each step is
// one GEMM (W_hh h) and one fused gate kernel, and backward stores the gate gradients of every
// step so that the weight gradients are again one GEMM each. With two directions and two threads
// the directions run concurrently, each on one thread (OpenBLAS runs single-threaded inside a
// parallel region), which avoids a thread barrier per step.
//
// The op has a single output: a flat buffer holding output [B, T, D*H], then h_n [D, B, H], then
// (LSTM) c_n [D, B, H]. RnnLayer returns contiguous views of its three parts, so gradients from
// any of them flow back through the usual view rules into one gradient of the buffer.
#include <algorithm>
#include <cstring>
#include <string>

#include "attend/nn/rnn.h"
#include "backend/cpu/blas.h"
#include "backend/cpu/reference/rnn_kernels.h"
#include "backend/cpu/simd/kernels.h"
#include "backend/cpu/simd/rnn_kernels.h"
#include "ops/internal.h"

namespace attend {

namespace {

// Sizes of one layer.
struct Dims {
  RnnMode mode;
  int64_t nb;   // batch B
  int64_t nt;   // time steps T
  int64_t ni;   // input width
  int64_t nh;   // hidden width H
  int64_t ng;   // gates * H
  int nd;       // directions D
  int64_t out_elems() const { return nb * nt * nd * nh; }                  // output [B, T, D*H]
  int64_t state_elems() const { return static_cast<int64_t>(nd) * nb * nh; }  // [D, B, H]
  // Multiply-adds of one direction's per-step GEMMs over the whole sequence, times two.
  double recurrent_flops() const { return 2.0 * nb * nt * ng * nh; }
  int64_t total() const { return out_elems() + (mode == RnnMode::kLstm ? 2 : 1) * state_elems(); }
};

// What backward needs from one direction's forward, all [B, T, ...] in time order (row b*T + t).
struct Saved {
  Tensor act;    // [B, T, G*H]: gate activations (LSTM i, f, g, o; GRU r, z, n)
  Tensor hprev;  // [B, T, H]: the hidden state the step started from (carried at padding)
  Tensor cprev;  // [B, T, H]: LSTM: the cell state the step started from
  Tensor aux;    // [B, T, H]: LSTM tanh(c_new); GRU W_hn h + b_hn
};

// Runs fn(d) for each direction: concurrently, one thread each, when there are two directions,
// two threads and enough work (`flops` per direction) to pay for waking the second thread;
// otherwise in turn outside any parallel region, so each GEMM inside may use OpenBLAS's threads.
template <typename Fn>
void ForEachDirection(int nd, double flops, Fn&& fn) {
  // On a shared 2-core machine a parallel region can cost milliseconds when the other core is
  // busy; below about a millisecond of work per direction it is not worth it.
  if (nd == 2 && GetNumThreads() >= 2 && flops >= 2e6) {
#pragma omp parallel num_threads(2)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      for (int d = t; d < nd; d += n) fn(d);
    }
  } else {
    for (int d = 0; d < nd; ++d) fn(d);
  }
}

inline bool Active(const std::vector<int64_t>& len, int64_t b, int64_t t) { return t < len[b]; }

// The combined biases the gate kernels take: LSTM [4H] b_ih + b_hh; GRU [3H]
// [b_ir + b_hr, b_iz + b_hz, b_in] and [H] b_hn. Empty without bias.
template <typename T>
void CombineBiases(const Dims& g, const Tensor& b_ih, const Tensor& b_hh, std::vector<T>* bx,
                   std::vector<T>* bhn) {
  if (!b_ih.defined()) return;
  const T* pi = b_ih.data<T>();
  const T* ph = b_hh.data<T>();
  bx->assign(pi, pi + g.ng);
  const int64_t summed = g.mode == RnnMode::kLstm ? g.ng : 2 * g.nh;
  for (int64_t j = 0; j < summed; ++j) (*bx)[j] += ph[j];
  if (g.mode == RnnMode::kGru) bhn->assign(ph + 2 * g.nh, ph + 3 * g.nh);
}

// Forward recurrence of direction d. xp [B*T, G*H] holds W_ih x of every step (no bias);
// h and c [B, H] hold the initial states and end as the final ones; y is the flat output buffer.
template <typename T>
void ForwardDirection(const Dims& g, int d, const T* xp, const T* w_hh, const T* bx,
                      const T* bhn, bool zero_h0, const std::vector<int64_t>& len, T* h, T* c,
                      T* y, T* hp, Saved& s) {
  const int64_t nb = g.nb, nt = g.nt, nh = g.nh, ng = g.ng, nd = g.nd;
  T* act = s.act.data<T>();
  T* hprev = s.hprev.data<T>();
  T* cprev = g.mode == RnnMode::kLstm ? s.cprev.data<T>() : nullptr;
  T* aux = s.aux.data<T>();
  for (int64_t step = 0; step < nt; ++step) {
    const int64_t t = d == 0 ? step : nt - 1 - step;
    // hp [B, G*H] = h [B, H] @ W_hh^T; zero at the first step when there is no h0.
    if (step == 0 && zero_h0) std::memset(hp, 0, sizeof(T) * nb * ng);
    else cpu::Gemm<T>(false, true, nb, ng, nh, T(1), h, nh, w_hh, nh, T(0), hp, ng);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t row = b * nt + t;
      T* hb = h + b * nh;
      T* yb = y + (row * nd + d) * nh;
      std::memcpy(hprev + row * nh, hb, sizeof(T) * nh);
      if (cprev) std::memcpy(cprev + row * nh, c + b * nh, sizeof(T) * nh);
      if (!Active(len, b, t)) {
        std::memset(yb, 0, sizeof(T) * nh);  // padding: zero output, state carried unchanged
        continue;
      }
      if (g.mode == RnnMode::kLstm) {
        if constexpr (std::is_same_v<T, float>)
          cpu::simd::LstmForwardRow(xp + row * ng, hp + b * ng, bx, c + b * nh, act + row * ng,
                                    c + b * nh, aux + row * nh, yb, nh);
        else
          cpu::ref::LstmForwardRow(xp + row * ng, hp + b * ng, bx, c + b * nh, act + row * ng,
                                   c + b * nh, aux + row * nh, yb, nh);
      } else {
        if constexpr (std::is_same_v<T, float>)
          cpu::simd::GruForwardRow(xp + row * ng, hp + b * ng, bx, bhn, hb, act + row * ng,
                                   aux + row * nh, yb, nh);
        else
          cpu::ref::GruForwardRow(xp + row * ng, hp + b * ng, bx, bhn, hb, act + row * ng,
                                  aux + row * nh, yb, nh);
      }
      std::memcpy(hb, yb, sizeof(T) * nh);
    }
  }
}

// Backward recurrence of direction d: walks the steps in reverse processing order. gy is the
// gradient of the flat output buffer; dh, dc [B, H] start as the gradients of h_n, c_n and end as
// those of h0, c0. Writes the gate gradients of every step: dgx [B*T, G*H] (input side, also
// b_ih's) and, for a GRU, dgh (hidden side; for an LSTM the two are the same and dgh == dgx).
template <typename T>
void BackwardDirection(const Dims& g, int d, const T* w_hh, const std::vector<int64_t>& len,
                       const Saved& s, const T* gy, bool need_dh0, T* dh, T* dc, T* dgx, T* dgh) {
  const int64_t nb = g.nb, nt = g.nt, nh = g.nh, ng = g.ng, nd = g.nd;
  const T* act = s.act.data<T>();
  const T* hprev = s.hprev.data<T>();
  const T* cprev = g.mode == RnnMode::kLstm ? s.cprev.data<T>() : nullptr;
  const T* aux = s.aux.data<T>();
  for (int64_t step = nt - 1; step >= 0; --step) {
    const int64_t t = d == 0 ? step : nt - 1 - step;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t row = b * nt + t;
      if (!Active(len, b, t)) {
        // The state passed through unchanged: dh and dc flow on; no gate gradient.
        std::memset(dgx + row * ng, 0, sizeof(T) * ng);
        if (dgh != dgx) std::memset(dgh + row * ng, 0, sizeof(T) * ng);
        continue;
      }
      const T* gyb = gy + (row * nd + d) * nh;
      if (g.mode == RnnMode::kLstm) {
        if constexpr (std::is_same_v<T, float>)
          cpu::simd::LstmBackwardRow(act + row * ng, cprev + row * nh, aux + row * nh, gyb,
                                     dh + b * nh, dc + b * nh, dgx + row * ng, nh);
        else
          cpu::ref::LstmBackwardRow(act + row * ng, cprev + row * nh, aux + row * nh, gyb,
                                    dh + b * nh, dc + b * nh, dgx + row * ng, nh);
      } else {
        if constexpr (std::is_same_v<T, float>)
          cpu::simd::GruBackwardRow(act + row * ng, aux + row * nh, hprev + row * nh, gyb,
                                    dh + b * nh, dgx + row * ng, dgh + row * ng, nh);
        else
          cpu::ref::GruBackwardRow(act + row * ng, aux + row * nh, hprev + row * nh, gyb,
                                   dh + b * nh, dgx + row * ng, dgh + row * ng, nh);
      }
    }
    // dh [B, H] += dgh_t [B, G*H] @ W_hh [G*H, H]; rows of step t are T*G*H apart.
    if (step > 0 || need_dh0)
      cpu::Gemm<T>(false, false, nb, nh, ng, T(1), dgh + t * ng, nt * ng, w_hh, nh, T(1), dh, nh);
  }
}

// out[j] = sum over rows of m[row, j]; m [rows, n].
template <typename T>
void ColumnSums(const T* m, int64_t rows, int64_t n, T* out) {
  std::fill(out, out + n, T(0));
  for (int64_t r = 0; r < rows; ++r) {
    if constexpr (std::is_same_v<T, float>) cpu::simd::Accumulate(out, m + r * n, n);
    else
      for (int64_t j = 0; j < n; ++j) out[j] += m[r * n + j];
  }
}

std::string ModeName(RnnMode m) { return m == RnnMode::kLstm ? "LSTM" : "GRU"; }

}  // namespace

RnnLayerOutput RnnLayer(RnnMode mode, const Tensor& x, const std::vector<Tensor>& w_ih,
                        const std::vector<Tensor>& w_hh, const std::vector<Tensor>& b_ih,
                        const std::vector<Tensor>& b_hh, const Tensor& h0, const Tensor& c0,
                        const Tensor& lengths) {
  const std::string op = "RnnLayer(" + ModeName(mode) + ")";
  const char* opc = op.c_str();
  CheckFloating(x, opc);
  ATTEND_CHECK(x.dim() == 3, op, ": input must be [B, T, in], got ", x.str());
  const int nd = static_cast<int>(w_ih.size());
  ATTEND_CHECK(nd == 1 || nd == 2, op, ": expected weights for 1 or 2 directions, got ", nd);
  ATTEND_CHECK(w_hh.size() == w_ih.size(), op, ": ", w_ih.size(), " weight_ih but ", w_hh.size(),
               " weight_hh tensors");
  const bool has_bias = !b_ih.empty();
  ATTEND_CHECK(b_ih.size() == b_hh.size() && (b_ih.empty() || b_ih.size() == w_ih.size()), op,
               ": give bias_ih and bias_hh for every direction or for none (got ", b_ih.size(),
               " and ", b_hh.size(), " for ", nd, " directions)");
  Dims g;
  g.mode = mode;
  g.nb = x.size(0);
  g.nt = x.size(1);
  g.ni = x.size(2);
  g.nd = nd;
  const int64_t gates = mode == RnnMode::kLstm ? 4 : 3;
  ATTEND_CHECK(w_hh[0].defined() && w_hh[0].dim() == 2, op, ": weight_hh must be [G*H, H]");
  g.nh = w_hh[0].size(1);
  g.ng = gates * g.nh;
  ATTEND_CHECK(g.nb > 0 && g.nt > 0 && g.nh > 0, op, ": empty batch, sequence or hidden size: x ",
               x.str(), ", weight_hh ", w_hh[0].str());
  const Shape wih_shape{g.ng, g.ni}, whh_shape{g.ng, g.nh}, b_shape{g.ng};
  for (int d = 0; d < nd; ++d) {
    ATTEND_CHECK(w_ih[d].defined() && w_ih[d].shape() == wih_shape, op, ": weight_ih of direction ",
                 d, " must be ", wih_shape.str(), " for input ", x.str(), " and hidden size ", g.nh,
                 ", got ", w_ih[d].defined() ? w_ih[d].str() : "undefined");
    ATTEND_CHECK(w_hh[d].defined() && w_hh[d].shape() == whh_shape, op, ": weight_hh of direction ",
                 d, " must be ", whh_shape.str(), ", got ",
                 w_hh[d].defined() ? w_hh[d].str() : "undefined");
    CheckSameDType(x, w_ih[d], opc);
    CheckSameDType(x, w_hh[d], opc);
    if (has_bias) {
      for (const Tensor* bt : {&b_ih[d], &b_hh[d]}) {
        ATTEND_CHECK(bt->defined() && bt->shape() == b_shape, op, ": biases of direction ", d,
                     " must be ", b_shape.str(), ", got ", bt->defined() ? bt->str() : "undefined");
        CheckSameDType(x, *bt, opc);
      }
    }
  }
  const Shape state_shape{nd, g.nb, g.nh};
  for (const Tensor* st : {&h0, &c0}) {
    if (!st->defined()) continue;
    ATTEND_CHECK(st->shape() == state_shape, op, ": initial ", st == &h0 ? "h0 " : "c0 ",
                 st->str(), " must be [D, B, H] = ", state_shape.str());
    CheckSameDType(x, *st, opc);
  }
  ATTEND_CHECK(mode == RnnMode::kLstm || !c0.defined(), op, ": a GRU has no cell state c0");
  std::vector<int64_t> len(g.nb, g.nt);
  if (lengths.defined()) {
    ATTEND_CHECK(lengths.dtype() == DType::kI64 && lengths.dim() == 1 && lengths.size(0) == g.nb,
                 op, ": lengths must be i64 [B] = [", g.nb, "], got ", lengths.str());
    len = lengths.ToVector<int64_t>();
    for (int64_t b = 0; b < g.nb; ++b)
      ATTEND_CHECK(len[b] >= 1 && len[b] <= g.nt, op, ": lengths[", b, "] = ", len[b],
                   " is outside [1, T] = [1, ", g.nt, "] for input ", x.str());
  }

  // Plain (unrecorded) handles on the data.
  Tensor xc = x.Detach().Contiguous();  // [B, T, in] = [B*T, in]
  std::vector<Tensor> wi(nd), wh(nd), bi(nd), bh(nd);
  for (int d = 0; d < nd; ++d) {
    wi[d] = w_ih[d].Detach().Contiguous();
    wh[d] = w_hh[d].Detach().Contiguous();
    if (has_bias) {
      bi[d] = b_ih[d].Detach().Contiguous();
      bh[d] = b_hh[d].Detach().Contiguous();
    }
  }
  Tensor h0c = h0.defined() ? h0.Detach().Contiguous() : Tensor();
  Tensor c0c = c0.defined() ? c0.Detach().Contiguous() : Tensor();

  const bool lstm = mode == RnnMode::kLstm;
  Tensor packed = Tensor::Empty(Shape{g.total()}, x.dtype());
  std::vector<Saved> saved(nd);
  for (int d = 0; d < nd; ++d) {
    saved[d].act = Tensor::Empty(Shape{g.nb, g.nt, g.ng}, x.dtype());
    saved[d].hprev = Tensor::Empty(Shape{g.nb, g.nt, g.nh}, x.dtype());
    if (lstm) saved[d].cprev = Tensor::Empty(Shape{g.nb, g.nt, g.nh}, x.dtype());
    saved[d].aux = Tensor::Empty(Shape{g.nb, g.nt, g.nh}, x.dtype());
  }

  DispatchFloat(x.dtype(), opc, [&](auto tag) {
    using T = decltype(tag);
    T* y = packed.data<T>();
    T* hn = y + g.out_elems();
    T* cn = lstm ? hn + g.state_elems() : nullptr;
    if (h0c.defined()) std::memcpy(hn, h0c.data<T>(), sizeof(T) * g.state_elems());
    else std::fill(hn, hn + g.state_elems(), T(0));
    if (lstm) {
      if (c0c.defined()) std::memcpy(cn, c0c.data<T>(), sizeof(T) * g.state_elems());
      else std::fill(cn, cn + g.state_elems(), T(0));
    }
    // Input projections of all steps, one GEMM per direction (threaded by OpenBLAS):
    // xp[d] [B*T, G*H] = x [B*T, in] @ W_ih[d]^T.
    std::vector<Tensor> xp(nd), hp(nd);
    std::vector<std::vector<T>> bx(nd), bhn(nd);
    for (int d = 0; d < nd; ++d) {
      xp[d] = Tensor::Empty(Shape{g.nb * g.nt, g.ng}, x.dtype());
      hp[d] = Tensor::Empty(Shape{g.nb, g.ng}, x.dtype());
      cpu::Gemm<T>(false, true, g.nb * g.nt, g.ng, g.ni, T(1), xc.data<T>(), g.ni,
                   wi[d].data<T>(), g.ni, T(0), xp[d].data<T>(), g.ng);
      CombineBiases<T>(g, bi[d], bh[d], &bx[d], &bhn[d]);
    }
    ForEachDirection(nd, g.recurrent_flops(), [&](int d) {
      ForwardDirection<T>(g, d, xp[d].data<T>(), wh[d].data<T>(),
                          bx[d].empty() ? nullptr : bx[d].data(),
                          bhn[d].empty() ? nullptr : bhn[d].data(), !h0c.defined(), len,
                          hn + d * g.nb * g.nh, lstm ? cn + d * g.nb * g.nh : nullptr, y,
                          hp[d].data<T>(), saved[d]);
    });
  });

  std::vector<Tensor> inputs{x};
  for (int d = 0; d < nd; ++d) {
    inputs.push_back(w_ih[d]);
    inputs.push_back(w_hh[d]);
    inputs.push_back(has_bias ? b_ih[d] : Tensor());
    inputs.push_back(has_bias ? b_hh[d] : Tensor());
  }
  inputs.push_back(h0);
  inputs.push_back(c0);
  std::vector<bool> needs(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    needs[i] = inputs[i].defined() && inputs[i].requires_grad();

  RecordOp(lstm ? "LSTMLayer" : "GRULayer", packed, inputs,
           [g, xc, wi, wh, len, saved, needs, has_bias](const Tensor& grad) {
    const int nd = g.nd;
    const bool lstm = g.mode == RnnMode::kLstm;
    const size_t ih0 = 1 + 4 * static_cast<size_t>(nd), ic0 = ih0 + 1;
    Tensor gp = grad.Contiguous();
    std::vector<Tensor> result(needs.size());
    DispatchFloat(gp.dtype(), "RnnLayer backward", [&](auto tag) {
      using T = decltype(tag);
      const T* gy = gp.data<T>();
      const T* ghn = gy + g.out_elems();
      const T* gcn = lstm ? ghn + g.state_elems() : nullptr;
      // Carried state gradients, [D, B, H]: start as dL/dh_n, dL/dc_n, end as dL/dh0, dL/dc0.
      Tensor dh = Tensor::Empty(Shape{nd, g.nb, g.nh}, gp.dtype());
      Tensor dc = lstm ? Tensor::Empty(Shape{nd, g.nb, g.nh}, gp.dtype()) : Tensor();
      std::memcpy(dh.data<T>(), ghn, sizeof(T) * g.state_elems());
      if (lstm) std::memcpy(dc.data<T>(), gcn, sizeof(T) * g.state_elems());
      std::vector<Tensor> dgx(nd), dgh(nd), dbi(nd), dbh(nd);
      for (int d = 0; d < nd; ++d) {
        dgx[d] = Tensor::Empty(Shape{g.nb * g.nt, g.ng}, gp.dtype());
        dgh[d] = lstm ? dgx[d] : Tensor::Empty(Shape{g.nb * g.nt, g.ng}, gp.dtype());
        if (has_bias) {
          dbi[d] = Tensor::Empty(Shape{g.ng}, gp.dtype());
          dbh[d] = lstm ? dbi[d] : Tensor::Empty(Shape{g.ng}, gp.dtype());
        }
      }
      ForEachDirection(nd, g.recurrent_flops(), [&](int d) {
        T* dhd = dh.data<T>() + d * g.nb * g.nh;
        T* dcd = lstm ? dc.data<T>() + d * g.nb * g.nh : nullptr;
        BackwardDirection<T>(g, d, wh[d].data<T>(), len, saved[d], gy, needs[ih0], dhd, dcd,
                             dgx[d].data<T>(), dgh[d].data<T>());
        if (has_bias) {
          ColumnSums<T>(dgx[d].data<T>(), g.nb * g.nt, g.ng, dbi[d].data<T>());
          if (!lstm) ColumnSums<T>(dgh[d].data<T>(), g.nb * g.nt, g.ng, dbh[d].data<T>());
        }
      });
      // The weight and input gradients: one GEMM each over all B*T rows (threaded by OpenBLAS).
      Tensor dx = needs[0] ? Tensor::Empty(xc.shape(), xc.dtype()) : Tensor();
      for (int d = 0; d < nd; ++d) {
        const size_t base = 1 + 4 * static_cast<size_t>(d);
        if (needs[0])  // dx [B*T, in] (+)= dgx [B*T, G*H] @ W_ih [G*H, in]
          cpu::Gemm<T>(false, false, g.nb * g.nt, g.ni, g.ng, T(1), dgx[d].data<T>(), g.ng,
                       wi[d].data<T>(), g.ni, d == 0 ? T(0) : T(1), dx.data<T>(), g.ni);
        if (needs[base]) {  // dW_ih [G*H, in] = dgx^T @ x
          Tensor dw = Tensor::Empty(Shape{g.ng, g.ni}, gp.dtype());
          cpu::Gemm<T>(true, false, g.ng, g.ni, g.nb * g.nt, T(1), dgx[d].data<T>(), g.ng,
                       xc.data<T>(), g.ni, T(0), dw.data<T>(), g.ni);
          result[base] = dw;
        }
        if (needs[base + 1]) {  // dW_hh [G*H, H] = dgh^T @ h_prev
          Tensor dw = Tensor::Empty(Shape{g.ng, g.nh}, gp.dtype());
          cpu::Gemm<T>(true, false, g.ng, g.nh, g.nb * g.nt, T(1), dgh[d].data<T>(), g.ng,
                       saved[d].hprev.data<T>(), g.nh, T(0), dw.data<T>(), g.nh);
          result[base + 1] = dw;
        }
        if (needs[base + 2]) result[base + 2] = dbi[d];
        if (needs[base + 3]) result[base + 3] = lstm ? dbi[d].Clone() : dbh[d];
      }
      result[0] = dx;
      if (needs[ih0]) result[ih0] = dh;
      if (lstm && needs[ic0]) result[ic0] = dc;
    });
    return result;
  });

  RnnLayerOutput out;
  out.output = packed.Narrow(0, 0, g.out_elems()).View(Shape{g.nb, g.nt, nd * g.nh});
  out.h_n = packed.Narrow(0, g.out_elems(), g.state_elems()).View(state_shape);
  if (lstm)
    out.c_n = packed.Narrow(0, g.out_elems() + g.state_elems(), g.state_elems()).View(state_shape);
  return out;
}

}  // namespace attend
