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

// Forward for operands of >= 2 dims (no autograd). With `into` (contiguous, of the product's
// shape and dtype: PendingGradient's sums) the product is added into it and it is returned. With
// `row_sums` (2-D operands, N > 0) *row_sums becomes the sums of a's rows, [M] (cpu::Gemm's
// sum_a).
Tensor MatmulForward(const Tensor& a_in, const Tensor& b_in, Tensor* into = nullptr,
                     Tensor* row_sums = nullptr) {
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
  ATTEND_ASSERT(
      !into || (into->shape() == out_shape && into->dtype() == a.dtype() && into->is_contiguous()),
      "MatmulForward: cannot add ", out_shape.str(), " into ", into->str());
  Tensor out = into ? *into : Tensor::Empty(out_shape, a.dtype());
  ATTEND_ASSERT(!row_sums || (na == 2 && nb == 2 && n > 0), "MatmulForward: row sums of ",
                a_in.str(), " (2-D operands and a product with columns only)");
  if (row_sums) *row_sums = Tensor::Zeros(Shape{m}, a.dtype());
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
    const T beta = into ? T(1) : T(0);
    if (k == 0) {
      if (!into) std::memset(pc, 0, sizeof(T) * out.numel());
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
        cpu::Gemm<T>(false, tb, rows, n, k, T(1), pa, lda, pb, ldb, beta, pc, n);
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
      cpu::Gemm<T>(ta, tb, m, n, k, T(1), pa + oa, lda, pb + ob, ldb, beta, pc + bi * m * n, n,
                   nullptr, row_sums ? row_sums->data<T>() : nullptr);
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
Tensor GradOfMatrixB(const Tensor& a, const Tensor& g, Tensor* into = nullptr,
                     Tensor* sums_of_a = nullptr) {
  const int na = a.dim();
  Tensor a2 = a.Reshape(Shape{-1, a.shape()[na - 1]});
  Tensor g2 = g.Reshape(Shape{-1, g.shape()[g.dim() - 1]});
  return MatmulForward(a2.Transpose(0, 1), g2, into, sums_of_a);
}

// The product a @ b as input `input`'s gradient of shape `shape` (the backward of a product):
// summed to `shape` over broadcast batch dims, or added into the engine's running sum for that
// input (then undefined is returned) when there is one and nothing is to be summed.
Tensor ProductGradient(size_t input, const Tensor& a, const Tensor& b, const Shape& shape) {
  const std::vector<int64_t> sa = a.shape().vec(), sb = b.shape().vec();
  Shape out_shape =
      BroadcastShapes(Shape(std::vector<int64_t>(sa.begin(), sa.end() - 2)),
                      Shape(std::vector<int64_t>(sb.begin(), sb.end() - 2)), "Matmul");
  out_shape.push_back(a.size(-2));
  out_shape.push_back(b.size(-1));
  if (out_shape == shape) {
    if (Tensor* sum = PendingGradient(input, shape, a.dtype())) {
      MatmulForward(a, b, sum);
      return Tensor();
    }
  }
  return SumTo(MatmulForward(a, b), shape);
}

Tensor Matmul2D(const Tensor& a, const Tensor& b) {
  Tensor out = MatmulForward(a, b);
  if (!GradMode::enabled() || !AnyRequiresGrad({&a, &b})) return out;
  const bool ra = a.requires_grad(), rb = b.requires_grad();
  Tensor da = rb ? a.Detach() : Tensor(), db = ra ? b.Detach() : Tensor();
  const Shape sa = a.shape(), sb = b.shape();
  // B a transposed view of a contiguous matrix W (x @ W.T(): a linear layer, tied output
  // embeddings): B's gradient is made in W's orientation, g^T a [out, in], and handed back
  // transposed, so that W receives a contiguous gradient, kept as its .grad (or summed into) with
  // no copy; the same products as a^T g, summed in the same order of rows.
  const bool b_transposed = sb.size() == 2 && !b.is_contiguous() && b.T().is_contiguous();
  // The same for batched operands of equal batch dims when B is a transposed view whose stored
  // rows are contiguous (q @ k^T, k a head's view of the projections): B's gradient made as
  // (g^T a)^T, so k receives rows of contiguous features. As a^T g it reached the projections'
  // gradient transposed, added there one element at a time through a stride of Tk floats (1.1 %
  // of a Transformer training step, nearly every element a cache miss).
  const int nd = static_cast<int>(sb.size());
  bool b_rows_transposed = nd > 2 && sa.size() == sb.size() && b.strides()[nd - 2] == 1 &&
                           b.strides()[nd - 1] != 1 && b.size(-1) > 1;
  for (int i = 0; i + 2 < nd && b_rows_transposed; ++i) b_rows_transposed = sa[i] == sb[i];
  RecordOp("Matmul", out, {&a, &b}, [=](const Tensor& g) {
    Tensor ga, gb;
    if (ra) ga = ProductGradient(0, g, db.Transpose(-1, -2), sa);
    if (rb) {
      if (b_transposed && !PendingGradient(1, sb, g.dtype())) {
        gb = GradOfMatrixB(g, da).Transpose(0, 1);
      } else if (b_rows_transposed && !PendingGradient(1, sb, g.dtype())) {
        gb = MatmulForward(g.Transpose(-1, -2), da).Transpose(-1, -2);
      } else if (sb.size() == 2 && sa.size() > 2) {
        Tensor* sum = PendingGradient(1, sb, g.dtype());
        gb = GradOfMatrixB(da, g, sum);
        if (sum) gb = Tensor();
      } else {
        gb = ProductGradient(1, da.Transpose(-1, -2), g, sb);
      }
    }
    return std::vector<Tensor>{ga, gb};
  });
  return out;
}

// x [..., in] (2 dims or more) @ weight^T (+ bias, when defined) in one GEMM whose tiles start
// from the bias. The backward is Matmul(x, weight.T()) + bias's: the same GEMMs (the weight's
// gradient in the other orientation: the same products, summed in the same order), the bias's
// the same SumTo. A weight read once per decoding step adds each step's gradient into the
// engine's running sum, bias or not: through Matmul(x, weight.T()) (a Linear without bias, as
// before) each step's [in, out] went through Transpose's backward and was then added to the sum
// as a transposed view (docs/results.md issue 20 nineteenth pass).
Tensor FusedLinear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const int64_t in = weight.size(1), out = weight.size(0), rows = x.numel() / in;
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = out;
  Tensor y = Tensor::Empty(out_shape, x.dtype());
  const Tensor x2 = BlasReady(x.Detach().Reshape(Shape{rows, in}));
  const Tensor wt = BlasReady(weight.Detach().T());  // op(B) [in, out]
  const Tensor b = bias.defined() ? bias.Detach().Contiguous() : Tensor();
  bool ta = false, tb = false;
  int64_t lda = in, ldb = out;
  BlasLayout(rows, in, x2.strides()[0], x2.strides()[1], &ta, &lda);
  BlasLayout(in, out, wt.strides()[0], wt.strides()[1], &tb, &ldb);
  DispatchFloat(x.dtype(), "Linear", [&](auto tag) {
    using T = decltype(tag);
    cpu::Gemm<T>(ta, tb, rows, out, in, T(1), x2.data<T>(), lda, wt.data<T>(), ldb, T(0),
                 y.data<T>(), out, b.defined() ? b.data<T>() : nullptr);
  });
  if (!GradMode::enabled() || !AnyRequiresGrad({&x, &weight, &bias})) return y;
  const bool rx = x.requires_grad(), rw = weight.requires_grad(), rb = bias.requires_grad();
  const Tensor xd = rw ? x.Detach() : Tensor(), wd = rx ? weight.Detach() : Tensor();
  const Shape sx = x.shape(), sb = rb ? bias.shape() : Shape{}, sw = weight.shape();
  RecordOp("Linear", y, {&x, &weight, &bias}, [=](const Tensor& g) {
    Tensor gx, gw, gb;
    if (rx) gx = SumTo(MatmulForward(g, wd), sx);
    if (rw) {
      const Tensor g2 = g.Reshape(Shape{-1, out}), x2d = xd.Reshape(Shape{-1, in});
      if (DeferGradientProduct(1, g2, x2d)) {
        // A weight read at every time step: [out, in] = g^T x joins the other steps' terms in one
        // product (autograd/node.h).
      } else if (Tensor* sum = PendingGradient(1, sw, g.dtype())) {
        // A weight used once per time step: its GEMM adds into the running sum, [out, in] +=
        // g^T x over all rows (the other orientation's GEMM, the same sums).
        GradOfMatrixB(g, xd, sum);
      } else {
        // [out, in] = g^T x directly, contiguous: the leaf takes it as its .grad without a copy
        // (x^T g transposed was a view, copied into a fresh [out, in] buffer when stored: 1 % of
        // a Transformer training step). The same products summed in the same order of rows. The
        // bias's gradient, the sums of g's rows, is formed by the same GEMM while it packs g^T:
        // no second pass over g (the output layer's: [tokens, vocabulary], 41 MB).
        gw = GradOfMatrixB(g, xd, nullptr, rb ? &gb : nullptr);
      }
    }
    if (rb && !gb.defined()) gb = SumTo(g, sb);
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace

// autograd/node.h: the deferred terms' rows laid end to end (a single term is used as it is),
// then A^T B in one GEMM, each term's rows in the order the terms arrived.
Tensor AddGradientProducts(const std::vector<Tensor>& a, const std::vector<Tensor>& b,
                           Tensor* into) {
  const Tensor ta = a.size() == 1 ? a.front() : Concat(a, 0);
  const Tensor tb = b.size() == 1 ? b.front() : Concat(b, 0);
  const int64_t m = ta.size(1), n = tb.size(1), k = ta.size(0);
  Tensor out = into ? *into : Tensor::Empty(Shape{m, n}, ta.dtype());
  DispatchFloat(ta.dtype(), "gradient products", [&](auto tag) {
    using T = decltype(tag);
    cpu::Gemm<T>(true, false, m, n, k, T(1), ta.data<T>(), m, tb.data<T>(), n, into ? T(1) : T(0),
                 out.data<T>(), n);
  });
  return into ? Tensor() : out;
}

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
  const bool gemm = x.dim() >= 2 && x.numel() > 0 && weight.size(1) > 0;
  if (!bias.defined()) return gemm ? FusedLinear(x, weight, bias) : Matmul(x, weight.T());
  ATTEND_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.dtype() == x.dtype(),
               "Linear: bias ", bias.str(), " must be [", weight.size(0), "] of ",
               DTypeName(x.dtype()));
  // One GEMM with the bias in it when it is one: 2 dims or more, features to multiply.
  if (gemm) return FusedLinear(x, weight, bias);
  return Add(Matmul(x, weight.T()), bias);
}

}  // namespace attend
