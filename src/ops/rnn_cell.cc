// RnnLayer: one GRU or LSTM layer over padded sequences (one or two directions) as a single op
// with a fused forward and a hand-written backward through time.
//
// Why one op per layer rather than per step: per step the work is one small GEMM and a few
// elementwise operations on [B, G*H]; recording each as graph nodes would cost more than the
// arithmetic. Here the input projections of all steps are one GEMM per direction, each step is
// one GEMM (W_hh h) and one fused gate kernel per sequence, and backward keeps the gate
// gradients of every step so that the weight gradients are again one GEMM each.
//
// Threads: the recurrence is split into independent units, a direction and a range of
// sequences, each run from start to end by one thread (OpenBLAS runs single-threaded inside a
// parallel region). Two directions on two threads run one direction each; one direction is split
// by sequences into parts of equal work. No unit ever waits for another, so there is no thread
// barrier per step: on a shared machine a barrier waits for a descheduled thread, which made
// per-step threaded GEMMs up to 30x slower under load. Only the few large GEMMs over all steps
// (input projections, weight and input gradients) are threaded by OpenBLAS itself.
//
// Inside, sequences are handled in PyTorch's packed layout: sorted by length (longest first),
// step t covers the n_t sequences still running, and the rows of all steps are stored one step
// after another (R = sum of the lengths rows in all). Every GEMM then covers only real steps
// (a padded batch costs what its tokens cost), the rows of one step are contiguous, and a
// sequence that has ended (forward) or not yet started (reverse) simply is not among the first
// n_t rows, so its state is carried untouched.
//
// The op has a single output: a flat buffer holding output [B, T, D*H], then h_n [D, B, H], then
// (LSTM) c_n [D, B, H]. RnnLayer returns contiguous views of its three parts, so gradients from
// any of them flow back through the usual view rules into one gradient of the buffer.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "attend/ops/rnn.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/dispatch.h"
#include "ops/op_helpers.h"

namespace attend {

namespace {

// Sizes of one layer.
struct Dims {
  RnnMode mode;
  int64_t nb;                                                                 // batch B
  int64_t nt;                                                                 // time steps T
  int64_t ni;                                                                 // input width
  int64_t nh;                                                                 // hidden width H
  int64_t ng;                                                                 // gates * H
  int nd;                                                                     // directions D
  int64_t out_elems() const { return nb * nt * nd * nh; }                     // [B, T, D*H]
  int64_t state_elems() const { return static_cast<int64_t>(nd) * nb * nh; }  // [D, B, H]
  int64_t total() const { return out_elems() + (mode == RnnMode::kLstm ? 2 : 1) * state_elems(); }
};

// The packed layout of a batch of sequences (see the top of the file).
struct Packing {
  std::vector<int64_t> order;  // order[i]: the batch index of the i-th longest sequence
  std::vector<int64_t> count;  // count[t]: sequences still running at step t (non-increasing)
  std::vector<int64_t> first;  // first[t]: the packed row of step t of sequence order[0]
  std::vector<int64_t> len;    // len[i]: the length of sequence order[i] (non-increasing)
  int64_t rows = 0;            // R = sum of the lengths

  Packing(const std::vector<int64_t>& lengths, int64_t nt) {
    const int64_t nb = static_cast<int64_t>(lengths.size());
    order.resize(nb);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
    for (int64_t i = 0; i < nb; ++i) len.push_back(lengths[order[i]]);
    count.assign(nt, 0);
    first.assign(nt, 0);
    for (int64_t t = 0; t < nt; ++t) {
      while (count[t] < nb && len[count[t]] > t) ++count[t];
      first[t] = rows;
      rows += count[t];
    }
  }
};

// A piece of the recurrence one thread runs alone: direction d over the sorted sequences
// [lo, hi). At step t it covers rows [lo, min(hi, count[t])) of the step.
struct Unit {
  int d;
  int64_t lo, hi;
};

// The units of a layer, and whether to run them concurrently. With more threads than directions,
// each direction is split into parts of about equal total length, of at least 8 sequences each
// (fewer rows make the per-step GEMMs inefficient).
std::vector<Unit> MakeUnits(const Dims& g, const Packing& pk, bool* concurrent) {
  const int threads = std::max(1, GetNumThreads());
  // Below about a millisecond of work a parallel region costs more than it saves (it can cost
  // milliseconds when the other core of a shared machine is busy).
  const double flops = 2.0 * pk.rows * g.ng * g.nh * g.nd;
  const bool worth = threads >= 2 && flops >= 4e6;
  int64_t parts = 1;
  if (worth && threads > g.nd) parts = std::min<int64_t>(threads / g.nd, g.nb / 8);
  parts = std::max<int64_t>(parts, 1);
  std::vector<int64_t> cut{0};
  int64_t acc = 0, i = 0;
  for (int64_t k = 1; k < parts; ++k) {
    while (i < g.nb && acc * parts < k * pk.rows) acc += pk.len[i++];
    if (i > cut.back() && i < g.nb) cut.push_back(i);
  }
  cut.push_back(g.nb);
  std::vector<Unit> units;
  for (int d = 0; d < g.nd; ++d)
    for (size_t k = 0; k + 1 < cut.size(); ++k) units.push_back({d, cut[k], cut[k + 1]});
  *concurrent = worth && units.size() > 1;
  return units;
}

// Runs fn(unit) for every unit: one per thread when concurrent, else in turn outside any
// parallel region (so that each GEMM may use OpenBLAS's threads).
template <typename Fn>
void RunUnits(const std::vector<Unit>& units, bool concurrent, Fn&& fn) {
  if (!concurrent) {
    for (const Unit& u : units) fn(u);
    return;
  }
  const int n = static_cast<int>(units.size());
#pragma omp parallel for schedule(static, 1) num_threads(std::min(n, GetNumThreads()))
  for (int k = 0; k < n; ++k) fn(units[k]);
}

// What backward needs from one direction's forward, all packed [R, ...].
struct Saved {
  Tensor act;    // [R, G*H]: gate activations (LSTM i, f, g, o; GRU r, z, n)
  Tensor hprev;  // [R, H]: the hidden state the step started from
  Tensor cprev;  // [R, H]: LSTM: the cell state the step started from
  Tensor aux;    // [R, H]: LSTM tanh(c_new); GRU W_hn h + b_hn
};

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

// Forward recurrence of one unit (steps in time order for direction 0, reversed for 1).
// xp [R, G*H] holds W_ih x of every packed row (no bias); h and c [B, H] (this direction's
// states, sorted order) hold the initial states and end as the final ones; y is the flat output
// buffer; hp [B, G*H] scratch (the unit uses its own rows).
template <typename T>
void ForwardUnit(const Dims& g, const Packing& pk, const Unit& u, const T* xp, const T* w_hh,
                 const T* bx, const T* bhn, bool zero_h0, T* h, T* c, T* y, T* hp, Saved& s) {
  const int64_t nt = g.nt, nh = g.nh, ng = g.ng, nd = g.nd, lo = u.lo;
  T* act = s.act.data<T>();
  T* hprev = s.hprev.data<T>();
  T* cprev = g.mode == RnnMode::kLstm ? s.cprev.data<T>() : nullptr;
  T* aux = s.aux.data<T>();
  bool first_step = true;
  for (int64_t step = 0; step < nt; ++step) {
    const int64_t t = u.d == 0 ? step : nt - 1 - step;
    const int64_t m = std::min(u.hi, pk.count[t]) - lo;  // sequences of the unit at step t
    if (m <= 0) continue;  // all ended (forward) or none started yet (reverse)
    const int64_t r0 = pk.first[t] + lo;
    // hp [m, G*H] = h [m, H] @ W_hh^T; zero at the first step when there is no h0.
    if (first_step && zero_h0) std::memset(hp + lo * ng, 0, sizeof(T) * m * ng);
    else
      cpu::Gemm<T>(false, true, m, ng, nh, T(1), h + lo * nh, nh, w_hh, nh, T(0), hp + lo * ng, ng);
    first_step = false;
    std::memcpy(hprev + r0 * nh, h + lo * nh, sizeof(T) * m * nh);
    if (cprev) std::memcpy(cprev + r0 * nh, c + lo * nh, sizeof(T) * m * nh);
    for (int64_t i = lo; i < lo + m; ++i) {
      const int64_t row = pk.first[t] + i;
      T* hi = h + i * nh;
      T* yi = y + ((pk.order[i] * nt + t) * nd + u.d) * nh;
      if (g.mode == RnnMode::kLstm) {
        cpu::LstmForwardRow(xp + row * ng, hp + i * ng, bx, c + i * nh, act + row * ng, c + i * nh,
                            aux + row * nh, yi, nh);
      } else {
        cpu::GruForwardRow(xp + row * ng, hp + i * ng, bx, bhn, hi, act + row * ng, aux + row * nh,
                           yi, nh);
      }
      std::memcpy(hi, yi, sizeof(T) * nh);
    }
  }
}

// Backward recurrence of one unit: its steps in reverse processing order. gy is the gradient of
// the flat output buffer; dh, dc [B, H] (this direction, sorted order) start as the gradients of
// h_n, c_n and end as those of h0, c0. Writes the gate gradients of the unit's packed rows:
// dgx [R, G*H] (input side, also b_ih's) and, for a GRU, dgh (hidden side; for an LSTM they are
// the same, dgh == dgx).
template <typename T>
void BackwardUnit(const Dims& g, const Packing& pk, const Unit& u, const T* w_hh, const Saved& s,
                  const T* gy, bool need_dh0, T* dh, T* dc, T* dgx, T* dgh) {
  const int64_t nt = g.nt, nh = g.nh, ng = g.ng, nd = g.nd, lo = u.lo;
  const T* act = s.act.data<T>();
  const T* hprev = s.hprev.data<T>();
  const T* cprev = g.mode == RnnMode::kLstm ? s.cprev.data<T>() : nullptr;
  const T* aux = s.aux.data<T>();
  // The first step the forward pass processed for this unit: its dh GEMM only feeds dL/dh0.
  // (Reverse direction: the longest sequence of the unit, sequence lo, starts there.)
  const int64_t first_t = u.d == 0 ? 0 : pk.len[lo] - 1;
  for (int64_t step = nt - 1; step >= 0; --step) {
    const int64_t t = u.d == 0 ? step : nt - 1 - step;
    const int64_t m = std::min(u.hi, pk.count[t]) - lo;
    if (m <= 0) continue;
    const int64_t r0 = pk.first[t] + lo;
    for (int64_t i = lo; i < lo + m; ++i) {
      const int64_t row = pk.first[t] + i;
      const T* gyi = gy + ((pk.order[i] * nt + t) * nd + u.d) * nh;
      if (g.mode == RnnMode::kLstm) {
        cpu::LstmBackwardRow(act + row * ng, cprev + row * nh, aux + row * nh, gyi, dh + i * nh,
                             dc + i * nh, dgx + row * ng, nh);
      } else {
        cpu::GruBackwardRow(act + row * ng, aux + row * nh, hprev + row * nh, gyi, dh + i * nh,
                            dgx + row * ng, dgh + row * ng, nh);
      }
    }
    // dh [m, H] += dgh_t [m, G*H] @ W_hh [G*H, H]; sequences not running carry dh unchanged.
    if (t != first_t || need_dh0)
      cpu::Gemm<T>(false, false, m, nh, ng, T(1), dgh + r0 * ng, ng, w_hh, nh, T(1), dh + lo * nh,
                   nh);
  }
}

// out[j] = sum over rows of m[row, j]; m [rows, n]. Threads split the columns, so the sums do
// not depend on the thread count.
template <typename T>
void ColumnSums(const T* m, int64_t rows, int64_t n, T* out) {
  ParallelRange(n, std::max<int64_t>(16, (1 << 16) / std::max<int64_t>(rows, 1)),
                [&](int64_t j0, int64_t j1) {
                  std::fill(out + j0, out + j1, T(0));
                  for (int64_t r = 0; r < rows; ++r) {
                    cpu::Accumulate(out + j0, m + r * n + j0, j1 - j0);
                  }
                });
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
    ATTEND_CHECK(st->shape() == state_shape, op, ": initial ", st == &h0 ? "h0 " : "c0 ", st->str(),
                 " must be [D, B, H] = ", state_shape.str());
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
  const Packing pk(len, g.nt);
  const bool padded = pk.rows < g.nb * g.nt;

  // Plain (unrecorded) handles on the data.
  Tensor xc = x.Detach().Contiguous();  // [B, T, in]
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
  const DType dt = x.dtype();
  Tensor packed = Tensor::Empty(Shape{g.total()}, dt);
  Tensor xs = Tensor::Empty(Shape{pk.rows, g.ni}, dt);  // x in packed row order [R, in]
  std::vector<Saved> saved(nd);
  for (int d = 0; d < nd; ++d) {
    saved[d].act = Tensor::Empty(Shape{pk.rows, g.ng}, dt);
    saved[d].hprev = Tensor::Empty(Shape{pk.rows, g.nh}, dt);
    if (lstm) saved[d].cprev = Tensor::Empty(Shape{pk.rows, g.nh}, dt);
    saved[d].aux = Tensor::Empty(Shape{pk.rows, g.nh}, dt);
  }

  DispatchFloat(dt, opc, [&](auto tag) {
    using T = decltype(tag);
    const int64_t nb = g.nb, nt = g.nt, nh = g.nh, ng = g.ng;
    T* y = packed.data<T>();
    T* hn = y + g.out_elems();
    T* cn = lstm ? hn + g.state_elems() : nullptr;
    // Pack x: row first[t] + i is step t of sequence order[i].
    const T* px = xc.data<T>();
    T* pxs = xs.data<T>();
    for (int64_t t = 0; t < nt; ++t)
      for (int64_t i = 0; i < pk.count[t]; ++i)
        std::memcpy(pxs + (pk.first[t] + i) * g.ni, px + (pk.order[i] * nt + t) * g.ni,
                    sizeof(T) * g.ni);
    // Padded steps output zero.
    if (padded)
      for (int64_t b = 0; b < nb; ++b)
        std::memset(y + (b * nt + len[b]) * nd * nh, 0, sizeof(T) * (nt - len[b]) * nd * nh);
    // Input projections of all steps, one GEMM per direction (threaded by OpenBLAS):
    // xp[d] [R, G*H] = xs [R, in] @ W_ih[d]^T. Running states in sorted order, [D, B, H].
    std::vector<Tensor> xp(nd), hp(nd);
    std::vector<std::vector<T>> bx(nd), bhn(nd);
    Tensor hs = Tensor::Empty(state_shape, dt);
    Tensor cs = lstm ? Tensor::Empty(state_shape, dt) : Tensor();
    for (int d = 0; d < nd; ++d) {
      xp[d] = Tensor::Empty(Shape{pk.rows, ng}, dt);
      hp[d] = Tensor::Empty(Shape{nb, ng}, dt);
      cpu::Gemm<T>(false, true, pk.rows, ng, g.ni, T(1), pxs, g.ni, wi[d].data<T>(), g.ni, T(0),
                   xp[d].data<T>(), ng);
      CombineBiases<T>(g, bi[d], bh[d], &bx[d], &bhn[d]);
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t src = (d * nb + pk.order[i]) * nh, dst = (d * nb + i) * nh;
        if (h0c.defined()) std::memcpy(hs.data<T>() + dst, h0c.data<T>() + src, sizeof(T) * nh);
        else std::fill(hs.data<T>() + dst, hs.data<T>() + dst + nh, T(0));
        if (!lstm) continue;
        if (c0c.defined()) std::memcpy(cs.data<T>() + dst, c0c.data<T>() + src, sizeof(T) * nh);
        else std::fill(cs.data<T>() + dst, cs.data<T>() + dst + nh, T(0));
      }
    }
    bool concurrent = false;
    const std::vector<Unit> units = MakeUnits(g, pk, &concurrent);
    RunUnits(units, concurrent, [&](const Unit& u) {
      const int d = u.d;
      ForwardUnit<T>(
          g, pk, u, xp[d].data<T>(), wh[d].data<T>(), bx[d].empty() ? nullptr : bx[d].data(),
          bhn[d].empty() ? nullptr : bhn[d].data(), !h0c.defined(), hs.data<T>() + d * nb * nh,
          lstm ? cs.data<T>() + d * nb * nh : nullptr, y, hp[d].data<T>(), saved[d]);
    });
    // Final states back in batch order.
    for (int d = 0; d < nd; ++d)
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t src = (d * nb + i) * nh, dst = (d * nb + pk.order[i]) * nh;
        std::memcpy(hn + dst, hs.data<T>() + src, sizeof(T) * nh);
        if (lstm) std::memcpy(cn + dst, cs.data<T>() + src, sizeof(T) * nh);
      }
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
           [g, pk, xs, wi, wh, saved, needs, has_bias, padded](const Tensor& grad) {
             const int nd = g.nd;
             const int64_t nb = g.nb, nt = g.nt, nh = g.nh, ng = g.ng, ni = g.ni;
             const bool lstm = g.mode == RnnMode::kLstm;
             const size_t ih0 = 1 + 4 * static_cast<size_t>(nd), ic0 = ih0 + 1;
             Tensor gp = grad.Contiguous();
             const DType dt = gp.dtype();
             std::vector<Tensor> result(needs.size());
             DispatchFloat(dt, "RnnLayer backward", [&](auto tag) {
               using T = decltype(tag);
               const T* gy = gp.data<T>();
               const T* ghn = gy + g.out_elems();
               const T* gcn = lstm ? ghn + g.state_elems() : nullptr;
               // Carried state gradients in sorted order, [D, B, H]: they start as dL/dh_n and
               // dL/dc_n and end as dL/dh0 and dL/dc0.
               Tensor dh = Tensor::Empty(Shape{nd, nb, nh}, dt);
               Tensor dc = lstm ? Tensor::Empty(Shape{nd, nb, nh}, dt) : Tensor();
               for (int d = 0; d < nd; ++d)
                 for (int64_t i = 0; i < nb; ++i) {
                   const int64_t src = (d * nb + pk.order[i]) * nh, dst = (d * nb + i) * nh;
                   std::memcpy(dh.data<T>() + dst, ghn + src, sizeof(T) * nh);
                   if (lstm) std::memcpy(dc.data<T>() + dst, gcn + src, sizeof(T) * nh);
                 }
               std::vector<Tensor> dgx(nd), dgh(nd), dbi(nd), dbh(nd);
               for (int d = 0; d < nd; ++d) {
                 dgx[d] = Tensor::Empty(Shape{pk.rows, ng}, dt);
                 dgh[d] = lstm ? dgx[d] : Tensor::Empty(Shape{pk.rows, ng}, dt);
                 if (has_bias) {
                   dbi[d] = Tensor::Empty(Shape{ng}, dt);
                   dbh[d] = lstm ? dbi[d] : Tensor::Empty(Shape{ng}, dt);
                 }
               }
               bool concurrent = false;
               const std::vector<Unit> units = MakeUnits(g, pk, &concurrent);
               RunUnits(units, concurrent, [&](const Unit& u) {
                 const int d = u.d;
                 BackwardUnit<T>(g, pk, u, wh[d].data<T>(), saved[d], gy, needs[ih0],
                                 dh.data<T>() + d * nb * nh,
                                 lstm ? dc.data<T>() + d * nb * nh : nullptr, dgx[d].data<T>(),
                                 dgh[d].data<T>());
               });
               for (int d = 0; d < nd && has_bias; ++d) {
                 ColumnSums<T>(dgx[d].data<T>(), pk.rows, ng, dbi[d].data<T>());
                 if (!lstm) ColumnSums<T>(dgh[d].data<T>(), pk.rows, ng, dbh[d].data<T>());
               }
               // The weight and input gradients: one GEMM each over the R packed rows (threaded by
               // OpenBLAS).
               Tensor dxs = needs[0] ? Tensor::Empty(Shape{pk.rows, ni}, dt) : Tensor();
               for (int d = 0; d < nd; ++d) {
                 const size_t base = 1 + 4 * static_cast<size_t>(d);
                 if (needs[0])  // dxs [R, in] (+)= dgx [R, G*H] @ W_ih [G*H, in]
                   cpu::Gemm<T>(false, false, pk.rows, ni, ng, T(1), dgx[d].data<T>(), ng,
                                wi[d].data<T>(), ni, d == 0 ? T(0) : T(1), dxs.data<T>(), ni);
                 // A decoder stepped one time step per call gets one weight gradient per step:
                 // the GEMM adds into the engine's running sum when there is one (beta = 1).
                 auto weight_grad = [&](size_t input, const Tensor& dgates_t, const Tensor& rows_t,
                                        int64_t in) {
                   // Or joins the other steps' terms in one product (autograd/node.h).
                   if (DeferGradientProduct(input, dgates_t, rows_t)) return;
                   const T* dgates = dgates_t.data<T>();
                   const T* rows = rows_t.data<T>();
                   Tensor* sum = PendingGradient(input, Shape{ng, in}, dt);
                   Tensor dw = sum ? Tensor() : Tensor::Empty(Shape{ng, in}, dt);
                   cpu::Gemm<T>(true, false, ng, in, pk.rows, T(1), dgates, ng, rows, in,
                                sum ? T(1) : T(0), (sum ? *sum : dw).template data<T>(), in);
                   result[input] = dw;
                 };
                 // dW_ih [G*H, in] = dgx^T @ xs, dW_hh [G*H, H] = dgh^T @ h_prev
                 if (needs[base]) weight_grad(base, dgx[d], xs, ni);
                 if (needs[base + 1]) weight_grad(base + 1, dgh[d], saved[d].hprev, nh);
                 if (needs[base + 2]) result[base + 2] = dbi[d];
                 // An LSTM's two bias gradients are equal; the second is a copy so that the two
                 // parameters never share a gradient buffer.
                 if (needs[base + 3]) result[base + 3] = lstm ? dbi[d].Clone() : dbh[d];
               }
               if (needs[0]) {
                 // Unpack into [B, T, in]; padded steps get zero.
                 const Shape x_shape{nb, nt, ni};
                 Tensor dx = padded ? Tensor::Zeros(x_shape, dt) : Tensor::Empty(x_shape, dt);
                 for (int64_t t = 0; t < nt; ++t)
                   for (int64_t i = 0; i < pk.count[t]; ++i)
                     std::memcpy(dx.data<T>() + (pk.order[i] * nt + t) * ni,
                                 dxs.data<T>() + (pk.first[t] + i) * ni, sizeof(T) * ni);
                 result[0] = dx;
               }
               auto unsort = [&](const Tensor& s) {  // [D, B, H] from sorted to batch order
                 Tensor u = Tensor::Empty(Shape{nd, nb, nh}, dt);
                 for (int d = 0; d < nd; ++d)
                   for (int64_t i = 0; i < nb; ++i)
                     std::memcpy(u.data<T>() + (d * nb + pk.order[i]) * nh,
                                 s.data<T>() + (d * nb + i) * nh, sizeof(T) * nh);
                 return u;
               };
               if (needs[ih0]) result[ih0] = unsort(dh);
               if (lstm && needs[ic0]) result[ic0] = unsort(dc);
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
