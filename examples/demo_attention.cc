// A small end-to-end demo: a one-layer scaled dot-product attention model learns to reverse
// token sequences, trained with Adam written on raw tensors; prints its loss falling.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "attend/attend.h"

using attend::Tensor;

namespace {

struct Adam {
  std::vector<Tensor> params, m, v;
  double lr, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  int t = 0;
  Adam(std::vector<Tensor> p, double lr_) : params(std::move(p)), lr(lr_) {
    for (auto& q : params) {
      m.push_back(Tensor::Zeros(q.shape()));
      v.push_back(Tensor::Zeros(q.shape()));
    }
  }
  void Step() {
    attend::NoGradGuard ng;
    ++t;
    const double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor g = params[i].grad();
      if (!g.defined()) continue;
      m[i].CopyFrom(m[i] * b1 + g * (1 - b1));
      v[i].CopyFrom(v[i] * b2 + g * g * (1 - b2));
      Tensor update = (m[i] / c1) / (attend::Sqrt(v[i] / c2) + eps);
      params[i].CopyFrom(params[i] - update * lr);
      params[i].ZeroGrad();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const int steps = argc > 1 ? std::atoi(argv[1]) : 300;
    const int64_t vocab = 16, len = 8, dim = 32, batch = 64;
    attend::Generator gen(42);
    auto param = [&](attend::Shape s, double scale) {
      Tensor p = Tensor::Randn(s, gen) * scale;
      p.set_requires_grad(true);
      return p;
    };
    Tensor embed = param({vocab, dim}, 0.5);  // token embeddings
    Tensor pos = param({len, dim}, 0.5);      // source positions
    Tensor queries = param({len, dim}, 0.5);  // one learned query per target position
    Tensor wq = param({dim, dim}, 1.0 / std::sqrt(dim));
    Tensor wk = param({dim, dim}, 1.0 / std::sqrt(dim));
    Tensor wv = param({dim, dim}, 1.0 / std::sqrt(dim));
    Tensor wo = param({dim, vocab}, 1.0 / std::sqrt(dim));
    Adam opt({embed, pos, queries, wq, wk, wv, wo}, 0.01);

    std::printf("demo: attention learns to reverse sequences of %lld tokens (vocab %lld)\n",
                static_cast<long long>(len), static_cast<long long>(vocab));
    double first = 0, last = 0, acc = 0;
    for (int step = 1; step <= steps; ++step) {
      Tensor src = Tensor::Randint({batch, len}, 0, vocab, gen);  // [B, L]
      Tensor tgt = Tensor::Empty({batch, len}, attend::DType::kI64);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < len; ++i)
          tgt.data<int64_t>()[b * len + i] = src.data<int64_t>()[b * len + (len - 1 - i)];
      Tensor x = attend::Embedding(embed, src) + pos;                         // [B, L, D]
      Tensor q = attend::Matmul(queries, wq);                                 // [L, D]
      Tensor k = attend::Matmul(x, wk);                                       // [B, L, D]
      Tensor v = attend::Matmul(x, wv);                                       // [B, L, D]
      Tensor scores = attend::Matmul(q, k.Transpose(1, 2)) / std::sqrt(dim);  // [B, L, L]
      Tensor weights = attend::Softmax(scores, -1);
      Tensor ctx = attend::Matmul(weights, v);                                // [B, L, D]
      Tensor logits = attend::Matmul(ctx, wo).Reshape({batch * len, vocab});  // [B*L, V]
      Tensor loss = attend::CrossEntropy(logits, tgt.Reshape({batch * len}));
      loss.Backward();
      opt.Step();
      last = loss.item();
      if (step == 1) first = last;
      if (step == 1 || step % 25 == 0 || step == steps) {
        Tensor pred = attend::Argmax(logits.Detach(), -1);
        Tensor hit = attend::Eq(pred, tgt.Reshape({batch * len})).To(attend::DType::kF32);
        acc = attend::Mean(hit).item();
        std::printf("step %4d  loss %.4f  accuracy %.3f\n", step, last, acc);
      }
    }
    std::printf("loss fell from %.4f to %.4f\n", first, last);
    return last < first ? 0 : 1;
  } catch (const attend::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
