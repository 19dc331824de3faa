// Matmul for 1-D, 2-D and batched operands with broadcast batch dims. Operands whose last two
// dims are row- or column-major go to the BLAS as they are (transposes folded into the call).
#include <cstring>

#include "backend/cpu/gemm.h"
#include "ops/op_helpers.h"

namespace attend {

namespace {

// How a [rows, cols] matrix with strides (rs, cs) can be handed to a row-major GEMM.
bool BlasLayout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool* trans, int64_t* ld) {
  if (cs == 1 && (rows <= 1 || rs >= std::max<int64_t>(1, cols))) {
    *trans = false;
    *ld = rows <= 1 ? std::max<int64_t>(1, cols) : rs;
    return true;
  }
  if (rs == 1 && (cols <= 1 || cs >= std::max<int64_t>(1, rows))) {
    *trans = true;
    *ld = cols <= 1 ? std::max<int64_t>(1, rows) : cs;
    return true;
  }
  return false;
}

// Makes the last two dims BLAS-friendly, copying only when the strides do not allow it.
Tensor BlasReady(const Tensor& t) {
  const int nd = t.dim();
  bool tr = false;
  int64_t ld = 0;
  if (BlasLayout(t.shape()[nd - 2], t.shape()[nd - 1], t.strides()[nd - 2], t.strides()[nd - 1],
                 &tr, &ld))
    return t;
  return t.Contiguous();
}

// Strides of t's batch dims (all but the last two) broadcast against `batch`.
Shape BatchStrides(const Tensor& t, const Shape& batch) {
  Shape s;
  const int tb = t.dim() - 2, nb = batch.size();
  for (int i = 0; i < nb; ++i) {
    int j = i - (nb - tb);
    s.push_back(j < 0 || t.shape()[j] == 1 ? 0 : t.strides()[j]);
  }
  return s;
}

// Forward for operands of >= 2 dims (no autograd).
Tensor MatmulForward(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = BlasReady(a_in.Detach()), b = BlasReady(b_in.Detach());
  const int na = a.dim(), nb = b.dim();
  const int64_t m = a.shape()[na - 2], k = a.shape()[na - 1], n = b.shape()[nb - 1];
  ATTEND_CHECK(b.shape()[nb - 2] == k, "Matmul: inner dims differ: ", a_in.str(), " @ ", b_in.str(),
               " (", k, " vs ", b.shape()[nb - 2], ")");
  Shape batch_a, batch_b;
  for (int i = 0; i < na - 2; ++i) batch_a.push_back(a.shape()[i]);
  for (int i = 0; i < nb - 2; ++i) batch_b.push_back(b.shape()[i]);
  for (int i = 0; i < std::min(batch_a.size(), batch_b.size()); ++i) {
    int64_t da = batch_a[batch_a.size() - 1 - i], db = batch_b[batch_b.size() - 1 - i];
    ATTEND_CHECK(da == db || da == 1 || db == 1, "Matmul: batch dims of ", a_in.str(), " and ",
                 b_in.str(), " cannot be broadcast together (", da, " vs ", db, ")");
  }
  Shape batch = BroadcastShapes(batch_a, batch_b, "Matmul");
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::Empty(out_shape, a.dtype());
  if (out.numel() == 0) return out;

  bool ta = false, tb = false;
  int64_t lda = k, ldb = n;
  BlasLayout(m, k, a.strides()[na - 2], a.strides()[na - 1], &ta, &lda);
  BlasLayout(k, n, b.strides()[nb - 2], b.strides()[nb - 1], &tb, &ldb);

  DispatchFloat(a.dtype(), "Matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    if (k == 0) {
      std::memset(pc, 0, sizeof(T) * out.numel());
      return;
    }
    // [..., M, K] @ [K, N] with A's batch laid out as consecutive rows: one GEMM of B*M rows.
    if (nb == 2 && !ta && na > 2) {
      bool rows_contiguous = true;
      int64_t expect = a.strides()[na - 2] * m;
      for (int i = na - 3; i >= 0; --i) {
        if (a.shape()[i] != 1 && a.strides()[i] != expect) rows_contiguous = false;
        expect *= a.shape()[i];
      }
      if (rows_contiguous) {
        int64_t rows = batch.numel() * m;
        cpu::Gemm<T>(false, tb, rows, n, k, T(1), pa, lda, pb, ldb, T(0), pc, n);
        return;
      }
    }
    Shape sa = BatchStrides(a, batch), sb = BatchStrides(b, batch);
    const int64_t nbatch = batch.numel();
    auto offsets = [&](int64_t bi, int64_t* oa, int64_t* ob) {
      *oa = 0;
      *ob = 0;
      for (int d = batch.size() - 1; d >= 0; --d) {
        const int64_t i = bi % batch[d];
        bi /= batch[d];
        *oa += i * sa[d];
        *ob += i * sb[d];
      }
    };
    // Small matrices: one GEMM per thread, batches split over threads (the OpenMP build of
    // OpenBLAS runs single-threaded inside a parallel region). Large ones: OpenBLAS threads
    // each GEMM itself.
    // (A parallel region costs microseconds: tiny batches stay on the calling thread.)
    const bool split_batches =
        nbatch >= 2 && m * n * k <= (int64_t{1} << 22) && nbatch * m * n * k >= (int64_t{1} << 16);
    auto one = [&](int64_t bi) {
      int64_t oa, ob;
      offsets(bi, &oa, &ob);
      cpu::Gemm<T>(ta, tb, m, n, k, T(1), pa + oa, lda, pb + ob, ldb, T(0), pc + bi * m * n, n);
    };
    // Not an `if` clause: a team of one is still a parallel region, and OpenBLAS would then
    // refuse to thread a large GEMM.
    if (split_batches) {
#pragma omp parallel for schedule(static)
      for (int64_t bi = 0; bi < nbatch; ++bi) one(bi);
    } else {
      for (int64_t bi = 0; bi < nbatch; ++bi) one(bi);
    }
  });
  return out;
}

// Gradient of B in C = A @ B when B is 2-D and A is batched: one GEMM over all rows of A.
Tensor GradOfMatrixB(const Tensor& a, const Tensor& g) {
  const int na = a.dim();
  Tensor a2 = a.Reshape(Shape{-1, a.shape()[na - 1]});
  Tensor g2 = g.Reshape(Shape{-1, g.shape()[g.dim() - 1]});
  return MatmulForward(a2.Transpose(0, 1), g2);
}

Tensor Matmul2D(const Tensor& a, const Tensor& b) {
  Tensor out = MatmulForward(a, b);
  if (!GradMode::enabled() || !AnyRequiresGrad({&a, &b})) return out;
  const bool ra = a.requires_grad(), rb = b.requires_grad();
  Tensor da = rb ? a.Detach() : Tensor(), db = ra ? b.Detach() : Tensor();
  const Shape sa = a.shape(), sb = b.shape();
  RecordOp("Matmul", out, {&a, &b}, [=](const Tensor& g) {
    Tensor ga, gb;
    if (ra) ga = SumTo(MatmulForward(g, db.Transpose(-1, -2)), sa);
    if (rb) {
      if (sb.size() == 2 && sa.size() > 2) gb = GradOfMatrixB(da, g);
      else gb = SumTo(MatmulForward(da.Transpose(-1, -2), g), sb);
    }
    return std::vector<Tensor>{ga, gb};
  });
  return out;
}

// x [..., in] (2 dims or more) @ weight^T + bias in one GEMM whose tiles start from the bias.
// The backward is Matmul(x, weight.T()) + bias's: the same GEMMs, the weight's gradient the same
// transposed view, the bias's the same SumTo, so gradients are bit for bit those of the two ops.
Tensor FusedLinear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const int64_t in = weight.size(1), out = weight.size(0), rows = x.numel() / in;
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = out;
  Tensor y = Tensor::Empty(out_shape, x.dtype());
  const Tensor x2 = BlasReady(x.Detach().Reshape(Shape{rows, in}));
  const Tensor wt = BlasReady(weight.Detach().T());  // op(B) [in, out]
  const Tensor b = bias.Detach().Contiguous();
  bool ta = false, tb = false;
  int64_t lda = in, ldb = out;
  BlasLayout(rows, in, x2.strides()[0], x2.strides()[1], &ta, &lda);
  BlasLayout(in, out, wt.strides()[0], wt.strides()[1], &tb, &ldb);
  DispatchFloat(x.dtype(), "Linear", [&](auto tag) {
    using T = decltype(tag);
    cpu::Gemm<T>(ta, tb, rows, out, in, T(1), x2.data<T>(), lda, wt.data<T>(), ldb, T(0),
                 y.data<T>(), out, b.data<T>());
  });
  if (!GradMode::enabled() || !AnyRequiresGrad({&x, &weight, &bias})) return y;
  const bool rx = x.requires_grad(), rw = weight.requires_grad(), rb = bias.requires_grad();
  const Tensor xd = rw ? x.Detach() : Tensor(), wd = rx ? weight.Detach() : Tensor();
  const Shape sx = x.shape(), sb = bias.shape();
  RecordOp("Linear", y, {&x, &weight, &bias}, [=](const Tensor& g) {
    Tensor gx, gw, gb;
    if (rx) gx = SumTo(MatmulForward(g, wd), sx);
    if (rw) {
      const Tensor gwt = sx.size() > 2 ? GradOfMatrixB(xd, g)
                                       : MatmulForward(xd.Transpose(-1, -2), g);  // [in, out]
      gw = gwt.Transpose(0, 1);
    }
    if (rb) gb = SumTo(g, sb);
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace

Tensor Matmul(const Tensor& a, const Tensor& b) {
  CheckFloating(a, "Matmul");
  CheckFloating(b, "Matmul");
  ATTEND_CHECK(a.dtype() == b.dtype(), "Matmul: dtypes differ: ", a.str(), " @ ", b.str());
  ATTEND_CHECK(a.dim() >= 1 && b.dim() >= 1, "Matmul: operands need at least one dim, got ",
               a.str(), " @ ", b.str());
  if (a.dim() == 1 && b.dim() == 1) {
    ATTEND_CHECK(a.size(0) == b.size(0), "Matmul: inner dims differ: ", a.str(), " @ ", b.str());
    return Matmul2D(a.Unsqueeze(0), b.Unsqueeze(1)).Reshape(Shape{});
  }
  if (a.dim() == 1) return Matmul2D(a.Unsqueeze(0), b).Squeeze(-2);
  if (b.dim() == 1) return Matmul2D(a, b.Unsqueeze(1)).Squeeze(-1);
  return Matmul2D(a, b);
}

Tensor Linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  CheckFloating(x, "Linear");
  ATTEND_CHECK(weight.defined() && weight.dim() == 2, "Linear: weight must be [out, in], got ",
               weight.defined() ? weight.str() : "undefined");
  ATTEND_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == weight.size(1), "Linear: input ",
               x.defined() ? x.str() : "undefined", " does not end in ", weight.size(1),
               " features (weight ", weight.str(), ")");
  ATTEND_CHECK(x.dtype() == weight.dtype(), "Linear: dtypes differ: ", x.str(), " and weight ",
               weight.str());
  if (!bias.defined()) return Matmul(x, weight.T());
  ATTEND_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.dtype() == x.dtype(),
               "Linear: bias ", bias.str(), " must be [", weight.size(0), "] of ",
               DTypeName(x.dtype()));
  // One GEMM with the bias in it when it is one: 2 dims or more, features to multiply.
  if (x.dim() >= 2 && x.numel() > 0 && weight.size(1) > 0) return FusedLinear(x, weight, bias);
  return Add(Matmul(x, weight.T()), bias);
}

}  // namespace attend
