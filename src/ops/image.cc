// CropZoom (bilinear sampling of a square box, with its backward w.r.t. the image and the box)
// and BoxcarMask (RA-CNN's smooth mask, composed from elementwise ops). Coordinates and formulas
// are in attend/ops/image.h.
//
// The sampling grid is axis-aligned, so every sample position splits into a column position that
// depends on the output column alone and a row position that depends on the output row alone:
// both are computed once per image (in double, whatever the dtype: positions up to ~100 pixels
// keep 1e-14 of precision, so the f32 path rounds only the interpolation itself), and the planes
// of all images and channels then run independently.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attend/ops/image.h"
#include "ops/op_helpers.h"

namespace attend {

namespace {

// One output column's (or row's) sample along an input axis of `size` pixels: the pixel centres
// lo and lo + 1 around the position, their weights, whether each lies inside the image, and the
// derivative of the position w.r.t. the half side t_l (the grid coordinate in [-1, 1]).
template <typename T>
struct Tap {
  int64_t lo = 0;
  T w_lo = 0, w_hi = 0;
  bool lo_in = false, hi_in = false;
  double grid = 0;
};

// The taps of `out` samples spanning [centre - half, centre + half] over an axis of `size`
// pixels. Pixel p's centre is at p + 0.5, so a position u sits at index u - 0.5 between centres.
template <typename T>
void MakeTaps(double centre, double half, int64_t size, int64_t out, Tap<T>* taps) {
  for (int64_t o = 0; o < out; ++o) {
    Tap<T>& t = taps[o];
    t.grid = (2.0 * static_cast<double>(o) + 1.0) / static_cast<double>(out) - 1.0;
    const double pos = centre + half * t.grid - 0.5;
    // Beyond [-1, size) neither neighbour is inside (and NaN or inf touches nothing).
    if (!(pos >= -1.0 && pos < static_cast<double>(size))) {
      t.lo = 0;
      t.w_lo = t.w_hi = 0;
      t.lo_in = t.hi_in = false;
      continue;
    }
    const double lo = std::floor(pos);
    const double frac = pos - lo;
    t.lo = static_cast<int64_t>(lo);
    t.w_hi = static_cast<T>(frac);
    t.w_lo = static_cast<T>(1.0 - frac);
    t.lo_in = t.lo >= 0;
    t.hi_in = t.lo + 1 < size;
  }
}

// The sampling geometry of one call: taps per image, rows then columns.
struct ZoomGeom {
  int64_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t in_plane() const { return in_h * in_w; }
  int64_t out_plane() const { return out_h * out_w; }
  int64_t planes() const { return batch * channels; }
};

template <typename T>
struct Taps {
  std::vector<Tap<T>> rows, cols;  // [B * out_h], [B * out_w]
};

template <typename T>
Taps<T> MakeAllTaps(const ZoomGeom& g, const T* boxes) {
  Taps<T> taps;
  taps.rows.resize(static_cast<size_t>(g.batch * g.out_h));
  taps.cols.resize(static_cast<size_t>(g.batch * g.out_w));
  for (int64_t b = 0; b < g.batch; ++b) {
    const double tx = boxes[3 * b], ty = boxes[3 * b + 1], tl = boxes[3 * b + 2];
    MakeTaps(tx, tl, g.in_w, g.out_w, taps.cols.data() + b * g.out_w);
    MakeTaps(ty, tl, g.in_h, g.out_h, taps.rows.data() + b * g.out_h);
  }
  return taps;
}

// The four neighbours of one sample (zero outside the image).
template <typename T>
struct Corners {
  T v00, v01, v10, v11;  // (row lo, col lo), (lo, hi), (hi, lo), (hi, hi)
};

template <typename T>
Corners<T> Neighbours(const T* plane, int64_t in_w, const Tap<T>& ry, const Tap<T>& cx) {
  Corners<T> c{T(0), T(0), T(0), T(0)};
  if (ry.lo_in) {
    const T* r0 = plane + ry.lo * in_w;
    if (cx.lo_in) c.v00 = r0[cx.lo];
    if (cx.hi_in) c.v01 = r0[cx.lo + 1];
  }
  if (ry.hi_in) {
    const T* r1 = plane + (ry.lo + 1) * in_w;
    if (cx.lo_in) c.v10 = r1[cx.lo];
    if (cx.hi_in) c.v11 = r1[cx.lo + 1];
  }
  return c;
}

// Runs fn(first, last) over ranges of planes, threaded when there is enough work.
template <typename Fn>
void ForPlanes(const ZoomGeom& g, Fn&& fn) {
  const int64_t per_plane = std::max<int64_t>(1, g.out_plane() * 8);
  ParallelRange(g.planes(), std::max<int64_t>(2, (int64_t{1} << 15) / per_plane), fn);
}

template <typename T>
void ZoomForward(const ZoomGeom& g, const Taps<T>& taps, const T* x, T* y) {
  ForPlanes(g, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      const int64_t b = p / g.channels;
      const T* plane = x + p * g.in_plane();
      T* out = y + p * g.out_plane();
      const Tap<T>* rows = taps.rows.data() + b * g.out_h;
      const Tap<T>* cols = taps.cols.data() + b * g.out_w;
      for (int64_t i = 0; i < g.out_h; ++i) {
        const Tap<T>& ry = rows[i];
        for (int64_t j = 0; j < g.out_w; ++j) {
          const Tap<T>& cx = cols[j];
          const Corners<T> c = Neighbours(plane, g.in_w, ry, cx);
          out[i * g.out_w + j] = ry.w_lo * (cx.w_lo * c.v00 + cx.w_hi * c.v01) +
                                 ry.w_hi * (cx.w_lo * c.v10 + cx.w_hi * c.v11);
        }
      }
    }
  });
}

// dx: every sample's gradient shared out to its four neighbours (dx must come zeroed).
template <typename T>
void ZoomGradInput(const ZoomGeom& g, const Taps<T>& taps, const T* gy, T* dx) {
  ForPlanes(g, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      const int64_t b = p / g.channels;
      T* plane = dx + p * g.in_plane();
      const T* go = gy + p * g.out_plane();
      const Tap<T>* rows = taps.rows.data() + b * g.out_h;
      const Tap<T>* cols = taps.cols.data() + b * g.out_w;
      for (int64_t i = 0; i < g.out_h; ++i) {
        const Tap<T>& ry = rows[i];
        // Rows outside the image are never touched (nor pointed at).
        T* r0 = ry.lo_in ? plane + ry.lo * g.in_w : nullptr;
        T* r1 = ry.hi_in ? plane + (ry.lo + 1) * g.in_w : nullptr;
        for (int64_t j = 0; j < g.out_w; ++j) {
          const Tap<T>& cx = cols[j];
          const T gv = go[i * g.out_w + j];
          if (ry.lo_in) {
            const T gr = ry.w_lo * gv;
            if (cx.lo_in) r0[cx.lo] += cx.w_lo * gr;
            if (cx.hi_in) r0[cx.lo + 1] += cx.w_hi * gr;
          }
          if (ry.hi_in) {
            const T gr = ry.w_hi * gv;
            if (cx.lo_in) r1[cx.lo] += cx.w_lo * gr;
            if (cx.hi_in) r1[cx.lo + 1] += cx.w_hi * gr;
          }
        }
      }
    }
  });
}

// dboxes: per plane, the sums of gy times the slope of the interpolation along x and along y,
// plain and weighted by the grid coordinates (the positions' derivatives w.r.t. t_l), added up
// in double; then the planes of each image in channel order (deterministic under threads).
template <typename T>
void ZoomGradBoxes(const ZoomGeom& g, const Taps<T>& taps, const T* x, const T* gy, T* dboxes) {
  // Per plane: sum gy * d/dx, sum gy * d/dy, sum gy * (d/dx * grid_x + d/dy * grid_y).
  std::vector<double> partial(static_cast<size_t>(g.planes() * 3), 0.0);
  ForPlanes(g, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      const int64_t b = p / g.channels;
      const T* plane = x + p * g.in_plane();
      const T* go = gy + p * g.out_plane();
      const Tap<T>* rows = taps.rows.data() + b * g.out_h;
      const Tap<T>* cols = taps.cols.data() + b * g.out_w;
      double sx = 0, sy = 0, sl = 0;
      for (int64_t i = 0; i < g.out_h; ++i) {
        const Tap<T>& ry = rows[i];
        double row_x = 0, row_y = 0, row_xl = 0;
        for (int64_t j = 0; j < g.out_w; ++j) {
          const Tap<T>& cx = cols[j];
          const T gv = go[i * g.out_w + j];
          if (gv == T(0)) continue;
          const Corners<T> c = Neighbours(plane, g.in_w, ry, cx);
          const T d_dx = ry.w_lo * (c.v01 - c.v00) + ry.w_hi * (c.v11 - c.v10);
          const T d_dy = cx.w_lo * (c.v10 - c.v00) + cx.w_hi * (c.v11 - c.v01);
          const double gx = static_cast<double>(gv * d_dx), gyy = static_cast<double>(gv * d_dy);
          row_x += gx;
          row_y += gyy;
          row_xl += gx * cx.grid;
        }
        sx += row_x;
        sy += row_y;
        sl += row_xl + row_y * ry.grid;
      }
      partial[3 * p] = sx;
      partial[3 * p + 1] = sy;
      partial[3 * p + 2] = sl;
    }
  });
  for (int64_t b = 0; b < g.batch; ++b) {
    double s[3] = {0, 0, 0};
    for (int64_t c = 0; c < g.channels; ++c)
      for (int k = 0; k < 3; ++k) s[k] += partial[3 * (b * g.channels + c) + k];
    for (int k = 0; k < 3; ++k) dboxes[3 * b + k] = static_cast<T>(s[k]);
  }
}

}  // namespace

Tensor CropZoom(const Tensor& x, const Tensor& boxes, int64_t out_h, int64_t out_w) {
  const char* op = "CropZoom";
  CheckFloating(x, op);
  CheckFloating(boxes, op);
  ATTEND_CHECK(x.dim() == 4, op, ": input must be [B, C, H, W], got ", x.str());
  ATTEND_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": input ", x.str(), " has an empty image");
  ATTEND_CHECK(boxes.dim() == 2 && boxes.size(0) == x.size(0) && boxes.size(1) == 3, op,
               ": boxes must be [B, 3] = (centre x, centre y, half side) per image of input ",
               x.str(), ", got ", boxes.str());
  CheckSameDType(x, boxes, op);
  ATTEND_CHECK(out_h >= 1 && out_w >= 1, op, ": output size must be positive, got ", out_h, " x ",
               out_w);
  const ZoomGeom g{.batch = x.size(0),
                   .channels = x.size(1),
                   .in_h = x.size(2),
                   .in_w = x.size(3),
                   .out_h = out_h,
                   .out_w = out_w};
  Tensor xc = x.Detach().Contiguous();
  Tensor bc = boxes.Detach().Contiguous();
  const DType dtype = x.dtype();
  Tensor y = Tensor::Empty(Shape{g.batch, g.channels, out_h, out_w}, dtype);
  DispatchFloat(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const Taps<T> taps = MakeAllTaps(g, bc.data<T>());
    ZoomForward(g, taps, xc.data<T>(), y.data<T>());
  });
  if (!GradMode::enabled() || !AnyRequiresGrad({&x, &boxes})) return y;
  const bool rx = x.requires_grad(), rb = boxes.requires_grad();
  Tensor saved_x = rb ? xc : Tensor();  // the box's gradient reads the image
  RecordOp(op, y, {&x, &boxes}, [g, bc, saved_x, rx, rb, dtype, op](const Tensor& gy_in) {
    Tensor gy = gy_in.Contiguous();
    Tensor dx = rx ? Tensor::Zeros(Shape{g.batch, g.channels, g.in_h, g.in_w}, dtype) : Tensor();
    Tensor db = rb ? Tensor::Empty(Shape{g.batch, 3}, dtype) : Tensor();
    DispatchFloat(dtype, op, [&](auto tag) {
      using T = decltype(tag);
      const Taps<T> taps = MakeAllTaps(g, bc.data<T>());
      if (rx) ZoomGradInput(g, taps, gy.data<T>(), dx.data<T>());
      if (rb) ZoomGradBoxes(g, taps, saved_x.data<T>(), gy.data<T>(), db.data<T>());
    });
    return std::vector<Tensor>{dx, db};
  });
  return y;
}

Tensor BoxcarMask(const Tensor& boxes, int64_t h, int64_t w, double k) {
  const char* op = "BoxcarMask";
  CheckFloating(boxes, op);
  ATTEND_CHECK(boxes.dim() == 2 && boxes.size(1) == 3, op,
               ": boxes must be [B, 3] = (centre x, centre y, half side), got ", boxes.str());
  ATTEND_CHECK(h >= 1 && w >= 1, op, ": mask size must be positive, got ", h, " x ", w);
  ATTEND_CHECK(std::isfinite(k) && k > 0, op, ": sharpness k must be positive and finite, got ", k);
  const DType dtype = boxes.dtype();
  const int64_t batch = boxes.size(0);
  Tensor tx = boxes.Narrow(1, 0, 1), ty = boxes.Narrow(1, 1, 1), tl = boxes.Narrow(1, 2, 1);
  // One axis: s(k (c - lo)) - s(k (c - hi)) over the pixel centres c = p + 0.5: [B, n].
  auto axis = [&](const Tensor& centre, int64_t n) {
    Tensor c = AddScalar(Tensor::Arange(n, dtype), 0.5).View(Shape{1, n});
    Tensor lo = Sub(centre, tl), hi = Add(centre, tl);  // [B, 1]
    return Sub(Sigmoid(MulScalar(Sub(c, lo), k)), Sigmoid(MulScalar(Sub(c, hi), k)));
  };
  Tensor mx = axis(tx, w).View(Shape{batch, 1, 1, w});
  Tensor my = axis(ty, h).View(Shape{batch, 1, h, 1});
  return Mul(my, mx);
}

}  // namespace attend
