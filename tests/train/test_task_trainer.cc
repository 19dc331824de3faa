// The one training loop of the tasks (attend/train.h): it learns, it resumes exactly, and it
// refuses what it should.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/nn.h"
#include "attend/train.h"
#include "support/files.h"
#include "support/gradcheck.h"

namespace attend::train {
namespace {

using attend::testing::ReadFile;
using attend::testing::TempDir;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;

// Four Gaussian blobs in 2-D, one class each; a linear classifier separates them.
class BlobTask : public Task {
 public:
  BlobTask(int64_t n, uint64_t seed, double scale = 1.0) : scale_(scale) {
    Generator gen(seed);
    model_ = std::make_shared<nn::Linear>(2, 4, true, gen);
    x_ = Tensor::Randn({n, 2}, gen);
    std::vector<int64_t> y(static_cast<size_t>(n));
    std::vector<float> x = x_.ToVector<float>();
    const float cx[4] = {3, -3, 3, -3}, cy[4] = {3, 3, -3, -3};
    for (int64_t i = 0; i < n; ++i) {
      y[i] = i % 4;
      x[2 * i] = x[2 * i] * 0.7f + cx[y[i]];
      x[2 * i + 1] = x[2 * i + 1] * 0.7f + cy[y[i]];
    }
    x_ = Tensor::FromVector(x, {n, 2});
    y_ = Tensor::FromVector(y, {n});
  }
  nn::Module& Model() override { return *model_; }
  int64_t NumTrain() const override { return x_.shape()[0] * 3 / 4; }
  Tensor Loss(const std::vector<int64_t>& rows) override {
    ++loss_calls;
    Tensor idx = Tensor::FromVector(rows, {static_cast<int64_t>(rows.size())});
    Tensor logits = model_->Forward(IndexSelect(x_, 0, idx));
    return CrossEntropy(logits, IndexSelect(y_, 0, idx)) * scale_;
  }
  TaskEval Evaluate() override {
    const int64_t n = x_.shape()[0], first = NumTrain();
    std::vector<int64_t> rows;
    for (int64_t i = first; i < n; ++i) rows.push_back(i);
    Tensor idx = Tensor::FromVector(rows, {static_cast<int64_t>(rows.size())});
    Tensor logits = model_->Forward(IndexSelect(x_, 0, idx));
    const std::vector<float> l = logits.ToVector<float>();
    const std::vector<int64_t> y = IndexSelect(y_, 0, idx).ToVector<int64_t>();
    int64_t right = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      int64_t best = 0;
      for (int64_t c = 1; c < 4; ++c)
        if (l[i * 4 + c] > l[i * 4 + best]) best = c;
      right += best == y[i];
    }
    TaskEval e;
    e.score = 100.0 * static_cast<double>(right) / static_cast<double>(y.size());
    e.loss = CrossEntropy(logits, IndexSelect(y_, 0, idx)).item();
    e.text = "acc " + std::to_string(e.score);
    return e;
  }
  std::string ConfigJson() const override { return R"({"blobs": 4})"; }
  std::string Describe() const override { return "four blobs"; }

  int64_t loss_calls = 0;

 private:
  double scale_;
  std::shared_ptr<nn::Linear> model_;
  Tensor x_, y_;
};

TaskTrainOptions Quick(const std::string& out) {
  TaskTrainOptions o;
  o.out_dir = out;
  o.batch_size = 16;
  o.lr = 0.05;
  o.warmup = 5;
  o.max_steps = 60;
  o.valid_every = 20;
  o.log_every = 10;
  o.progress = false;
  return o;
}

TEST(TaskTrainer, LearnsAndWritesCheckpointsAndLog) {
  TempDir dir;
  BlobTask task(400, 3);
  const TaskTrainSummary s = TrainTask(task, Quick(dir.path().string()), false);
  EXPECT_EQ(s.steps, 60);
  EXPECT_EQ(s.stop_reason, "steps");
  EXPECT_GE(s.best_score, 95.0);
  ASSERT_EQ(s.curve.size(), 6u);
  EXPECT_LT(s.curve.back().second, 0.5 * s.curve.front().second);
  EXPECT_GT(s.units_per_second, 0.0);
  const std::string log = ReadFile(dir / "train.log");
  EXPECT_THAT(log, HasSubstr("training: four blobs, 12 parameters, 300 training examples"));
  EXPECT_THAT(log, HasSubstr("validation step 60"));
  // best.ckpt holds the best model and its configuration.
  BlobTask fresh(400, 99);
  EXPECT_EQ(LoadTaskCheckpoint(dir / "best.ckpt", fresh.Model()), R"({"blobs":4})");
  NoGradGuard no_grad;
  EXPECT_DOUBLE_EQ(fresh.Evaluate().score, s.best_score);
}

TEST(TaskTrainer, EveryEpochVisitsEveryExampleOnceInItsOwnOrder) {
  for (int64_t n : {1, 7, 64, 65}) {
    const auto a = ShuffledBatches(n, 8, 5, 0), b = ShuffledBatches(n, 8, 5, 1);
    std::multiset<int64_t> seen;
    for (const auto& batch : a) {
      EXPECT_LE(batch.size(), 8u);
      seen.insert(batch.begin(), batch.end());
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(seen.count(i), 1u) << n << " " << i;
    }
    if (n > 8) {
      EXPECT_NE(a, b) << "epochs share one order";
    }
    EXPECT_EQ(a, ShuffledBatches(n, 8, 5, 0)) << "not a function of (seed, epoch)";
  }
}

TEST(TaskTrainer, ResumeContinuesBitForBit) {
  TempDir straight, resumed;
  {
    BlobTask task(400, 3);
    TrainTask(task, Quick(straight.path().string()), false);
  }
  {
    BlobTask task(400, 3);
    TaskTrainOptions o = Quick(resumed.path().string());
    o.max_steps = 40;  // stops at a validation, as a killed run's last.ckpt would
    TrainTask(task, o, false);
  }
  {
    BlobTask task(400, 3);
    const TaskTrainSummary s = TrainTask(task, Quick(resumed.path().string()), true);
    EXPECT_EQ(s.steps, 60);
    EXPECT_EQ(task.loss_calls, 20);
  }
  EXPECT_EQ(ReadFile(straight / "last.ckpt"), ReadFile(resumed / "last.ckpt"));
  EXPECT_EQ(ReadFile(straight / "best.ckpt"), ReadFile(resumed / "best.ckpt"));
}

TEST(TaskTrainer, RefusesBadOptionsAnotherConfigurationAndANonFiniteLoss) {
  TempDir dir;
  BlobTask task(400, 3);
  TaskTrainOptions o = Quick(dir.path().string());
  o.max_steps = 0;
  EXPECT_THAT(ThrownMessage([&] { TrainTask(task, o, false); }), HasSubstr("stop condition"));
  o = Quick(dir.path().string());
  o.batch_size = 0;
  EXPECT_THAT(ThrownMessage([&] { TrainTask(task, o, false); }), HasSubstr("must be positive"));
  o = Quick(dir.path().string());
  EXPECT_THAT(ThrownMessage([&] { TrainTask(task, o, true); }), HasSubstr("last.ckpt"));

  class OtherTask : public BlobTask {
   public:
    using BlobTask::BlobTask;
    std::string ConfigJson() const override { return R"({"blobs": 5})"; }
  };
  o.max_steps = 20;
  TrainTask(task, o, false);
  OtherTask other(400, 3);
  EXPECT_THAT(ThrownMessage([&] { TrainTask(other, o, true); }),
              HasSubstr("another configuration"));

  TempDir dir2;
  BlobTask exploding(400, 3, INFINITY);
  EXPECT_THAT(ThrownMessage([&] { TrainTask(exploding, Quick(dir2.path().string()), false); }),
              HasSubstr("the loss became inf at step 1"));
}

}  // namespace
}  // namespace attend::train
