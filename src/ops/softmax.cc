// Softmax and log-softmax over any dim (with masks), layer norm, and dropout.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backend/cpu/dispatch.h"
#include "backend/cpu/reference/dropout_kernels.h"
#include "backend/cpu/simd/dropout_kernels.h"
#include "ops/op_helpers.h"

namespace attend {

namespace {

// Rows of the last dim: y = softmax(x) or log_softmax(x). x contiguous.
Tensor SoftmaxRows(const Tensor& x, bool log) {
  Tensor y = Tensor::Empty(x.shape(), x.dtype());
  const int64_t n = x.dim() == 0 ? 1 : x.shape()[x.dim() - 1];
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  DispatchFloat(x.dtype(), log ? "LogSoftmax" : "Softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    ParallelRange(rows, std::max<int64_t>(2, (1 << 13) / std::max<int64_t>(n, 1)),
                  [&](int64_t s, int64_t e) {
                    for (int64_t r = s; r < e; ++r) {
                      cpu::SoftmaxRow(px + r * n, py + r * n, n, log);
                    }
                  });
  });
  return y;
}

Tensor SoftmaxGradRows(const Tensor& y, const Tensor& g, bool log) {
  Tensor dx = Tensor::Empty(y.shape(), y.dtype());
  const int64_t n = y.dim() == 0 ? 1 : y.shape()[y.dim() - 1];
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  DispatchFloat(y.dtype(), "Softmax backward", [&](auto tag) {
    using T = decltype(tag);
    const T* py = y.data<T>();
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
    ParallelRange(rows, std::max<int64_t>(2, (1 << 13) / std::max<int64_t>(n, 1)),
                  [&](int64_t s, int64_t e) {
                    for (int64_t r = s; r < e; ++r) {
                      cpu::SoftmaxGradRow(py + r * n, pg + r * n, pd + r * n, n, log);
                    }
                  });
  });
  return dx;
}

Tensor SoftmaxImpl(const Tensor& a, int dim, const Tensor& mask, bool log) {
  const char* op = log ? "LogSoftmax" : "Softmax";
  CheckFloating(a, op);
  const int nd = a.dim();
  dim = WrapDim(dim, a.shape(), op);
  Tensor x = a;
  if (mask.defined()) {
    ATTEND_CHECK(mask.dtype() == DType::kBool, op, ": mask must be bool, got ", mask.str());
    Shape b = BroadcastShapes(a.shape(), mask.shape(), op);
    ATTEND_CHECK(b == a.shape(), op, ": mask ", mask.shape().str(),
                 " does not broadcast to the input ", a.shape().str());
    x = MaskedFill(a, mask, -std::numeric_limits<double>::infinity());
  }
  const bool last = nd == 0 || dim == nd - 1;
  Tensor xr = last ? x.Detach().Contiguous() : x.Detach().Transpose(dim, nd - 1).Contiguous();
  Tensor yr = SoftmaxRows(xr, log);
  Tensor out = last ? yr : yr.Transpose(dim, nd - 1);
  if (GradMode::enabled() && x.requires_grad()) {
    // The result is recorded as a fresh tensor; its view geometry is rebuilt in backward.
    out = last ? yr : yr.Transpose(dim, nd - 1);
    Tensor ys = yr.Detach();
    RecordOp(op, out, {&x}, [ys, dim, nd, last, log](const Tensor& g) {
      Tensor gr = last ? g.Contiguous() : g.Transpose(dim, nd - 1).Contiguous();
      Tensor dx = SoftmaxGradRows(ys, gr, log);
      return std::vector<Tensor>{last ? dx : dx.Transpose(dim, nd - 1)};
    });
  }
  return out;
}

}  // namespace

Tensor Softmax(const Tensor& a, int dim, const Tensor& mask) {
  return SoftmaxImpl(a, dim, mask, false);
}
Tensor LogSoftmax(const Tensor& a, int dim, const Tensor& mask) {
  return SoftmaxImpl(a, dim, mask, true);
}

Tensor LayerNorm(const Tensor& a, int normalized_dims, const Tensor& weight, const Tensor& bias,
                 double eps) {
  CheckFloating(a, "LayerNorm");
  ATTEND_CHECK(normalized_dims >= 1 && normalized_dims <= a.dim(),
               "LayerNorm: cannot normalise "
               "over the last ",
               normalized_dims, " dims of ", a.str());
  Shape norm_shape;
  for (int i = a.dim() - normalized_dims; i < a.dim(); ++i) norm_shape.push_back(a.shape()[i]);
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    ATTEND_CHECK(p->shape() == norm_shape, "LayerNorm: ", p == &weight ? "weight " : "bias ",
                 p->str(), " must have the normalised shape ", norm_shape.str(), " of input ",
                 a.str());
    CheckSameDType(a, *p, "LayerNorm");
  }
  const int64_t n = norm_shape.numel();
  ATTEND_CHECK(n > 0, "LayerNorm: empty normalised shape in ", a.str());
  const int64_t rows = a.numel() / n;
  Tensor x = a.Detach().Contiguous();
  Tensor w = weight.defined() ? weight.Detach().Contiguous() : Tensor();
  Tensor bs = bias.defined() ? bias.Detach().Contiguous() : Tensor();
  Tensor y = Tensor::Empty(a.shape(), a.dtype());
  Tensor mean = Tensor::Empty(Shape{rows}, a.dtype()), rstd = Tensor::Empty(Shape{rows}, a.dtype());
  DispatchFloat(a.dtype(), "LayerNorm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pw = w.defined() ? w.template data<T>() : nullptr;
    const T* pb = bs.defined() ? bs.template data<T>() : nullptr;
    T* py = y.data<T>();
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
    ParallelRange(rows, std::max<int64_t>(2, (1 << 13) / n), [&](int64_t s, int64_t e) {
      for (int64_t r = s; r < e; ++r) {
        cpu::LayerNormRow(px + r * n, pw, pb, py + r * n, n, static_cast<T>(eps), pm + r, pr + r);
      }
    });
  });
  if (!GradMode::enabled() || !AnyRequiresGrad({&a, &weight, &bias})) return y;
  const bool ra = a.requires_grad(), rw = weight.defined() && weight.requires_grad(),
             rb = bias.defined() && bias.requires_grad();
  RecordOp(
      "LayerNorm", y, {&a, &weight, &bias},
      [x, w, mean, rstd, n, rows, ra, rw, rb, norm_shape](const Tensor& g_in) {
        Tensor g = g_in.Contiguous();
        Tensor dx = Tensor::Empty(x.shape(), x.dtype());
        Tensor dw = rw ? Tensor::Zeros(norm_shape, x.dtype()) : Tensor();
        Tensor db = rb ? Tensor::Zeros(norm_shape, x.dtype()) : Tensor();
        DispatchFloat(x.dtype(), "LayerNorm backward", [&](auto tag) {
          using T = decltype(tag);
          const T* px = x.data<T>();
          const T* pg = g.data<T>();
          const T* pw = w.defined() ? w.template data<T>() : nullptr;
          const T* pm = mean.data<T>();
          const T* pr = rstd.data<T>();
          T* pd = dx.data<T>();
          // Each thread sums dgamma/dbeta over its rows into its own buffer; the buffers are
          // added at the end, so the result does not depend on scheduling.
          const int nt = rows * n >= (1 << 14) ? GetNumThreads() : 1;
          std::vector<T> partial(static_cast<size_t>(nt) * 2 * n, T(0));
#pragma omp parallel num_threads(nt)
          {
            int t = omp_get_thread_num(), ntr = omp_get_num_threads();
            int64_t s = rows * t / ntr, e = rows * (t + 1) / ntr;
            T* pgw = rw ? partial.data() + static_cast<size_t>(t) * 2 * n : nullptr;
            T* pgb = rb ? partial.data() + static_cast<size_t>(t) * 2 * n + n : nullptr;
            for (int64_t r = s; r < e; ++r) {
              cpu::LayerNormGradRow(px + r * n, pg + r * n, pw, pm[r], pr[r], pd + r * n, pgw, pgb,
                                    n);
            }
          }
          for (int t = 0; t < nt; ++t) {
            if (rw)
              cpu::Accumulate(dw.data<T>(), partial.data() + static_cast<size_t>(t) * 2 * n, n);
            if (rb)
              cpu::Accumulate(db.data<T>(), partial.data() + static_cast<size_t>(t) * 2 * n + n, n);
          }
        });
        return std::vector<Tensor>{ra ? dx : Tensor(), dw, db};
      });
  return y;
}

Tensor Dropout(const Tensor& a, double p, bool training, Generator& gen) {
  CheckFloating(a, "Dropout");
  ATTEND_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0.0) return a;
  const int64_t n = a.numel();
  const uint64_t seed = gen.seed(), base = gen.Reserve(n);
  Tensor x = a.Detach().Contiguous();
  Tensor scale = Tensor::Empty(a.shape(), a.dtype());  // 0 or 1/(1-p) per element
  Tensor out = Tensor::Empty(a.shape(), a.dtype());
  // Counter-based: element i always draws counter base + i, whatever the threads, and is kept
  // when that draw, Generator::UniformD, is at least p (tested on the integer draw).
  const uint64_t threshold = cpu::ref::DropoutThreshold(p);
  DispatchFloat(a.dtype(), "Dropout", [&](auto tag) {
    using T = decltype(tag);
    const T keep_scale = p >= 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    const T* px = x.data<T>();
    T* ps = scale.data<T>();
    T* po = out.data<T>();
    ParallelRange(n, 1 << 14, [&](int64_t s, int64_t e) {
      const uint64_t first = base + static_cast<uint64_t>(s);
      if constexpr (std::is_same_v<T, float>)
        cpu::simd::Dropout(seed, first, threshold, keep_scale, px + s, ps + s, po + s, e - s);
      else cpu::ref::Dropout(seed, first, threshold, keep_scale, px + s, ps + s, po + s, e - s);
    });
  });
  RecordOp("Dropout", out, {&a},
           [scale](const Tensor& g) { return std::vector<Tensor>{Mul(g, scale)}; });
  return out;
}

}  // namespace attend
