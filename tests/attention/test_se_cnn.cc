// Squeeze-and-excitation inside a small CNN: gradients against finite differences, and training
// on a task whose answer sits in which input channel carries the signal.
#include <gtest/gtest.h>

#include "attend/attention_models.h"
#include "attend/autograd.h"
#include "attend/optim.h"
#include "support/gradcheck.h"

namespace attend::attention {
namespace {

TEST(SeCnn, GradientsMatchFiniteDifferences) {
  Generator gen(3);
  SeCnn net(2, 4, 4, 3, 2, gen, DType::kF64);
  Tensor x = Tensor::Randn({2, 2, 5, 5}, gen, DType::kF64);
  // Input gradient through conv, ReLU, SE, pooling and the classifier.
  EXPECT_TRUE(gradcheck::GradCheck(
      [&](const std::vector<Tensor>& in) { return net.Forward(in[0]).logits; }, {x}));
  // Every parameter receives a gradient.
  Sum(net.Forward(x).logits).Backward();
  for (auto& [name, p] : net.NamedParameters()) EXPECT_TRUE(p.grad().defined()) << name;
  auto out = net.Forward(x);
  ASSERT_EQ(out.channel_weights.size(), 2u);
  EXPECT_EQ(out.channel_weights[0].shape(), Shape({2, 4}));
  for (double w : out.channel_weights[1].ToVector<double>()) {
    EXPECT_GT(w, 0.0);
    EXPECT_LT(w, 1.0);
  }
}

// Class = which of three channels holds a bright blob; noise elsewhere. A small SE-CNN trained
// with Adam must get most batches right.
TEST(SeCnn, LearnsAChannelTask) {
  Generator gen(5);
  SeCnn net(3, 8, 8, 3, 2, gen);
  optim::AdamOptions o;
  o.lr = 0.01;
  optim::Adam opt(net.Parameters(), o);
  auto batch = [&](int64_t n, Tensor* labels) {
    Tensor x = Tensor::Randn({n, 3, 6, 6}, gen) * 0.3;
    Tensor y = Tensor::Randint({n}, 0, 3, gen);
    float* px = x.data<float>();
    const int64_t* py = y.data<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 1; r < 4; ++r)
        for (int64_t c = 2; c < 5; ++c) px[((i * 3 + py[i]) * 6 + r) * 6 + c] += 1.5f;
    *labels = y;
    return x;
  };
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Tensor y;
    Tensor x = batch(32, &y);
    Tensor loss = CrossEntropy(net.Forward(x).logits, y);
    loss.Backward();
    opt.Step();
    opt.ZeroGrad();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_LT(last, first * 0.5);
  NoGradGuard ng;
  Tensor y;
  Tensor x = batch(200, &y);
  Tensor pred = Argmax(net.Forward(x).logits, -1);
  const double accuracy = Mean(Eq(pred, y).To(DType::kF32)).item();
  EXPECT_GT(accuracy, 0.9);
}

}  // namespace
}  // namespace attend::attention
