// nmt::RunTraining, `attend train` as a library call: the events it reports (one per log line,
// the numbers the lines show), its option table, stopping, and the errors a caller meets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "attend/checkpoint.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend {
namespace {

using ::testing::HasSubstr;
using testing::Lines;
using testing::ReadFile;
using testing::TempDir;
using testing::ThrownMessage;
using testing::WriteFile;
using Kind = nmt::TrainEvent::Kind;

// A small word-level pair: source words mapped one to one, in reverse order.
void WriteCorpus(const TempDir& dir) {
  const std::vector<std::string> words = {"a", "b", "c", "d", "e", "f"};
  std::string train_src, train_tgt, dev_src, dev_tgt;
  for (int i = 0; i < 80; ++i) {
    std::string s, t;
    for (int k = 0; k < 2 + i % 4; ++k) {
      const std::string w = words[(i * 7 + k * 3) % words.size()];
      s += (s.empty() ? "" : " ") + w;
      t = "x" + w + (t.empty() ? "" : " ") + t;
    }
    (i < 70 ? train_src : dev_src) += s + "\n";
    (i < 70 ? train_tgt : dev_tgt) += t + "\n";
  }
  WriteFile(dir / "data/train.src", train_src);
  WriteFile(dir / "data/train.tgt", train_tgt);
  WriteFile(dir / "data/dev.src", dev_src);
  WriteFile(dir / "data/dev.tgt", dev_tgt);
}

nmt::TrainRun SmallRun(const TempDir& dir) {
  nmt::TrainRun run;
  run.data_dir = dir / "data";
  run.src_lang = "src";
  run.tgt_lang = "tgt";
  run.vocab.model_type = "word";
  run.vocab.size = 40;
  run.model.embed_dim = 8;
  run.model.hidden_dim = 8;
  run.model.attention_dim = 8;
  run.train.out_dir = dir / "out";
  run.train.max_tokens = 60;
  run.train.max_steps = 6;
  run.train.log_every = 2;
  run.train.valid_every = 3;
  run.train.valid_sentences = 4;
  run.train.threads = 1;
  run.no_progress = true;
  return run;
}

TEST(TrainRun, ReportsOneEventPerLogLineWithItsNumbers) {
  TempDir dir;
  WriteCorpus(dir);
  nmt::TrainRun run = SmallRun(dir);
  std::vector<nmt::TrainEvent> events;
  run.train.on_event = [&](const nmt::TrainEvent& e) { events.push_back(e); };
  const nmt::TrainSummary s = nmt::RunTraining(run);
  EXPECT_EQ(s.steps, 6);
  EXPECT_EQ(s.stop_reason, "steps");
  std::vector<std::string> texts;
  std::vector<Kind> kinds;
  std::vector<int64_t> steps;
  for (const auto& e : events) {
    texts.push_back(e.text);
    kinds.push_back(e.kind);
    steps.push_back(e.step);
  }
  EXPECT_EQ(texts, Lines(ReadFile(dir / "out/train.log")));
  EXPECT_EQ(kinds, (std::vector<Kind>{Kind::kStart, Kind::kStep, Kind::kValidation, Kind::kStep,
                                      Kind::kStep, Kind::kValidation, Kind::kStopped}));
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 2, 3, 4, 6, 6, 6}));
  double best = -1.0;
  for (const auto& e : events) {
    char buf[64];
    if (e.kind == Kind::kStep) {
      std::snprintf(buf, sizeof(buf), "loss %.3f", e.loss);
      EXPECT_THAT(e.text, HasSubstr(buf));
      EXPECT_GT(e.tokens_per_second, 0);
      EXPECT_GT(e.lr, 0);
      EXPECT_EQ(e.align_loss, -1.0);
    } else if (e.kind == Kind::kValidation) {
      std::snprintf(buf, sizeof(buf), "dev loss %.4f ppl %.2f BLEU %.2f chrF %.2f", e.dev_loss,
                    std::exp(e.dev_loss), e.bleu, e.chrf);
      EXPECT_THAT(e.text, HasSubstr(buf));
      EXPECT_EQ(e.best, e.bleu > best) << e.text;
      best = std::max(best, e.bleu);
    }
  }
  EXPECT_EQ(events.back().stop_reason, "steps");
  EXPECT_DOUBLE_EQ(s.best_bleu, best);
  EXPECT_DOUBLE_EQ(s.last_dev_loss, events[5].dev_loss);
}

TEST(TrainRun, StopsWhenAskedAndWhenTheCallbackThrows) {
  TempDir dir;
  WriteCorpus(dir);
  {
    nmt::TrainRun run = SmallRun(dir);
    std::atomic<bool> stop{true};
    const nmt::TrainSummary s = nmt::RunTraining(run, &stop);
    EXPECT_EQ(s.steps, 0);
    EXPECT_EQ(s.stop_reason, "interrupted before training");
  }
  {
    nmt::TrainRun run = SmallRun(dir);
    std::atomic<bool> stop{false};
    run.train.max_steps = 1000;
    run.train.on_event = [&](const nmt::TrainEvent& e) {
      if (e.kind == Kind::kStep && e.step >= 4) stop = true;
    };
    const nmt::TrainSummary s = nmt::RunTraining(run, &stop);
    EXPECT_EQ(s.steps, 4);
    EXPECT_EQ(s.stop_reason, "interrupted");
  }
  {
    nmt::TrainRun run = SmallRun(dir);
    run.train.on_event = [](const nmt::TrainEvent& e) {
      if (e.kind == Kind::kStep) throw std::runtime_error("from the callback");
    };
    try {
      nmt::RunTraining(run);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "from the callback");
    }
  }
}

TEST(TrainRun, OptionTableNamesEveryFieldOnce) {
  nmt::TrainRun run;
  const auto options = nmt::TrainRunOptions(run);
  std::set<std::string> names;
  std::set<const void*> targets;
  for (const auto& o : options) {
    EXPECT_TRUE(names.insert(o.name).second) << o.name;
    EXPECT_NE(o.help, nullptr);
    std::visit([&](auto* p) { EXPECT_TRUE(targets.insert(p).second) << o.name; }, o.value);
    if (o.flag) {
      EXPECT_TRUE(std::holds_alternative<bool*>(o.value)) << o.name;
    }
  }
  for (const char* n : {"task", "data", "out", "max-tokens", "seed", "resume", "guided-alignment",
                        "spec-augment", "threads"})
    EXPECT_TRUE(names.count(n)) << n;
  // The pointers are into `run` itself.
  for (const auto& o : options)
    std::visit(
        [&](auto* p) {
          const auto* b = reinterpret_cast<const char*>(&run);
          const auto* q = reinterpret_cast<const char*>(p);
          EXPECT_TRUE(q >= b && q < b + sizeof(run)) << o.name;
        },
        o.value);
}

// The moving average after three steps with decay 0.5, from the raw weights of runs of 1, 2 and
// 3 steps (the average does not change the raw trajectory) and the initial weights:
// e3 = w0/8 + w1/8 + w2/4 + w3/2. The trainer averages in f32; the hand computation in f64.
TEST(TrainRun, MovingAverageMatchesAHandComputation) {
  TempDir dir;
  WriteCorpus(dir);
  std::vector<io::SafetensorsContents> raw;
  for (int steps = 1; steps <= 3; ++steps) {
    nmt::TrainRun run = SmallRun(dir);
    run.train.out_dir = dir / ("raw" + std::to_string(steps));
    run.train.max_steps = steps;
    run.train.valid_every = 100;
    nmt::RunTraining(run);
    raw.push_back(io::LoadSafetensors(dir / ("raw" + std::to_string(steps) + "/last.ckpt"), true));
  }
  nmt::TrainRun run = SmallRun(dir);
  run.train.out_dir = dir / "ema";
  run.train.max_steps = 3;
  run.train.valid_every = 100;
  run.train.ema = 0.5;
  nmt::RunTraining(run);
  const auto ema = io::LoadSafetensors(dir / "ema/ema.ckpt", true);
  // The raw weights of the averaged run are those of the plain run.
  const auto last = io::LoadSafetensors(dir / "ema/last.ckpt", true);
  // The initial weights: the model the trainer builds from the seed.
  const nmt::LoadedModel loaded = nmt::LoadModel(dir / "raw1/last.ckpt");
  Generator gen(run.train.seed);
  const auto initial = models::MakeModel(loaded.model->config(), gen);
  std::map<std::string, Tensor> w0;
  for (const auto& [name, t] : initial->StateDict()) w0[name] = t;
  int64_t compared = 0;
  for (size_t i = 0; i < ema.tensors.size(); ++i) {
    const auto& [name, e] = ema.tensors[i];
    if (name.rfind("optim.", 0) == 0 || e.dtype() != DType::kF32 || !w0.count(name)) continue;
    const Tensor a = w0[name].Contiguous(), b = raw[0].tensors[i].second.Contiguous(),
                 c = raw[1].tensors[i].second.Contiguous(),
                 d = raw[2].tensors[i].second.Contiguous(), l = last.tensors[i].second.Contiguous(),
                 ec = e.Contiguous();
    ASSERT_EQ(raw[2].tensors[i].first, name);
    for (int64_t k = 0; k < e.numel(); ++k) {
      const double want = a.data<float>()[k] / 8.0 + b.data<float>()[k] / 8.0 +
                          c.data<float>()[k] / 4.0 + d.data<float>()[k] / 2.0;
      ASSERT_NEAR(ec.data<float>()[k], want, 1e-6 * (1.0 + std::abs(want))) << name << " " << k;
      ASSERT_EQ(l.data<float>()[k], d.data<float>()[k]) << name;
    }
    ++compared;
  }
  EXPECT_GT(compared, 5);
}

// Accumulation is the gradient of the union: two batches weighted by their share of the tokens
// give the gradient of one batch holding both (up to summation order: the union's products run
// over other row counts; f32 sums of a few hundred terms, so a relative 1e-4 with an absolute
// floor well below the gradients' size).
TEST(TrainRun, AccumulatedGradientsAreThoseOfTheUnionBatch) {
  models::ModelConfig c;
  c.src_vocab = c.tgt_vocab = 30;
  c.embed_dim = 8;
  c.hidden_dim = 8;
  c.attention_dim = 8;
  c.dropout = 0.0;
  Generator gen(5);
  auto model = models::MakeModel(c, gen);
  std::vector<nmt::Example> ex(5);
  for (size_t i = 0; i < ex.size(); ++i) {
    for (size_t k = 0; k < 2 + i; ++k)
      ex[i].src.push_back(4 + static_cast<int64_t>((i * 7 + k) % 26));
    for (size_t k = 0; k < 1 + (i * 3) % 4; ++k)
      ex[i].tgt.push_back(4 + static_cast<int64_t>((i + k * 5) % 26));
  }
  auto grads = [&](const std::vector<std::vector<int64_t>>& parts) {
    model->ZeroGrad();
    double total = 0;
    for (const auto& part : parts)
      for (int64_t i : part) total += static_cast<double>(ex[i].tgt.size() + 1);
    for (const auto& part : parts) {
      const models::Batch b = nmt::MakeBatch(ex, part);
      const Tensor logits = model->Forward(b);
      Tensor loss = CrossEntropy(logits.View({-1, 30}), b.tgt_out.View({-1}), 0, 0.1);
      if (parts.size() > 1) loss = MulScalar(loss, static_cast<double>(b.tgt_tokens) / total);
      loss.Backward();
    }
    std::vector<Tensor> out;
    for (const Tensor& p : model->Parameters()) out.push_back(p.grad().Clone());
    return out;
  };
  const auto together = grads({{0, 1, 2, 3, 4}});
  const auto apart = grads({{0, 2, 4}, {1, 3}});
  ASSERT_EQ(together.size(), apart.size());
  for (size_t i = 0; i < together.size(); ++i) {
    const Tensor a = together[i].Contiguous(), b = apart[i].Contiguous();
    for (int64_t k = 0; k < a.numel(); ++k)
      ASSERT_NEAR(a.data<float>()[k], b.data<float>()[k],
                  1e-4 * std::abs(a.data<float>()[k]) + 1e-7)
          << "parameter " << i << " element " << k;
  }
}

TEST(TrainRun, ErrorsNameTheProblem) {
  TempDir dir;
  WriteCorpus(dir);
  auto message = [&](auto edit) {
    nmt::TrainRun run = SmallRun(dir);
    edit(run);
    return ThrownMessage([&] { nmt::RunTraining(run); });
  };
  EXPECT_THAT(message([](nmt::TrainRun& r) { r.task = "poetry"; }),
              HasSubstr("--task 'poetry' is not one of"));
  EXPECT_THAT(message([](nmt::TrainRun& r) { r.train.max_steps = -1; }), HasSubstr("must be >= 0"));
  EXPECT_THAT(message([&](nmt::TrainRun& r) { r.data_dir = dir / "nowhere"; }),
              HasSubstr("does not exist"));
  EXPECT_THAT(message([](nmt::TrainRun& r) {
                r.task = "speech";
                r.guided_alignment = "x.align";
              }),
              HasSubstr("--guided-alignment needs --task translation"));
  EXPECT_THAT(message([](nmt::TrainRun& r) { r.task = "caption"; }),
              HasSubstr("--arch must be show-attend-tell or top-down"));
  EXPECT_THAT(message([](nmt::TrainRun& r) {
                r.data_dir.clear();
                r.train_src = "only-one-side";
              }),
              HasSubstr("give both --train-src and --train-tgt"));
}

}  // namespace
}  // namespace attend
