// Cross-entropy over logits, fused: log-sum-exp per row forward, softmax minus target backward.
#include <cmath>
#include <limits>

#include "backend/cpu/dispatch.h"
#include "ops/op_helpers.h"

namespace attend {

Tensor CrossEntropy(const Tensor& logits_in, const Tensor& target_in, int64_t ignore_index,
                    double label_smoothing, Reduction reduction) {
  CheckFloating(logits_in, "CrossEntropy");
  CheckDefined(target_in, "CrossEntropy");
  ATTEND_CHECK(target_in.dtype() == DType::kI64, "CrossEntropy: targets must be i64, got ",
               target_in.str());
  ATTEND_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
               "CrossEntropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  const bool single = logits_in.dim() == 1;
  ATTEND_CHECK(logits_in.dim() == 2 || single, "CrossEntropy: logits must be [N, C] or [C], got ",
               logits_in.str());
  Tensor logits = single ? logits_in.Unsqueeze(0) : logits_in;
  Tensor target = target_in.Reshape(Shape{target_in.numel()}).Contiguous();
  const int64_t rows = logits.shape()[0], c = logits.shape()[1];
  ATTEND_CHECK(target.numel() == rows && target_in.dim() == (single ? 0 : 1),
               "CrossEntropy: targets ", target_in.str(), " do not match logits ", logits_in.str(),
               " (expected ", single ? "a scalar" : "[N]", ")");
  ATTEND_CHECK(c > 0, "CrossEntropy: no classes in ", logits_in.str());
  const int64_t* pt = target.data<int64_t>();
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (pt[r] == ignore_index) continue;
    ATTEND_CHECK(pt[r] >= 0 && pt[r] < c, "CrossEntropy: target ", pt[r], " at position ", r,
                 " is out of range for ", c, " classes");
    ++count;
  }
  Tensor x = logits.Detach().Contiguous();
  Tensor lse = Tensor::Empty(Shape{rows}, x.dtype());
  Tensor per_row = Tensor::Empty(Shape{rows}, x.dtype());
  const double eps = label_smoothing;
  DispatchFloat(x.dtype(), "CrossEntropy", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* pl = lse.data<T>();
    T* pr = per_row.data<T>();
    ParallelRange(rows, std::max<int64_t>(2, (1 << 13) / c), [&](int64_t s, int64_t e) {
      for (int64_t r = s; r < e; ++r) {
        const T* row = px + r * c;
        T l, sum_x;
        l = cpu::LogSumExpRow(row, c);
        sum_x = cpu::Sum(row, c);
        pl[r] = l;
        if (pt[r] == ignore_index) {
          pr[r] = T(0);
          continue;
        }
        T nll = l - row[pt[r]];
        T smooth = l - sum_x / static_cast<T>(c);
        pr[r] = static_cast<T>((1.0 - eps) * nll + eps * smooth);
      }
    });
  });
  Tensor out;
  if (reduction == Reduction::kNone) out = single ? per_row.View(Shape{}) : per_row;
  else {
    NoGradGuard ng;
    out = Sum(per_row);
    if (reduction == Reduction::kMean)
      out = MulScalar(out, count == 0 ? std::numeric_limits<double>::quiet_NaN() : 1.0 / count);
  }
  if (!GradMode::enabled() || !logits_in.requires_grad()) return out;
  RecordOp("CrossEntropy", out, {&logits}, [=](const Tensor& g_in) {
    const int64_t* pt = target.data<int64_t>();  // the closure owns `target`
    Tensor g = g_in.Contiguous();
    // The gradient overwrites the logits when only this closure holds them and they are freed
    // after it: a [tokens, vocabulary] buffer less, and rows written where they were just read
    // (a fresh buffer's lines are read from memory before they are written). Each element is read
    // before it is written, by the same thread (ExpAffineRow is elementwise).
    const bool in_place = SavedTensorsFreedAfterThis() && x.impl_ptr().use_count() == 1 &&
                          x.impl()->storage.use_count() == 1;
    Tensor dx = in_place ? x : Tensor::Empty(x.shape(), x.dtype());
    DispatchFloat(x.dtype(), "CrossEntropy backward", [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      const T* pl = lse.data<T>();
      const T* pg = g.data<T>();
      T* pd = dx.data<T>();
      const T off = static_cast<T>(eps / c), on = static_cast<T>(1.0 - eps);
      const T mean_scale = reduction == Reduction::kMean
                               ? (count == 0 ? std::numeric_limits<T>::quiet_NaN() : T(1) / count)
                               : T(1);
      ParallelRange(rows, std::max<int64_t>(2, (1 << 13) / c), [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
          T* d = pd + r * c;
          if (pt[r] == ignore_index) {
            for (int64_t j = 0; j < c; ++j) d[j] = T(0);
            continue;
          }
          const T scale = (reduction == Reduction::kNone ? pg[r] : pg[0]) * mean_scale;
          const T* row = px + r * c;
          // d loss / d x_j = softmax_j - (1 - eps) [j == t] - eps / C
          cpu::ExpAffineRow(row, pl[r], scale, off, d, c);
          d[pt[r]] -= scale * on;
        }
      });
    });
    return std::vector<Tensor>{dx};
  });
  return out;
}

}  // namespace attend
