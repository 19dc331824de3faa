// Uses the engine as a library: attention weights of one query over three keys, and the
// gradient of a loss through them, checked against the closed form. Exits 1 on a mismatch.
#include <cmath>
#include <cstdio>

#include "attend/attend.h"
#include "attend/attention.h"

int main() {
  using attend::Tensor;
  // One query, three keys of width 2; values are the key indices.
  Tensor q = Tensor::FromVector(std::vector<float>{1.0f, 0.0f}, {1, 2});
  Tensor k = Tensor::FromVector(std::vector<float>{1.0f, 0.0f, 0.0f, 1.0f, -1.0f, 0.0f}, {3, 2});
  Tensor v = Tensor::FromVector(std::vector<float>{0.0f, 1.0f, 2.0f}, {3, 1});
  q.set_requires_grad(true);
  attend::attention::Attended out = attend::attention::ScaledDotProductAttention(q, k, v);
  // Scores q.k / sqrt(2) = (1, 0, -1) / sqrt(2); softmax; context = sum_j w_j * j.
  const double s = 1.0 / std::sqrt(2.0);
  const double e0 = std::exp(s), e1 = 1.0, e2 = std::exp(-s), z = e0 + e1 + e2;
  const double w[3] = {e0 / z, e1 / z, e2 / z};
  const double context = w[1] + 2 * w[2];
  attend::Sum(out.context).Backward();
  // d context / d q = sum_j w_j (v_j - context) k_j / sqrt(2)
  double dq0 = 0, dq1 = 0;
  const double kk[3][2] = {{1, 0}, {0, 1}, {-1, 0}};
  for (int j = 0; j < 3; ++j) {
    dq0 += w[j] * (j - context) * kk[j][0] * s;
    dq1 += w[j] * (j - context) * kk[j][1] * s;
  }
  const std::vector<float> got_w = out.weights.ToVector<float>();
  const std::vector<float> got_dq = q.grad().ToVector<float>();
  double err = std::fabs(out.context.item() - context);
  for (int j = 0; j < 3; ++j) err = std::fmax(err, std::fabs(got_w[j] - w[j]));
  err = std::fmax(err, std::fmax(std::fabs(got_dq[0] - dq0), std::fabs(got_dq[1] - dq1)));
  std::printf("consumer_engine: weights %.6f %.6f %.6f, context %.6f, max error %.2e\n", got_w[0],
              got_w[1], got_w[2], out.context.item(), err);
  return err < 1e-5 ? 0 : 1;
}
