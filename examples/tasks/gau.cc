// attend-gau: Global Attention Upsample (Li et al. 2018, "Pyramid Attention Network for Semantic
// Segmentation") in a small encoder-decoder that segments Fashion-MNIST items placed on a canvas,
// or the same network with plain skip connections (--decoder skip). Trains with the one trainer
// (attend/train.h), evaluates the best dev checkpoint on the test scenes (items from the test
// images only), prints
//   gau test mIoU XX.XX pixel-accuracy YY.YY (decoder gau)
// and draws a few test scenes (image, true labels, prediction) into OUT/gau-segmentation.png.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/tasks/gau.h"
#include "attend/train.h"
#include "attend/vision.h"
#include "tasks/common.h"

int main(int argc, char** argv) {
  using namespace attend;
  CLI::App app(
      "Global attention upsample in a segmentation network on Fashion-MNIST scenes, against the "
      "same network with plain skip connections",
      "attend-gau");
  std::string dir = vision::kFashionMnistDir, decoder = "gau";
  int64_t pictures = 6;
  tasks::GauDataOptions data_options;
  tasks::GauConfig config;
  train::TaskTrainOptions options;
  options.batch_size = 16;
  options.lr = 3e-3;
  options.out_dir = "runs/gau";
  bool resume = false;
  app.add_option("--fashion-mnist-dir", dir,
                 "Fashion-MNIST's four IDX files (dataset-fashion-mnist)")
      ->capture_default_str();
  app.add_option("--decoder", decoder,
                 "gau: global attention upsample; skip: the same decoder without the channel "
                 "weights (upsampling + the low-level features added)")
      ->check(CLI::IsMember({"gau", "skip"}))
      ->capture_default_str();
  app.add_option("--channels", config.channels, "Width of each encoder stage (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--decoder-channels", config.decoder_channels, "The decoder's width")
      ->capture_default_str();
  app.add_option("--canvas", data_options.canvas, "Side of a scene in pixels (at least 28)")
      ->capture_default_str();
  app.add_option("--train-size", data_options.train_size, "Training scenes")->capture_default_str();
  app.add_option("--dev-size", data_options.dev_size, "Dev scenes")->capture_default_str();
  app.add_option("--test-size", data_options.test_size, "Test scenes")->capture_default_str();
  app.add_option("--max-items", data_options.max_items, "Items per scene: 1 to this")
      ->capture_default_str();
  app.add_option("--threshold", data_options.threshold,
                 "An item's mask: its pixels above this (of 255)")
      ->capture_default_str();
  app.add_option("--data-seed", data_options.seed, "Seed of the scenes (items, positions)")
      ->capture_default_str();
  app.add_option("--pictures", pictures, "Test scenes drawn into gau-segmentation.png")
      ->capture_default_str();
  examples::AddTrainOptions(app, options, resume);
  return examples::Main(app, argc, argv, [&] {
    config.gau = decoder == "gau";
    ATTEND_CHECK(pictures >= 0 && pictures <= 64, "--pictures ", pictures, " must lie in 0..64");
    const tasks::GauData data = tasks::BuildGauData(dir, data_options);
    tasks::GauTask task(data, config, options.seed);
    const train::TaskTrainSummary summary = train::TrainTask(task, options, resume);
    std::printf("gau train %lld steps, %.1f scenes/s, best dev mIoU %.2f\n",
                static_cast<long long>(summary.steps), summary.units_per_second,
                summary.best_score);

    Generator gen(options.seed);
    tasks::GauModel best(config, gen);
    train::LoadTaskCheckpoint((std::filesystem::path(options.out_dir) / "best.ckpt").string(),
                              best);
    const tasks::GauEvaluation test = tasks::EvaluateGau(best, data.test);
    if (pictures > 0) {
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < std::min<int64_t>(pictures, data.test.size()); ++i) rows.push_back(i);
      tasks::WriteGauPicture(options.out_dir, best, data.test, rows);
      std::fprintf(stderr, "wrote %s/gau-segmentation.png\n", options.out_dir.c_str());
    }
    const std::vector<std::string>& names = vision::FashionMnistNames();
    std::string per_class = "gau test IoU per class:";
    for (int64_t c = 0; c < tasks::kGauClasses; ++c) {
      char cell[48];
      std::snprintf(cell, sizeof cell, " %s %.1f",
                    c == 0 ? "background" : names[static_cast<size_t>(c - 1)].c_str(),
                    test.iou[static_cast<size_t>(c)]);
      per_class += cell;
    }
    std::printf("%s\n", per_class.c_str());
    std::printf("gau test mIoU %.2f pixel-accuracy %.2f (decoder %s)\n", test.miou,
                test.pixel_accuracy, decoder.c_str());
    return 0;
  });
}
