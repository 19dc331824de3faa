// `attend corpus scenes` and `attend corpus cluttered`: the image corpora drawn from Fashion-MNIST
// (thin layers over data::BuildScenesCorpus and data::BuildClutteredCorpus).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "attend/corpus.h"
#include "attend/error.h"
#include "commands.h"

namespace attend::tools {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The options both corpora share.
template <typename Options>
void AddCommonOptions(CLI::App* cmd, Options& opt, const char* unit) {
  cmd->add_option("--out", opt.out_dir,
                  "Output directory (images/, train/dev/test.tsv, *.items.jsonl, stats.json)")
      ->required();
  cmd->add_option("--size", opt.size, "Canvas side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(48, 1024));
  cmd->add_option("--train", opt.train, std::string("Training ") + unit)
      ->capture_default_str()
      ->check(CLI::Range(0, 99999));
  cmd->add_option("--dev", opt.dev, std::string("Dev ") + unit)
      ->capture_default_str()
      ->check(CLI::Range(0, 99999));
  cmd->add_option("--test", opt.test, std::string("Test ") + unit + " (from Fashion-MNIST's t10k)")
      ->capture_default_str()
      ->check(CLI::Range(0, 99999));
  cmd->add_option("--clutter", opt.clutter, "Clutter fragments per image")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  cmd->add_option("--seed", opt.seed, "Draws everything")->capture_default_str();
  cmd->add_option("--fashion-dir", opt.fashion_dir, "Directory of Fashion-MNIST's *-ubyte.gz files")
      ->capture_default_str();
  cmd->add_option("--threads", opt.threads,
                  "Images drawn at once (the output does not depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
}

}  // namespace

Runner RegisterScenesCorpus(CLI::App& corpus) {
  CLI::App* cmd = corpus.add_subcommand(
      "scenes", "Captioned scenes of 2-4 Fashion-MNIST items among clutter (image captioning)");
  auto opt = std::make_shared<data::ScenesCorpusOptions>();
  auto quiet = std::make_shared<bool>(false);
  AddCommonOptions(cmd, *opt, "scenes");
  cmd->add_option("--captions", opt->captions_per_scene, "Different reference captions per scene")
      ->capture_default_str()
      ->check(CLI::Range(1, 10));
  cmd->add_option("--min-items", opt->min_items, "Fewest items per scene")
      ->capture_default_str()
      ->check(CLI::Range(1, 10));
  cmd->add_option("--max-items", opt->max_items, "Most items per scene (distinct classes)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10));
  cmd->add_flag("-q,--quiet", *quiet, "Print nothing on success");
  return [opt, quiet]() -> int {
    const auto start = std::chrono::steady_clock::now();
    const data::ScenesCorpusStats st = data::BuildScenesCorpus(*opt);
    if (*quiet) return 0;
    std::printf(
        "attend corpus scenes: %lld/%lld/%lld scenes (train/dev/test), %lld captions, %lld "
        "items, %zu caption words, %.1f MB of PNG in %.1f s -> %s\n",
        static_cast<long long>(st.scenes[0]), static_cast<long long>(st.scenes[1]),
        static_cast<long long>(st.scenes[2]),
        static_cast<long long>(st.captions[0] + st.captions[1] + st.captions[2]),
        static_cast<long long>(st.items[0] + st.items[1] + st.items[2]), st.vocabulary,
        static_cast<double>(st.bytes) / 1e6, SecondsSince(start), opt->out_dir.c_str());
    return 0;
  };
}

Runner RegisterClutteredCorpus(CLI::App& corpus) {
  CLI::App* cmd = corpus.add_subcommand(
      "cluttered", "One small Fashion-MNIST item per image among clutter (classification)");
  auto opt = std::make_shared<data::ClutteredCorpusOptions>();
  auto quiet = std::make_shared<bool>(false);
  AddCommonOptions(cmd, *opt, "images");
  cmd->add_option("--min-item", opt->min_item, "Smallest item side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(8, 1024));
  cmd->add_option("--max-item", opt->max_item, "Largest item side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(8, 1024));
  cmd->add_flag("-q,--quiet", *quiet, "Print nothing on success");
  return [opt, quiet]() -> int {
    const auto start = std::chrono::steady_clock::now();
    const data::ClutteredCorpusStats st = data::BuildClutteredCorpus(*opt);
    if (*quiet) return 0;
    std::printf(
        "attend corpus cluttered: %lld/%lld/%lld images (train/dev/test), %.1f MB of PNG in "
        "%.1f s -> %s\n",
        static_cast<long long>(st.images[0]), static_cast<long long>(st.images[1]),
        static_cast<long long>(st.images[2]), static_cast<double>(st.bytes) / 1e6,
        SecondsSince(start), opt->out_dir.c_str());
    return 0;
  };
}

}  // namespace attend::tools
