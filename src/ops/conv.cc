// Conv1d and Conv2d: im2col (each image's windows unfolded into a matrix) and one GEMM per image
// and channel group; backward by GEMMs, col2im and a sum for the bias.
#include <algorithm>
#include <string>

#include "attend/ops/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/dispatch.h"
#include "ops/op_helpers.h"
#include "ops/window_args.h"

namespace attend {

namespace {

// Sizes of one 2-D convolution; a 1-D one runs as 2-D with height 1.
struct ConvGeom {
  int64_t batch = 0, in_c = 0, in_h = 0, in_w = 0;
  int64_t out_c = 0, groups = 1;
  int64_t k_h = 0, k_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t out_h = 0, out_w = 0;

  int64_t cols() const { return out_h * out_w; }  // output positions per image: GEMM's N
  int64_t in_plane() const { return in_h * in_w; }
  int64_t group_out() const { return out_c / groups; }
  int64_t group_rows() const { return in_c / groups * k_h * k_w; }  // each group's GEMM K
  int64_t col_rows() const { return in_c * k_h * k_w; }
  // A 1x1 kernel with unit stride and no padding: the image itself is its column matrix.
  bool pointwise() const {
    return k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// The output positions o in [0, n_out) whose input position o * stride + offset lies in
// [0, size): [*lo, *hi), possibly empty.
void ValidRange(int64_t offset, int64_t stride, int64_t size, int64_t n_out, int64_t* lo,
                int64_t* hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t h = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  *lo = std::min(l, n_out);
  *hi = std::min(std::max(h, *lo), n_out);
}

// With unit strides and an output as wide as the input ("same" padding along the width), the
// valid part of every col row is one contiguous run of the input plane, shifted by a constant:
// Im2Col copies it in one go and then zeroes the few entries that wrapped across a row end (those
// that are padding), and Col2Im zeroes them in col and adds the whole run back.
bool RowsAreContiguous(const ConvGeom& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.in_w;
}

// One row (c, i, j) of the column matrix: input channel c at kernel offset (i, j), which reads
// input row oh * stride_h + h_off and column ow * stride_w + w_off for output position (oh, ow);
// only oh in [oh_lo, oh_hi) and ow in [ow_lo, ow_hi) read inside the image.
struct ColRow {
  int64_t c, h_off, w_off, oh_lo, oh_hi, ow_lo, ow_hi;
};

// Calls fn(row, r) for r = 0, 1, ... over the rows of the column matrix in order.
template <typename Fn>
void ForEachColRow(const ConvGeom& g, Fn&& fn) {
  int64_t r = 0;
  for (int64_t c = 0; c < g.in_c; ++c) {
    for (int64_t i = 0; i < g.k_h; ++i) {
      ColRow row{c, i * g.dil_h - g.pad_h, 0, 0, 0, 0, 0};
      ValidRange(row.h_off, g.stride_h, g.in_h, g.out_h, &row.oh_lo, &row.oh_hi);
      for (int64_t j = 0; j < g.k_w; ++j, ++r) {
        row.w_off = j * g.dil_w - g.pad_w;
        ValidRange(row.w_off, g.stride_w, g.in_w, g.out_w, &row.ow_lo, &row.ow_hi);
        fn(row, r);
      }
    }
  }
}

// Zeroes the entries of one col row (ow_n outputs a row) in rows [oh_lo, oh_hi) whose columns lie
// outside [ow_lo, ow_hi): the padding that a contiguous copy wraps across row ends.
template <typename T>
void ZeroOutside(const ColRow& r, int64_t ow_n, T* col) {
  for (int64_t oh = r.oh_lo; oh < r.oh_hi; ++oh) {
    std::fill(col + oh * ow_n, col + oh * ow_n + r.ow_lo, T(0));
    std::fill(col + oh * ow_n + r.ow_hi, col + (oh + 1) * ow_n, T(0));
  }
}

// Unfolds one image x [C, H, W] into col [C * KH * KW, OH * OW]: row (c, i, j) holds input
// channel c at kernel offset (i, j) for every output position, zero where that is padding.
template <typename T>
void Im2Col(const T* x, const ConvGeom& g, T* col_all) {
  const int64_t n = g.cols(), ow_n = g.out_w;
  const bool contiguous = RowsAreContiguous(g);
  ForEachColRow(g, [&](const ColRow& r, int64_t index) {
    const T* plane = x + r.c * g.in_plane();
    T* col = col_all + index * n;
    std::fill(col, col + r.oh_lo * ow_n, T(0));
    std::fill(col + r.oh_hi * ow_n, col + n, T(0));
    if (contiguous && r.oh_lo < r.oh_hi && r.ow_lo < r.ow_hi) {
      // col[k] = plane[k + h_off * W + w_off] over the run, then the wrapped entries -> 0.
      const int64_t first = r.oh_lo * ow_n + r.ow_lo, last = (r.oh_hi - 1) * ow_n + r.ow_hi;
      const T* src = plane + first + r.h_off * g.in_w + r.w_off;
      std::copy(src, src + (last - first), col + first);
      ZeroOutside(r, ow_n, col);
      return;
    }
    for (int64_t oh = r.oh_lo; oh < r.oh_hi; ++oh) {
      T* dst = col + oh * ow_n;
      const T* src = plane + (oh * g.stride_h + r.h_off) * g.in_w;
      std::fill(dst, dst + r.ow_lo, T(0));
      if (g.stride_w == 1) {
        // Rows are short (tens of elements): a loop the compiler vectorises beats a memmove call.
        const T* s = src + r.w_off;
        for (int64_t ow = r.ow_lo; ow < r.ow_hi; ++ow) dst[ow] = s[ow];
      } else {
        for (int64_t ow = r.ow_lo; ow < r.ow_hi; ++ow) dst[ow] = src[ow * g.stride_w + r.w_off];
      }
      std::fill(dst + r.ow_hi, dst + ow_n, T(0));
    }
  });
}

// The adjoint of Im2Col: adds every entry of col [C * KH * KW, OH * OW] into the input position
// it was read from. dx [C, H, W] must be zeroed (or hold what to add to). col is scratch: the
// contiguous path overwrites its padding entries with zeros.
template <typename T>
void Col2Im(T* col_all, const ConvGeom& g, T* dx) {
  const int64_t n = g.cols(), ow_n = g.out_w;
  const bool contiguous = RowsAreContiguous(g);
  ForEachColRow(g, [&](const ColRow& r, int64_t index) {
    T* plane = dx + r.c * g.in_plane();
    T* col = col_all + index * n;
    if (contiguous) {
      if (r.oh_lo >= r.oh_hi || r.ow_lo >= r.ow_hi) return;
      ZeroOutside(r, ow_n, col);
      const int64_t first = r.oh_lo * ow_n + r.ow_lo, last = (r.oh_hi - 1) * ow_n + r.ow_hi;
      const int64_t shift = r.h_off * g.in_w + r.w_off;  // k + shift >= 0 over the run
      for (int64_t k = first; k < last; ++k) plane[k + shift] += col[k];
      return;
    }
    for (int64_t oh = r.oh_lo; oh < r.oh_hi; ++oh) {
      const T* src = col + oh * ow_n;
      T* dst = plane + (oh * g.stride_h + r.h_off) * g.in_w;
      if (g.stride_w == 1) {
        T* d = dst + r.w_off;
        for (int64_t ow = r.ow_lo; ow < r.ow_hi; ++ow) d[ow] += src[ow];
      } else {
        for (int64_t ow = r.ow_lo; ow < r.ow_hi; ++ow) dst[ow * g.stride_w + r.w_off] += src[ow];
      }
    }
  });
}

// How many threads split the images between them. Each image's GEMMs then run on one thread
// (the OpenMP build of OpenBLAS does not thread inside a parallel region), which beats
// threading each small GEMM; with fewer images than two per thread and big GEMMs, OpenBLAS
// threads each GEMM itself instead.
int ImageThreads(const ConvGeom& g) {
  const int nt = GetNumThreads();
  if (nt <= 1 || g.batch < 2) return 1;
  const int64_t flops = g.cols() * g.group_rows() * g.out_c;  // multiply-adds per image
  if (flops * g.batch < (int64_t{1} << 16)) return 1;         // not worth a parallel region
  const bool small_gemms = flops <= (int64_t{1} << 22);
  if (g.batch >= 2 * nt || (g.batch >= nt && g.batch % nt == 0) || small_gemms)
    return static_cast<int>(std::min<int64_t>(nt, g.batch));
  return 1;
}

// Runs fn(image, thread) for every image: with nt > 1 each thread takes one contiguous range of
// images (a fixed split, so per-thread partial sums are deterministic), else all on this thread.
template <typename Fn>
void ForEachImage(int64_t batch, int nt, Fn&& fn) {
  if (nt <= 1) {
    for (int64_t b = 0; b < batch; ++b) fn(b, 0);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), ntr = omp_get_num_threads();
    const int64_t b0 = batch * t / ntr, b1 = batch * (t + 1) / ntr;
    for (int64_t b = b0; b < b1; ++b) fn(b, t);
  }
}

// y [B, O, N] = W_g [O/G, K_g] @ col_g [K_g, N] per group, plus the bias.
template <typename T>
void ConvForwardKernel(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y,
                       DType dtype) {
  const int64_t n = g.cols(), kg = g.group_rows(), og = g.group_out();
  const bool pointwise = g.pointwise();
  const int nt = ImageThreads(g);
  const int64_t scratch = pointwise ? 0 : g.col_rows() * n;
  Tensor cols = Tensor::Empty(Shape{nt, std::max<int64_t>(scratch, 1)}, dtype);
  T* col_base = cols.data<T>();
  ForEachImage(g.batch, nt, [&](int64_t b, int t) {
    const T* xb = x + b * g.in_c * g.in_plane();
    T* yb = y + b * g.out_c * n;
    T* col = col_base + t * scratch;
    if (!pointwise) Im2Col(xb, g, col);
    const T* cb = pointwise ? xb : col;
    // The bias is written first and the GEMM adds onto it (beta = 1).
    if (bias != nullptr) {
      for (int64_t o = 0; o < g.out_c; ++o) std::fill(yb + o * n, yb + (o + 1) * n, bias[o]);
    }
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      cpu::Gemm<T>(false, false, og, n, kg, T(1), w + grp * og * kg, kg, cb + grp * kg * n, n,
                   bias != nullptr ? T(1) : T(0), yb + grp * og * n, n);
    }
  });
}

// Gradients from gy [B, O, N]: dw [O, K_g] (per group) = sum_b gy_b @ col_b^T, db = sum of gy
// over images and positions, dx_b = col2im(W^T @ gy_b). Null outputs are not computed; dw and
// db must come zeroed. x is read only for dw and w only for dx (either may be null otherwise).
// The columns are unfolded again rather than kept from the forward pass: they are K times the
// input's size, and unfolding costs little beside the GEMMs.
template <typename T>
void ConvBackwardKernel(const ConvGeom& g, const T* x, const T* w, const T* gy, T* dx, T* dw, T* db,
                        DType dtype) {
  const int64_t n = g.cols(), kg = g.group_rows(), og = g.group_out();
  const bool pointwise = g.pointwise();
  const int nt = ImageThreads(g);
  const int64_t col_elems = pointwise ? 0 : g.col_rows() * n;
  const int64_t dw_elems = dw != nullptr ? g.out_c * kg : 0;
  const int64_t db_elems = db != nullptr ? g.out_c : 0;
  // Per thread: a column buffer, then (threads after the first) partial dw and db that are
  // added up at the end in thread order. Thread 0 accumulates straight into dw and db.
  const int64_t per_thread = col_elems + dw_elems + db_elems;
  Tensor scratch = Tensor::Empty(Shape{nt, std::max<int64_t>(per_thread, 1)}, dtype);
  T* base = scratch.data<T>();
  for (int t = 1; t < nt; ++t)
    std::fill(base + t * per_thread + col_elems, base + (t + 1) * per_thread, T(0));
  ForEachImage(g.batch, nt, [&](int64_t b, int t) {
    const T* gb = gy + b * g.out_c * n;
    T* col = base + t * per_thread;
    T* dw_t = t == 0 ? dw : col + col_elems;
    T* db_t = t == 0 ? db : col + col_elems + dw_elems;
    if (dw != nullptr) {
      const T* xb = x + b * g.in_c * g.in_plane();
      if (!pointwise) Im2Col(xb, g, col);
      const T* cb = pointwise ? xb : col;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        cpu::Gemm<T>(false, true, og, kg, n, T(1), gb + grp * og * n, n, cb + grp * kg * n, n, T(1),
                     dw_t + grp * og * kg, kg);
      }
    }
    if (db != nullptr) {
      for (int64_t o = 0; o < g.out_c; ++o) db_t[o] += cpu::Sum(gb + o * n, n);
    }
    if (dx != nullptr) {
      T* dxb = dx + b * g.in_c * g.in_plane();
      T* dcol = pointwise ? dxb : col;  // the column buffer is free again once dw has used it
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        cpu::Gemm<T>(true, false, kg, n, og, T(1), w + grp * og * kg, kg, gb + grp * og * n, n,
                     T(0), dcol + grp * kg * n, n);
      }
      if (!pointwise) {
        std::fill(dxb, dxb + g.in_c * g.in_plane(), T(0));
        Col2Im(dcol, g, dxb);
      }
    }
  });
  for (int t = 1; t < nt; ++t) {
    const T* part = base + t * per_thread + col_elems;
    if (dw != nullptr) cpu::Accumulate(dw, part, dw_elems);
    if (db != nullptr) cpu::Accumulate(db, part + dw_elems, db_elems);
  }
}

// The recorded op over 4-D views: x4 [B, C, H, W], w4 [O, C/G, KH, KW], bias [O] or undefined.
Tensor ConvCore(const char* op, const Tensor& x4, const Tensor& w4, const Tensor& bias,
                const ConvGeom& g) {
  Tensor xc = x4.Detach().Contiguous();
  Tensor wc = w4.Detach().Contiguous();
  Tensor bc = bias.defined() ? bias.Detach().Contiguous() : Tensor();
  const DType dtype = x4.dtype();
  Tensor y = Tensor::Empty(Shape{g.batch, g.out_c, g.out_h, g.out_w}, dtype);
  if (y.numel() > 0) {
    DispatchFloat(dtype, op, [&](auto tag) {
      using T = decltype(tag);
      ConvForwardKernel<T>(g, xc.data<T>(), wc.data<T>(),
                           bc.defined() ? bc.template data<T>() : nullptr, y.data<T>(), dtype);
    });
  }
  if (!GradMode::enabled() || !AnyRequiresGrad({&x4, &w4, &bias})) return y;
  const bool rx = x4.requires_grad(), rw = w4.requires_grad();
  const bool rb = bias.defined() && bias.requires_grad();
  // Only what backward reads is kept: x for the weight's gradient, w for the input's.
  Tensor saved_x = rw ? xc : Tensor(), saved_w = rx ? wc : Tensor();
  const Shape x_shape = x4.shape(), w_shape = w4.shape();
  RecordOp(op, y, {&x4, &w4, &bias},
           [saved_x, saved_w, g, rx, rw, rb, x_shape, w_shape, dtype, op](const Tensor& gy_in) {
             Tensor gy = gy_in.Contiguous();
             Tensor dx = rx ? Tensor::Empty(x_shape, dtype) : Tensor();
             Tensor dw = rw ? Tensor::Zeros(w_shape, dtype) : Tensor();
             Tensor db = rb ? Tensor::Zeros(Shape{g.out_c}, dtype) : Tensor();
             if (gy.numel() > 0) {
               DispatchFloat(dtype, op, [&](auto tag) {
                 using T = decltype(tag);
                 ConvBackwardKernel<T>(g, rw ? saved_x.template data<T>() : nullptr,
                                       rx ? saved_w.template data<T>() : nullptr, gy.data<T>(),
                                       rx ? dx.template data<T>() : nullptr,
                                       rw ? dw.template data<T>() : nullptr,
                                       rb ? db.template data<T>() : nullptr, dtype);
               });
             }
             return std::vector<Tensor>{dx, dw, db};
           });
  return y;
}

// Validates a convolution's arguments and computes its geometry. x4 and w4 are the 4-D views
// (height 1 for 1-D); x and weight are what the caller passed, for the messages.
ConvGeom MakeGeom(const char* op, int spatial, const Tensor& x, const Tensor& weight,
                  const Tensor& bias, const Tensor& x4, const Tensor& w4, Size2 stride,
                  Size2 padding, Size2 dilation, int64_t groups) {
  CheckStrideAndPadding(op, spatial, stride, padding);
  ATTEND_CHECK(dilation.h >= 1 && dilation.w >= 1, op, ": dilation must be positive, got ",
               Fmt(dilation, spatial));
  ATTEND_CHECK(groups >= 1, op, ": groups must be positive, got ", groups);
  ConvGeom g{.batch = x4.size(0),
             .in_c = x4.size(1),
             .in_h = x4.size(2),
             .in_w = x4.size(3),
             .out_c = w4.size(0),
             .groups = groups,
             .k_h = w4.size(2),
             .k_w = w4.size(3),
             .stride_h = stride.h,
             .stride_w = stride.w,
             .pad_h = padding.h,
             .pad_w = padding.w,
             .dil_h = dilation.h,
             .dil_w = dilation.w};
  ATTEND_CHECK(g.out_c > 0 && w4.size(1) > 0 && g.k_h > 0 && g.k_w > 0, op, ": weight ",
               weight.str(), " has an empty dim");
  ATTEND_CHECK(g.in_c % groups == 0, op, ": input ", x.str(), " has ", g.in_c,
               " channels, not divisible by groups ", groups);
  ATTEND_CHECK(g.out_c % groups == 0, op, ": weight ", weight.str(), " has ", g.out_c,
               " output channels, not divisible by groups ", groups);
  ATTEND_CHECK(w4.size(1) * groups == g.in_c, op, ": input ", x.str(), " has ", g.in_c,
               " channels, but weight ", weight.str(), " expects ", w4.size(1) * groups, " (",
               w4.size(1), " per group x ", groups, groups == 1 ? " group)" : " groups)");
  if (bias.defined()) {
    ATTEND_CHECK(bias.dim() == 1 && bias.size(0) == g.out_c, op, ": bias ", bias.str(),
                 " must be [", g.out_c, "], one per output channel of weight ", weight.str());
  }
  const int64_t span_h = dilation.h * (g.k_h - 1) + 1, span_w = dilation.w * (g.k_w - 1) + 1;
  const int64_t padded_h = g.in_h + 2 * padding.h, padded_w = g.in_w + 2 * padding.w;
  ATTEND_CHECK(span_h <= padded_h && span_w <= padded_w, op, ": kernel ",
               Fmt(Size2{g.k_h, g.k_w}, spatial), " with dilation ", Fmt(dilation, spatial),
               " spans ", Fmt(Size2{span_h, span_w}, spatial), ", larger than the padded input ",
               Fmt(Size2{padded_h, padded_w}, spatial), " (input ", x.str(), ", padding ",
               Fmt(padding, spatial), ")");
  g.out_h = (padded_h - span_h) / stride.h + 1;
  g.out_w = (padded_w - span_w) / stride.w + 1;
  return g;
}

void CheckConvTensors(const char* op, int spatial, const Tensor& x, const Tensor& weight,
                      const Tensor& bias) {
  CheckFloating(x, op);
  ATTEND_CHECK(weight.defined(), op, ": weight is undefined");
  CheckFloating(weight, op);
  CheckSameDType(x, weight, op);
  if (bias.defined()) {
    CheckFloating(bias, op);
    CheckSameDType(x, bias, op);
  }
  const char* layout =
      spatial == 1 ? "[B, C, L] or unbatched [C, L]" : "[B, C, H, W] or unbatched [C, H, W]";
  ATTEND_CHECK(x.dim() == spatial + 1 || x.dim() == spatial + 2, op, ": input must be ", layout,
               ", got ", x.str());
  ATTEND_CHECK(weight.dim() == spatial + 2, op, ": weight must be ",
               spatial == 1 ? "[C_out, C_in / groups, K]" : "[C_out, C_in / groups, KH, KW]",
               ", got ", weight.str());
}

}  // namespace

Tensor Conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding, int64_t dilation, int64_t groups) {
  const char* op = "Conv1d";
  CheckConvTensors(op, 1, x, weight, bias);
  const bool unbatched = x.dim() == 2;
  // Height-1 views: [B, C, 1, L] and [O, C/G, 1, K].
  Tensor x4 = (unbatched ? x.Unsqueeze(0) : x).Unsqueeze(2);
  Tensor w4 = weight.Unsqueeze(2);
  ConvGeom g = MakeGeom(op, 1, x, weight, bias, x4, w4, Size2{1, stride}, Size2{0, padding},
                        Size2{1, dilation}, groups);
  Tensor y = ConvCore(op, x4, w4, bias, g).Squeeze(2);  // [B, O, L_out]
  return unbatched ? y.Squeeze(0) : y;
}

Tensor Conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
              Size2 padding, Size2 dilation, int64_t groups) {
  const char* op = "Conv2d";
  CheckConvTensors(op, 2, x, weight, bias);
  const bool unbatched = x.dim() == 3;
  Tensor x4 = unbatched ? x.Unsqueeze(0) : x;
  ConvGeom g = MakeGeom(op, 2, x, weight, bias, x4, weight, stride, padding, dilation, groups);
  Tensor y = ConvCore(op, x4, weight, bias, g);  // [B, O, H_out, W_out]
  return unbatched ? y.Squeeze(0) : y;
}

}  // namespace attend
