// The documents system's training step (bench/documents.sh's models and batch: vocabulary 6,817
// words, the size the pinned packages' pages give; embeddings 64, word and sentence GRUs 32 per
// direction, attention 32, 2 stacked layers, 6 sections; batch 32 pages). Every page of the
// synthetic batch has 24 sentences of 8 words (192 words): 24 is the cap the training split's
// pages almost all reach (1,010 of 1,124; mean 23.4), 8 the split's mean sentence length (7.8
// words). The flat and mean models read the same 192 words as one sequence. Items are words, as
// the trainer counts them. Cases: HAN with single attention layers, the flat BiGRU with one
// attention, mean pooling (no attention), and HAN with stacked latent attention.
#include <cstdint>
#include <random>
#include <vector>

#include "attend/ops.h"
#include "attend/tasks/documents.h"
#include "tasks/step.h"

namespace {

using namespace attend;

void BM_TaskStep_Documents(benchmark::State& state, tasks::DocumentModelKind kind,
                           tasks::DocumentAttentionKind attention) {
  const int64_t batch = 32, sentences = 24, words = 8, vocab = 6817;
  tasks::DocumentModelConfig config;
  config.model = kind;
  config.attention = attention;
  config.vocab = vocab;
  Generator gen(1);
  tasks::DocumentClassifier model(config, gen);
  // Word ids from 1 (<unk>) up: 0 is padding.
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> id(1, vocab - 1);
  std::vector<tasks::EncodedDocument> docs(batch);
  for (int64_t i = 0; i < batch; ++i) {
    docs[i].label = static_cast<int>(i % static_cast<int64_t>(tasks::kDocumentSections.size()));
    for (int64_t j = 0; j < sentences; ++j) {
      std::vector<int64_t> ids(words);
      for (int64_t t = 0; t < words; ++t) ids[t] = id(rng);
      docs[i].sentences.push_back(std::move(ids));
    }
  }
  std::vector<const tasks::EncodedDocument*> rows;
  for (const auto& d : docs) rows.push_back(&d);
  const tasks::DocumentBatch input = tasks::MakeDocumentBatch(rows);
  bench::TimeTrainingSteps(
      state, model, [&] { return CrossEntropy(model.Forward(input).logits, input.labels); },
      batch * sentences * words);
}

BENCHMARK_CAPTURE(BM_TaskStep_Documents, documents_han, tasks::DocumentModelKind::kHan,
                  tasks::DocumentAttentionKind::kSingle)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Documents, documents_flat, tasks::DocumentModelKind::kFlat,
                  tasks::DocumentAttentionKind::kSingle)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Documents, documents_mean, tasks::DocumentModelKind::kMean,
                  tasks::DocumentAttentionKind::kSingle)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Documents, documents_stacked, tasks::DocumentModelKind::kHan,
                  tasks::DocumentAttentionKind::kStacked)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
