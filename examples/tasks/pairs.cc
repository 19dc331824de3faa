// attend-pairs: paraphrase or not, on sentence pairs built from Debian's gettext catalogs, with
// ABCNN-1/2/3, MwAN or a siamese encoder without cross attention (attend/tasks/pairs.h). Trains,
// evaluates the best checkpoint on the test split, prints
//   pairs test accuracy XX.XX F1 YY.YY (model NAME)
// and draws the attention of a few test paraphrases into OUT/attention.png.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "attend/tasks/pairs.h"
#include "tasks/common.h"

int main(int argc, char** argv) {
  using namespace attend;
  CLI::App app("Sentence pairs: ABCNN and MwAN against siamese encoders", "attend-pairs");
  train::TaskTrainOptions topt;
  topt.batch_size = 32;
  topt.lr = 2e-3;
  topt.valid_every = 200;
  bool resume = false;
  tasks::PairsCorpusOptions copt;
  tasks::PairsModelConfig mc;
  std::string ways = "concat,bilinear,dot,minus";
  int64_t max_train = 0, max_eval = 0;
  app.add_option(
         "--model", mc.model,
         "siamese | abcnn1 | abcnn2 | abcnn3 (CNN family); siamese-gru | mwan (BiGRU family)")
      ->capture_default_str()
      ->check(CLI::IsMember({"siamese", "abcnn1", "abcnn2", "abcnn3", "siamese-gru", "mwan"}));
  app.add_option("--ways", ways, "MwAN's attention functions: any of concat,bilinear,dot,minus")
      ->capture_default_str();
  app.add_option("--embed-dim", mc.embed_dim, "Word embedding size")->capture_default_str();
  app.add_option("--hidden", mc.hidden, "Convolution filters, or GRU units per direction")
      ->capture_default_str();
  app.add_option("--width", mc.width, "Convolution width (ABCNN)")->capture_default_str();
  app.add_option("--attn-dim", mc.attn_dim, "Attention size (MwAN)")->capture_default_str();
  app.add_option("--classifier", mc.classifier, "Classifier hidden units")->capture_default_str();
  app.add_option("--model-seed", mc.seed, "Seed of the initial weights")->capture_default_str();
  app.add_option("--locale-dir", copt.locale_dir,
                 "Catalogs <dir>/<lang>/LC_MESSAGES/*.mo (default: the pinned packages' catalogs)");
  app.add_option("--min-languages", copt.min_languages,
                 "Languages that must share a translation for a paraphrase")
      ->capture_default_str();
  app.add_option("--min-overlap", copt.min_overlap, "Word overlap (Jaccard) of a negative pair")
      ->capture_default_str();
  app.add_option("--max-words", copt.max_words, "Longest string used (words)")
      ->capture_default_str();
  app.add_option("--dev-per-mille", copt.dev_per_mille,
                 "Share of the paraphrase components held out for dev (per mille)")
      ->capture_default_str();
  app.add_option("--test-per-mille", copt.test_per_mille,
                 "Share of the paraphrase components held out for test (per mille)")
      ->capture_default_str();
  app.add_option("--corpus-seed", copt.seed, "Seed of the negatives drawn and the pairs' order")
      ->capture_default_str();
  app.add_option("--max-train", max_train, "Use only the first N training pairs (0 = all)")
      ->capture_default_str();
  app.add_option("--max-dev", max_eval, "Validate on the first N dev pairs only (0 = all)")
      ->capture_default_str();
  examples::AddTrainOptions(app, topt, resume);
  return examples::Main(app, argc, argv, [&] {
    mc.ways.clear();
    std::stringstream ss(ways);
    for (std::string w; std::getline(ss, w, ',');)
      if (!w.empty()) mc.ways.push_back(w);
    tasks::PairsCorpus corpus = tasks::BuildPairsCorpus(copt);
    std::fprintf(stderr, "pairs corpus: %s\n", corpus.Summary().c_str());
    tasks::PairsTask task(std::move(corpus), mc, copt, max_train, max_eval);
    std::filesystem::create_directories(topt.out_dir);
    const train::TaskTrainSummary s = train::TrainTask(task, topt, resume);
    train::LoadTaskCheckpoint(topt.out_dir + "/best.ckpt", task.Model());
    const tasks::PairsMetrics m = tasks::EvaluatePairs(task.Pairs(), task.corpus().splits[2],
                                                       task.vocab(), task.config().max_len);
    const std::string png = topt.out_dir + "/attention.png";
    if (tasks::DrawPairAttention(png, task.Pairs(), task.corpus().splits[2], task.vocab(),
                                 task.config().max_len))
      std::fprintf(stderr, "attention of three test paraphrases: %s\n", png.c_str());
    std::fprintf(stderr, "trained %lld steps in %.1f s (%.0f pairs/s)\n",
                 static_cast<long long>(s.steps), s.seconds, s.units_per_second);
    std::printf("pairs test accuracy %.2f F1 %.2f (model %s)\n", m.accuracy, m.f1,
                mc.model.c_str());
    return 0;
  });
}
