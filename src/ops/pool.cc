// Max, average and adaptive average pooling over the last two dims of [..., H, W] (1-D pooling
// runs as height 1), each plane on its own, and global average pooling. The common 2x2 / stride
// 2 max pool runs the row kernels of backend/cpu (Highway for f32, the scalar reference for f64).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "attend/ops/conv.h"
#include "backend/cpu/dispatch.h"
#include "ops/op_helpers.h"
#include "ops/window_args.h"

namespace attend {

namespace {

// Sizes of one pooling over `planes` planes of [in_h, in_w].
struct PoolGeom {
  int64_t planes = 0, in_h = 0, in_w = 0;
  int64_t k_h = 1, k_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t in_plane() const { return in_h * in_w; }
  int64_t out_plane() const { return out_h * out_w; }
};

// Checks x's rank: [B, C, <spatial dims>] or unbatched [C, <spatial dims>].
void CheckPoolInput(const char* op, int spatial, const Tensor& x) {
  CheckFloating(x, op);
  const char* layout =
      spatial == 1 ? "[B, C, L] or unbatched [C, L]" : "[B, C, H, W] or unbatched [C, H, W]";
  ATTEND_CHECK(x.dim() == spatial + 1 || x.dim() == spatial + 2, op, ": input must be ", layout,
               ", got ", x.str());
  for (int d = x.dim() - spatial; d < x.dim(); ++d)
    ATTEND_CHECK(x.size(d) > 0, op, ": input ", x.str(), " has an empty spatial dim");
}

// Validates a pooling window over x4 [..., H, W] and computes the geometry; x is what the caller
// passed (for messages).
PoolGeom MakePoolGeom(const char* op, int spatial, const Tensor& x, const Tensor& x4, Size2 kernel,
                      Size2 stride, Size2 padding) {
  ATTEND_CHECK(kernel.h >= 1 && kernel.w >= 1, op, ": kernel size must be positive, got ",
               Fmt(kernel, spatial));
  CheckStrideAndPadding(op, spatial, stride, padding);
  // PyTorch's limit: beyond it a window could lie wholly in the padding.
  ATTEND_CHECK(2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, op, ": padding ",
               Fmt(padding, spatial), " must be at most half the kernel ", Fmt(kernel, spatial));
  const int nd = x4.dim();
  PoolGeom g{.in_h = x4.size(nd - 2),
             .in_w = x4.size(nd - 1),
             .k_h = kernel.h,
             .k_w = kernel.w,
             .stride_h = stride.h,
             .stride_w = stride.w,
             .pad_h = padding.h,
             .pad_w = padding.w};
  g.planes = g.in_plane() == 0 ? 0 : x4.numel() / g.in_plane();
  const int64_t padded_h = g.in_h + 2 * g.pad_h, padded_w = g.in_w + 2 * g.pad_w;
  ATTEND_CHECK(kernel.h <= padded_h && kernel.w <= padded_w, op, ": kernel ", Fmt(kernel, spatial),
               " is larger than the padded input ", Fmt(Size2{padded_h, padded_w}, spatial),
               " (input ", x.str(), ", padding ", Fmt(padding, spatial), ")");
  g.out_h = (padded_h - kernel.h) / stride.h + 1;
  g.out_w = (padded_w - kernel.w) / stride.w + 1;
  return g;
}

Shape OutShape(const Tensor& x4, int64_t out_h, int64_t out_w) {
  Shape s = x4.shape();
  s[s.size() - 2] = out_h;
  s[s.size() - 1] = out_w;
  return s;
}

// Runs fn(first, last) over ranges of planes, threaded when the planes are big enough together.
template <typename Fn>
void ForPlanes(int64_t planes, int64_t elems_per_plane, Fn&& fn) {
  const int64_t per_plane = std::max<int64_t>(1, elems_per_plane);
  ParallelRange(planes, std::max<int64_t>(2, (int64_t{1} << 15) / per_plane), fn);
}

// ---- max pooling ----

using cpu::ref::TakesMax;

// One plane: y and idx (the flat in-plane position of each window's first maximum) [OH, OW].
template <typename T>
void MaxPoolPlane(const T* x, const PoolGeom& g, T* y, int64_t* idx) {
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const int64_t hs = oh * g.stride_h - g.pad_h;
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.k_h, g.in_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t ws = ow * g.stride_w - g.pad_w;
      const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(ws + g.k_w, g.in_w);
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_i = h0 * g.in_w + w0;
      for (int64_t h = h0; h < h1; ++h) {
        const T* row = x + h * g.in_w;
        for (int64_t w = w0; w < w1; ++w) {
          const bool take = TakesMax(row[w], best);
          best = take ? row[w] : best;
          best_i = take ? h * g.in_w + w : best_i;
        }
      }
      y[oh * g.out_w + ow] = best;
      idx[oh * g.out_w + ow] = best_i;
    }
  }
}

// The 2x2 / stride-2 / unpadded case: one output row from two input rows. It starts from each
// window's first element rather than from -inf, which keeps that element when it is NaN or -inf
// just as the general loop does, so the two agree everywhere.
bool IsPlain2x2(const PoolGeom& g) {
  return g.k_h == 2 && g.k_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
         g.pad_w == 0;
}

template <typename T>
void MaxPool2x2Plane(const T* x, const PoolGeom& g, T* y) {
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const T* r0 = x + 2 * oh * g.in_w;
    cpu::MaxPool2x2Row(r0, r0 + g.in_w, y + oh * g.out_w, g.out_w);
  }
}

// Its gradient, found again from x rather than from saved indices: every element of dx is
// written once (windows do not overlap; an odd last row or column gets zeros), so dx needs no
// zeroing pass and the forward stores nothing but y.
template <typename T>
void MaxPool2x2PlaneGrad(const T* x, const PoolGeom& g, const T* gy, T* dx) {
  const int64_t used_w = 2 * g.out_w;
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const T* r0 = x + 2 * oh * g.in_w;
    T* d0 = dx + 2 * oh * g.in_w;
    cpu::MaxPool2x2GradRow(r0, r0 + g.in_w, gy + oh * g.out_w, d0, d0 + g.in_w, g.out_w);
    if (used_w < g.in_w) {
      std::fill(d0 + used_w, d0 + g.in_w, T(0));
      std::fill(d0 + g.in_w + used_w, d0 + 2 * g.in_w, T(0));
    }
  }
  std::fill(dx + 2 * g.out_h * g.in_w, dx + g.in_plane(), T(0));
}

// Records the backward of a pooling that treats every plane on its own: grad(p, gy_plane,
// dx_plane) writes every element of plane p of dx [x4's shape] from that plane of gy.
template <typename PlaneGrad>
void RecordPlaneGrad(const char* op, Tensor& y, const Tensor& x4, const PoolGeom& g,
                     PlaneGrad grad) {
  if (!GradMode::enabled() || !x4.requires_grad()) return;
  RecordOp(op, y, {&x4},
           [grad, g, op, in_shape = x4.shape(), dtype = x4.dtype()](const Tensor& gy_in) {
             Tensor gy = gy_in.Contiguous();
             Tensor dx = Tensor::Empty(in_shape, dtype);
             DispatchFloat(dtype, op, [&](auto tag) {
               using T = decltype(tag);
               const T* pg = gy.data<T>();
               T* pd = dx.data<T>();
               ForPlanes(g.planes, g.in_plane(), [&](int64_t s, int64_t e) {
                 for (int64_t p = s; p < e; ++p)
                   grad(p, pg + p * g.out_plane(), pd + p * g.in_plane());
               });
             });
             return std::vector<Tensor>{dx};
           });
}

Tensor MaxPoolCore(const char* op, const Tensor& x4, const PoolGeom& g) {
  Tensor xc = x4.Detach().Contiguous();
  const DType dtype = x4.dtype();
  const Shape out_shape = OutShape(x4, g.out_h, g.out_w);
  Tensor y = Tensor::Empty(out_shape, dtype);
  const bool plain = IsPlain2x2(g);
  // The general kernel keeps the argmax of every window; the 2x2 one finds it again in backward.
  Tensor idx = plain ? Tensor() : Tensor::Empty(out_shape, DType::kI64);
  DispatchFloat(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = xc.data<T>();
    T* py = y.data<T>();
    int64_t* pi = plain ? nullptr : idx.data<int64_t>();
    ForPlanes(g.planes, g.in_plane(), [&](int64_t s, int64_t e) {
      for (int64_t p = s; p < e; ++p) {
        if (plain) {
          MaxPool2x2Plane(px + p * g.in_plane(), g, py + p * g.out_plane());
        } else {
          MaxPoolPlane(px + p * g.in_plane(), g, py + p * g.out_plane(), pi + p * g.out_plane());
        }
      }
    });
  });
  Tensor saved_x = plain ? xc : Tensor();
  RecordPlaneGrad(op, y, x4, g, [idx, saved_x, plain, g](int64_t p, const auto* gp, auto* d) {
    using T = std::remove_pointer_t<decltype(d)>;
    if (plain) {
      MaxPool2x2PlaneGrad(saved_x.data<T>() + p * g.in_plane(), g, gp, d);
      return;
    }
    std::fill(d, d + g.in_plane(), T(0));
    const int64_t* ip = idx.data<int64_t>() + p * g.out_plane();
    for (int64_t o = 0; o < g.out_plane(); ++o) d[ip[o]] += gp[o];
  });
  return y;
}

// ---- average pooling ----

// Visits every window of the plane geometry: fn(out_index, h0, h1, w0, w1, divisor) with the
// window clipped to the input and the divisor PyTorch uses.
template <typename Fn>
void ForEachAvgWindow(const PoolGeom& g, bool count_include_pad, Fn&& fn) {
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const int64_t hs = oh * g.stride_h - g.pad_h;
    const int64_t he = std::min(hs + g.k_h, g.in_h + g.pad_h);
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(he, g.in_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t ws = ow * g.stride_w - g.pad_w;
      const int64_t we = std::min(ws + g.k_w, g.in_w + g.pad_w);
      const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(we, g.in_w);
      const int64_t divisor = count_include_pad ? (he - hs) * (we - ws) : (h1 - h0) * (w1 - w0);
      fn(oh * g.out_w + ow, h0, h1, w0, w1, divisor);
    }
  }
}

// The mean over each window and its backward, for any window rule: `windows(g, fn)` calls
// fn(output index, h0, h1, w0, w1, divisor) once per output position (ForEachAvgWindow,
// ForEachAdaptiveWindow).
template <typename Windows>
Tensor WindowMeanCore(const char* op, const Tensor& x4, const PoolGeom& g, Windows windows) {
  Tensor xc = x4.Detach().Contiguous();
  const DType dtype = x4.dtype();
  Tensor y = Tensor::Empty(OutShape(x4, g.out_h, g.out_w), dtype);
  DispatchFloat(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = xc.data<T>();
    T* py = y.data<T>();
    ForPlanes(g.planes, g.in_plane(), [&](int64_t s, int64_t e) {
      for (int64_t p = s; p < e; ++p) {
        const T* xp = px + p * g.in_plane();
        T* yp = py + p * g.out_plane();
        windows(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t divisor) {
          T sum = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) sum += xp[h * g.in_w + w];
          yp[o] = sum / static_cast<T>(divisor);
        });
      }
    });
  });
  RecordPlaneGrad(op, y, x4, g, [g, windows](int64_t, const auto* gp, auto* d) {
    using T = std::remove_pointer_t<decltype(d)>;
    std::fill(d, d + g.in_plane(), T(0));
    windows(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t divisor) {
      const T share = gp[o] / static_cast<T>(divisor);
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t w = w0; w < w1; ++w) d[h * g.in_w + w] += share;
    });
  });
  return y;
}

Tensor AvgPoolCore(const char* op, const Tensor& x4, const PoolGeom& g, bool count_include_pad) {
  return WindowMeanCore(op, x4, g, [count_include_pad](const PoolGeom& geom, auto&& fn) {
    ForEachAvgWindow(geom, count_include_pad, fn);
  });
}

// ---- adaptive average pooling ----

// Input rows [AdaptiveStart(i), AdaptiveEnd(i)) feed output row i (PyTorch's formula).
int64_t AdaptiveStart(int64_t i, int64_t in, int64_t out) { return i * in / out; }
int64_t AdaptiveEnd(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <typename Fn>
void ForEachAdaptiveWindow(const PoolGeom& g, Fn&& fn) {
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const int64_t h0 = AdaptiveStart(oh, g.in_h, g.out_h), h1 = AdaptiveEnd(oh, g.in_h, g.out_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t w0 = AdaptiveStart(ow, g.in_w, g.out_w);
      const int64_t w1 = AdaptiveEnd(ow, g.in_w, g.out_w);
      fn(oh * g.out_w + ow, h0, h1, w0, w1, (h1 - h0) * (w1 - w0));
    }
  }
}

Tensor AdaptiveAvgPoolCore(const char* op, const Tensor& x4, const PoolGeom& g) {
  return WindowMeanCore(op, x4, g,
                        [](const PoolGeom& geom, auto&& fn) { ForEachAdaptiveWindow(geom, fn); });
}

}  // namespace

Tensor MaxPool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding) {
  const char* op = "MaxPool1d";
  CheckPoolInput(op, 1, x);
  Tensor x4 = x.Unsqueeze(-2);  // [..., 1, L]
  PoolGeom g = MakePoolGeom(op, 1, x, x4, Size2{1, kernel}, Size2{1, stride.value_or(kernel)},
                            Size2{0, padding});
  return MaxPoolCore(op, x4, g).Squeeze(-2);
}

Tensor MaxPool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const char* op = "MaxPool2d";
  CheckPoolInput(op, 2, x);
  PoolGeom g = MakePoolGeom(op, 2, x, x, kernel, stride.value_or(kernel), padding);
  return MaxPoolCore(op, x, g);
}

Tensor AvgPool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride, int64_t padding,
                 bool count_include_pad) {
  const char* op = "AvgPool1d";
  CheckPoolInput(op, 1, x);
  Tensor x4 = x.Unsqueeze(-2);  // [..., 1, L]
  PoolGeom g = MakePoolGeom(op, 1, x, x4, Size2{1, kernel}, Size2{1, stride.value_or(kernel)},
                            Size2{0, padding});
  return AvgPoolCore(op, x4, g, count_include_pad).Squeeze(-2);
}

Tensor AvgPool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding,
                 bool count_include_pad) {
  const char* op = "AvgPool2d";
  CheckPoolInput(op, 2, x);
  PoolGeom g = MakePoolGeom(op, 2, x, x, kernel, stride.value_or(kernel), padding);
  return AvgPoolCore(op, x, g, count_include_pad);
}

Tensor AdaptiveAvgPool2d(const Tensor& x, Size2 output_size) {
  const char* op = "AdaptiveAvgPool2d";
  CheckPoolInput(op, 2, x);
  ATTEND_CHECK(output_size.h >= 1 && output_size.w >= 1, op, ": output size must be positive, got ",
               Fmt(output_size, 2));
  PoolGeom g;
  g.in_h = x.size(-2);
  g.in_w = x.size(-1);
  g.planes = x.numel() / g.in_plane();
  g.out_h = output_size.h;
  g.out_w = output_size.w;
  return AdaptiveAvgPoolCore(op, x, g);
}

Tensor GlobalAvgPool(const Tensor& x, bool keepdim) {
  CheckFloating(x, "GlobalAvgPool");
  ATTEND_CHECK(x.dim() >= 3,
               "GlobalAvgPool: input must be [B, C, ...] with at least one "
               "spatial dim, got ",
               x.str());
  std::vector<int> dims;
  for (int d = 2; d < x.dim(); ++d) {
    ATTEND_CHECK(x.size(d) > 0, "GlobalAvgPool: input ", x.str(), " has an empty spatial dim");
    dims.push_back(d);
  }
  return Mean(x, dims, keepdim);
}

}  // namespace attend
