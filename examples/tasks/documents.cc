// attend-documents: manual pages classified by section with the Hierarchical Attention Network,
// a flat attention model or mean pooling (attend/tasks/documents.h). Builds the corpus in memory
// from the pinned packages' pages (or --man-dir), trains with the one trainer, scores the best
// checkpoint on the test split and draws the weights of a few test documents (weights.html).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "attend/tasks/documents.h"
#include "attend/train.h"
#include "tasks/common.h"

int main(int argc, char** argv) {
  using namespace attend;
  CLI::App app("Manual pages classified by section with hierarchical, flat or no attention",
               "attend-documents");
  tasks::DocumentsCorpusOptions corpus_options;
  tasks::DocumentModelConfig config;
  std::string model = "han", attention = "single";
  uint64_t model_seed = 1;
  int64_t draw = 4;
  train::TaskTrainOptions train_options;
  train_options.out_dir = "runs/documents";
  train_options.max_minutes = 5.0;
  train_options.valid_every = 200;
  train_options.warmup = 100;
  train_options.lr = 2e-3;
  bool resume = false;
  app.add_option("--model", model, "han | flat | mean (mean: the flat model without attention)")
      ->capture_default_str();
  app.add_option("--attention", attention,
                 "single | stacked: the attention layers of han and flat (stacked latent "
                 "attention with a learned query)")
      ->capture_default_str();
  app.add_option("--stacked-layers", config.stacked_layers, "Layers of stacked latent attention")
      ->capture_default_str();
  app.add_option("--embed-dim", config.embed_dim, "Word embedding size")->capture_default_str();
  app.add_option("--word-hidden", config.word_hidden, "Word GRU size per direction")
      ->capture_default_str();
  app.add_option("--sentence-hidden", config.sentence_hidden,
                 "Sentence GRU size per direction (han)")
      ->capture_default_str();
  app.add_option("--attn-dim", config.attn_dim, "Attention size")->capture_default_str();
  app.add_option("--model-seed", model_seed, "Seed of the model's initial weights")
      ->capture_default_str();
  app.add_option("--packages", corpus_options.packages,
                 "Packages whose English manual pages make the corpus")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--dpkg-info", corpus_options.dpkg_info, "dpkg's package lists")
      ->capture_default_str();
  app.add_option("--man-dir", corpus_options.man_dir,
                 "Read DIR/manN/*.gz instead of the packages' pages");
  app.add_option("--max-sentences", corpus_options.max_sentences,
                 "Sentences kept per page (the first)")
      ->capture_default_str();
  app.add_option("--max-words", corpus_options.max_words, "Words kept per sentence (the first)")
      ->capture_default_str();
  app.add_option("--vocab", corpus_options.vocab_size, "Vocabulary size (with <pad>, <unk>)")
      ->capture_default_str();
  app.add_option("--min-count", corpus_options.min_count,
                 "Training occurrences a word needs to enter the vocabulary")
      ->capture_default_str();
  app.add_option("--draw", draw, "Test documents drawn in weights.html")->capture_default_str();
  examples::AddTrainOptions(app, train_options, resume);

  return examples::Main(app, argc, argv, [&]() -> int {
    config.model = tasks::ParseDocumentModel(model);
    config.attention = tasks::ParseDocumentAttention(attention);
    const tasks::DocumentsCorpus corpus = tasks::BuildDocumentsCorpus(corpus_options);
    std::fprintf(stderr, "documents: %s\n", corpus.Summary().c_str());
    tasks::DocumentsTask task(corpus, config, model_seed);
    std::filesystem::create_directories(train_options.out_dir);
    const train::TaskTrainSummary summary = train::TrainTask(task, train_options, resume);
    std::fprintf(stderr, "documents: %lld steps in %s (%s), %.0f words/s, best dev macro-F1 %.2f\n",
                 static_cast<long long>(summary.steps),
                 train::FormatDuration(summary.seconds).c_str(), summary.stop_reason.c_str(),
                 summary.units_per_second, summary.best_score);
    train::LoadTaskCheckpoint(train_options.out_dir + "/best.ckpt", task.Model());
    const tasks::DocumentScores test = task.Score(2);
    const std::string html = train_options.out_dir + "/weights.html";
    task.WriteWeightsHtml(html, 2, draw);
    std::string per_class;
    for (size_t c = 0; c < tasks::kDocumentSections.size(); ++c)
      per_class += (c ? ", " : "") + std::string("man") +
                   std::to_string(tasks::kDocumentSections[c]) + " " +
                   std::to_string(static_cast<int>(test.f1[c] + 0.5));
    std::fprintf(stderr, "documents: test F1 per section: %s; weights drawn in %s\n",
                 per_class.c_str(), html.c_str());
    std::printf("documents test accuracy %.2f macro-F1 %.2f (model %s, attention %s)\n",
                test.accuracy, test.macro_f1, model.c_str(),
                config.model == tasks::DocumentModelKind::kMean ? "none" : attention.c_str());
    return 0;
  });
}
