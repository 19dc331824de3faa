// attend-senet: squeeze-and-excitation (Hu et al. 2018) in a small CNN on Fashion-MNIST, or the
// same CNN without it (--channel-attention none). Trains with the one trainer (attend/train.h),
// evaluates the best dev checkpoint on the 10,000 test images, prints
//   senet test accuracy XX.XX (channel-attention se)
// and draws the mean excitation per class and channel into OUT/se-weights.png (+ .tsv).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/tasks/senet.h"
#include "attend/train.h"
#include "attend/vision.h"
#include "tasks/common.h"

int main(int argc, char** argv) {
  using namespace attend;
  CLI::App app("Squeeze-and-excitation in a CNN on Fashion-MNIST, against the same CNN without it",
               "attend-senet");
  std::string dir = vision::kFashionMnistDir, attention = "se";
  int64_t train_size = 0;
  tasks::SenetConfig config;
  train::TaskTrainOptions options;
  options.batch_size = 64;
  options.lr = 3e-3;
  options.out_dir = "runs/senet";
  bool resume = false;
  app.add_option("--fashion-mnist-dir", dir,
                 "Fashion-MNIST's four IDX files (dataset-fashion-mnist)")
      ->capture_default_str();
  app.add_option("--train-size", train_size,
                 "Train on the first N training images (0 = all 55,000; dev: the last 5,000)")
      ->capture_default_str();
  app.add_option("--channel-attention", attention,
                 "se: an SE block ends every stage; none: the same CNN without it")
      ->check(CLI::IsMember({"se", "none"}))
      ->capture_default_str();
  app.add_option("--channels", config.channels, "Width of each conv stage (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--reduction", config.reduction, "SE reduction ratio r (C / r hidden units)")
      ->capture_default_str();
  examples::AddTrainOptions(app, options, resume);
  return examples::Main(app, argc, argv, [&] {
    config.channel_attention = attention == "se";
    const tasks::SenetData data = tasks::LoadSenetData(dir, train_size);
    tasks::SenetTask task(data, config, options.seed);
    const train::TaskTrainSummary summary = train::TrainTask(task, options, resume);
    std::printf("senet train %lld steps, %.1f images/s, best dev accuracy %.2f\n",
                static_cast<long long>(summary.steps), summary.units_per_second,
                summary.best_score);

    Generator gen(options.seed);
    tasks::SenetModel best(config, gen);
    const std::string best_path = (std::filesystem::path(options.out_dir) / "best.ckpt").string();
    train::LoadTaskCheckpoint(best_path, best);
    const tasks::SenetEvaluation test = tasks::EvaluateSenet(best, data.test);
    if (config.channel_attention) {
      tasks::WriteSenetPictures(options.out_dir, test);
      std::fprintf(stderr, "wrote %s/se-weights.png and se-weights.tsv\n", options.out_dir.c_str());
    }
    std::printf("senet test accuracy %.2f (channel-attention %s)\n", test.accuracy,
                attention.c_str());
    return 0;
  });
}
