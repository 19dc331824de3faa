// build/attend-perceiver: the Perceiver (latents cross-attending to the pixels) or the CNN
// baseline on Fashion-MNIST, trained with the one trainer; prints the test accuracy of the best
// checkpoint and draws the cross-attention (attend/tasks/perceiver.h). With --cost, measures
// instead how the cross-attention and full self-attention over the pixels grow with the image.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/perceiver.h"
#include "tasks/common.h"

using namespace attend;

int main(int argc, char** argv) {
  CLI::App app{"The Perceiver (Jaegle et al. 2021) on Fashion-MNIST, against a CNN",
               "attend-perceiver"};
  tasks::PerceiverConfig config;
  tasks::PerceiverDataOptions data_options;
  train::TaskTrainOptions train_options;
  train_options.out_dir = "runs/perceiver";
  train_options.batch_size = 32;
  train_options.lr = 1e-3;
  train_options.warmup = 100;
  train_options.max_epochs = 1;
  bool resume = false, cost = false;
  uint64_t init_seed = 1;
  int64_t pictures = 4, shown = 6;
  std::vector<int64_t> cost_sides = {14, 28, 56, 112};
  int64_t cost_reps = 10;
  double cost_max_mib = 1024;

  app.add_option("--model", config.model, "perceiver | cnn (the baseline without attention)")
      ->capture_default_str();
  app.add_option("--image-size", config.image_size,
                 "Side the 28 x 28 images are resized to (the input grows as its square)")
      ->capture_default_str();
  app.add_option("--latents", config.latents, "Perceiver: latents N")->capture_default_str();
  app.add_option("--dim", config.dim, "Perceiver: width D of latents and inputs")
      ->capture_default_str();
  app.add_option("--cross-heads", config.cross_heads, "Perceiver: heads of the cross-attention")
      ->capture_default_str();
  app.add_option("--self-heads", config.self_heads, "Perceiver: heads of the latent blocks")
      ->capture_default_str();
  app.add_option("--self-layers", config.self_layers, "Perceiver: latent self-attention blocks")
      ->capture_default_str();
  app.add_option("--repeats", config.repeats,
                 "Perceiver: cross-attention + latent blocks repeated (weights shared after the "
                 "first)")
      ->capture_default_str();
  app.add_option("--bands", config.bands, "Perceiver: Fourier frequencies per axis")
      ->capture_default_str();
  app.add_option("--max-freq", config.max_freq,
                 "Perceiver: highest Fourier frequency mu (0 = the image side)")
      ->capture_default_str();
  app.add_option("--mlp-ratio", config.mlp_ratio, "Perceiver: MLP width / D")
      ->capture_default_str();
  app.add_option("--cnn-channels", config.cnn_channels, "CNN: channels c of the first layer")
      ->capture_default_str();
  app.add_option("--data-dir", data_options.dir, "Fashion-MNIST's directory")
      ->capture_default_str();
  app.add_option("--train-size", data_options.train_size,
                 "Training images (a seeded subset of the 55,000; 0 = all)")
      ->capture_default_str();
  app.add_option("--dev-size", data_options.dev_size, "Dev images (of 5,000; 0 = all)")
      ->capture_default_str();
  app.add_option("--test-size", data_options.test_size, "Test images (of 10,000; 0 = all)")
      ->capture_default_str();
  app.add_option("--data-seed", data_options.seed, "Seed of the subsets")->capture_default_str();
  app.add_option("--init-seed", init_seed, "Seed of the model's initialisation")
      ->capture_default_str();
  app.add_option("--pictures", pictures, "Test images drawn in perceiver-attention.png (0 = none)")
      ->capture_default_str();
  app.add_option("--latents-shown", shown, "Latents drawn per image")->capture_default_str();
  app.add_flag("--cost", cost,
               "Measure the cost of the cross-attention and of full self-attention as the image "
               "grows, instead of training");
  app.add_option("--cost-sides", cost_sides, "--cost: image sides")->capture_default_str();
  app.add_option("--cost-reps", cost_reps, "--cost: passes timed per side")->capture_default_str();
  app.add_option("--cost-max-mib", cost_max_mib,
                 "--cost: full self-attention is skipped where it would need more")
      ->capture_default_str();
  examples::AddTrainOptions(app, train_options, resume);

  return examples::Main(app, argc, argv, [&]() -> int {
    config.Validate();
    if (train_options.threads > 0) SetNumThreads(train_options.threads);
    if (cost) {
      std::printf("perceiver cost: %lld latents, D %lld, 1 batch image, forward + backward\n",
                  static_cast<long long>(config.latents), static_cast<long long>(config.dim));
      std::printf("%6s %8s | %14s %14s | %14s %14s | %8s\n", "side", "pixels", "cross ms",
                  "cross MiB", "self ms", "self MiB", "ms ratio");
      for (const tasks::AttentionCost& r :
           tasks::MeasureAttentionCost(config, cost_sides, cost_reps, cost_max_mib)) {
        if (r.full_ms >= 0)
          std::printf("%6lld %8lld | %14.3f %14.2f | %14.3f %14.2f | %8.1f\n",
                      static_cast<long long>(r.side), static_cast<long long>(r.pixels),
                      r.perceiver_ms, r.perceiver_mib, r.full_ms, r.full_mib,
                      r.full_ms / r.perceiver_ms);
        else
          std::printf("%6lld %8lld | %14.3f %14.2f | %14s %14s | %8s\n",
                      static_cast<long long>(r.side), static_cast<long long>(r.pixels),
                      r.perceiver_ms, r.perceiver_mib, "skipped", "(memory)", "-");
        std::fflush(stdout);
      }
      return 0;
    }
    auto data =
        std::make_shared<const tasks::PerceiverData>(tasks::LoadPerceiverData(data_options));
    tasks::PerceiverTask task(config, data, init_seed);
    const train::TaskTrainSummary summary = train::TrainTask(task, train_options, resume);
    const std::string out = train_options.out_dir;
    train::LoadTaskCheckpoint((std::filesystem::path(out) / "best.ckpt").string(), task.Model());
    task.Model().Eval();
    const auto [acc, loss] = task.Score(data->test);
    if (config.perceiver() && pictures > 0) {
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < std::min<int64_t>(pictures, data->test.size()); ++i)
        rows.push_back(i);
      const std::string png = (std::filesystem::path(out) / "perceiver-attention.png").string();
      tasks::DrawPerceiverAttention(png, static_cast<tasks::Perceiver&>(task.Classifier()),
                                    data->test, rows, shown);
      std::fprintf(stderr, "wrote %s\n", png.c_str());
    }
    std::printf(
        "perceiver test accuracy %.2f (model %s) | loss %.4f | %lld test images | %lld "
        "parameters | %lld steps | %.0f images/s\n",
        acc, config.model.c_str(), loss, static_cast<long long>(data->test.size()),
        static_cast<long long>(task.Model().NumParameters()), static_cast<long long>(summary.steps),
        summary.units_per_second);
    return 0;
  });
}
