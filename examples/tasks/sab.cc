// attend-sab: Sparse Attentive Backtracking (--model sab) against an LSTM trained with full BPTT
// (--model lstm-full) and with truncated BPTT (--model lstm-truncated), on the copy task over a
// long gap (--task copy) or pixel-by-pixel Fashion-MNIST (--task pixels). Trains, evaluates the
// best checkpoint on the test split, measures one training step, and prints
//   sab test accuracy XX.XX (task copy, model sab) | ms/step X.X | peak MiB Y.Y
// drawing which memories SAB's attending steps chose into --out (sab-attention.png).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/sab.h"
#include "attend/train.h"
#include "tasks/common.h"

int main(int argc, char** argv) {
  using namespace attend;
  CLI::App app{"Sparse Attentive Backtracking against full and truncated BPTT", "attend-sab"};
  tasks::SabConfig config;
  tasks::SabCopyOptions copy;
  tasks::SabPixelOptions pixels;
  train::TaskTrainOptions options;
  options.out_dir = "runs/sab";
  options.batch_size = 32;
  options.lr = 3e-3;
  options.warmup = 100;
  options.clip_norm = 1.0;
  options.valid_every = 250;
  bool resume = false;
  int64_t measure_batch = 0;
  app.add_option("--task", config.task, "copy (symbols over a long gap) or pixels (Fashion-MNIST)")
      ->check(CLI::IsMember({"copy", "pixels"}))
      ->capture_default_str();
  app.add_option("--model", config.model,
                 "sab, lstm-full (full BPTT) or lstm-truncated (the state detached every ktrunc)")
      ->check(CLI::IsMember({"sab", "lstm-full", "lstm-truncated"}))
      ->capture_default_str();
  app.add_option("--hidden", config.hidden, "Hidden size of the recurrent layer")
      ->capture_default_str();
  app.add_option("--ktop", config.ktop, "SAB: memories each attending step keeps")
      ->capture_default_str();
  app.add_option("--katt", config.katt, "SAB: steps between memories (and attending steps)")
      ->capture_default_str();
  app.add_option("--ktrunc", config.ktrunc, "SAB and lstm-truncated: steps between truncations")
      ->capture_default_str();
  app.add_option("--gap", copy.gap, "Copy: blank steps between the symbols and the delimiter")
      ->capture_default_str();
  app.add_option("--train-size", copy.train_size, "Training sequences (pixels: images)")
      ->capture_default_str();
  app.add_option("--dev-size", copy.dev_size, "Dev sequences (pixels: images)")
      ->capture_default_str();
  app.add_option("--test-size", copy.test_size, "Test sequences (pixels: images)")
      ->capture_default_str();
  app.add_option("--data-seed", copy.seed, "Copy: seed of the sequences")->capture_default_str();
  app.add_option("--image-size", pixels.image_size,
                 "Pixels: side the images are averaged down to (28 = 784 steps, 14 = 196)")
      ->capture_default_str();
  app.add_option("--data-dir", pixels.dir, "Pixels: Debian's dataset-fashion-mnist files")
      ->capture_default_str();
  app.add_option("--measure-batch", measure_batch,
                 "Training sequences in the measured step (0 = --batch-size)")
      ->capture_default_str();
  examples::AddTrainOptions(app, options, resume);
  return examples::Main(app, argc, argv, [&] {
    config.init_seed = options.seed;
    // One set of size options serves both tasks; the pixel task keeps its own defaults unless set.
    if (config.task == "pixels") {
      if (app.count("--train-size")) pixels.train_size = copy.train_size;
      if (app.count("--dev-size")) pixels.dev_size = copy.dev_size;
      if (app.count("--test-size")) pixels.test_size = copy.test_size;
    }
    if (measure_batch == 0) measure_batch = options.batch_size;
    ATTEND_CHECK(measure_batch >= 1, "--measure-batch ", measure_batch, " must be positive");
    tasks::SabTask task(config, copy, pixels);
    train::TrainTask(task, options, resume);
    train::LoadTaskCheckpoint(options.out_dir + "/best.ckpt", task.Model());
    task.Model().Eval();
    const tasks::SabScore score = tasks::EvaluateSab(task, "test");
    const std::string picture = tasks::DrawSabAttention(task, 0, options.out_dir);
    if (!picture.empty()) std::fprintf(stderr, "wrote %s\n", picture.c_str());
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < std::min(measure_batch, task.NumTrain()); ++r) rows.push_back(r);
    const tasks::SabStepCost cost = tasks::MeasureSabStep(task, rows);
    std::printf("sab test accuracy %.2f (task %s, model %s) | ms/step %.1f | peak MiB %.1f\n",
                score.accuracy, config.task.c_str(), config.model.c_str(), cost.ms_per_step,
                cost.peak_mib);
    return 0;
  });
}
