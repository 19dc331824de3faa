// Sentence pairs (issue 17): is sentence B a paraphrase of sentence A? ABCNN-1/2/3 (Yin et al.
// 2016) and MwAN (Tan et al. 2018) against siamese encoders without cross attention, on a
// paraphrase corpus built offline from Debian's gettext catalogs.
//
// The corpus. Two different English msgids of one catalog (one text domain, e.g. gnucash.mo)
// that translators rendered by the very same msgstr are paraphrase candidates ("Quit" / "Exit",
// "Unable to fork" / "Can't fork"). One language alone is noisy (a language may not distinguish
// what English does), so a pair counts as a paraphrase only when at least `min_languages`
// languages agree; German alone gives ~1,350 such pairs, too few, while three languages out of
// every language the pinned packages carry give ~3,900. Negatives are the hard kind: pairs of the
// same catalog with high word overlap (Jaccard >= min_overlap) that no language ever translates
// alike ("Next Mon" / "Next Thu", "Select file" / "Select folder"). The split is by string: the
// paraphrase graph's connected components are assigned to train/dev/test by a hash of their
// smallest string, negatives are drawn within a split, so no string is in two splits. Each split
// holds as many negatives as positives (the base rate is 50%).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attend/attend.h"
#include "attend/attention.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "attend/nn/rnn.h"
#include "attend/train.h"

namespace attend::tasks {

// ---- the corpus ----

struct PairsCorpusOptions {
  // Reads <locale_dir>/<lang>/LC_MESSAGES/*.mo for every <lang>; empty: the catalogs of the pinned
  // corpus packages (scripts/corpus_packages.sh) as dpkg lists them under /usr/share/locale.
  std::string locale_dir;
  int64_t min_languages = 3;  // languages that must agree on a paraphrase (and translate both
                              // strings of a negative)
  double min_overlap = 0.5;   // negatives: word-set Jaccard at least this
  int64_t max_words = 12;     // longer strings are not used
  // Translations shared by more English strings than this are no evidence (generic words).
  int64_t max_group = 8;
  uint32_t dev_per_mille = 100, test_per_mille = 100;  // of the components (by hash)
  uint64_t seed = 1;  // which negatives are drawn, the order of the pairs and of their sides
};

struct SentencePair {
  std::vector<std::string> a, b;  // lower-cased words
  int64_t label = 0;              // 1 paraphrase, 0 not
  std::string catalog;            // the text domain it came from ("gnucash")
};

struct PairsCorpus {
  std::vector<SentencePair> splits[3];  // train, dev, test
  int64_t catalogs_read = 0, languages = 0, domains = 0;
  int64_t paraphrases_found = 0, negative_candidates = 0;
  int64_t largest_component = 0;  // strings in the largest paraphrase component
  std::string Summary() const;    // one line of counts
};

// Builds the corpus. attend::Error naming the directory when it holds no catalog, naming the
// file when a catalog is corrupt, and when a split ends up empty (too few catalogs).
PairsCorpus BuildPairsCorpus(const PairsCorpusOptions& options);

// The words of a msgid or msgstr: accelerator markers ('_', '&') dropped, ASCII lower-cased, cut
// at anything that is not a letter or digit (bytes >= 0x80 count as letters, except the
// punctuation of U+2000..U+203F: dashes, quotes, the ellipsis).
std::vector<std::string> PairWords(std::string_view text);

// ---- the models ----

// A batch: word ids [B, L] (0 = padding, 1 = unknown), lengths i64 [B] in [1, L], labels i64 [B].
struct PairBatch {
  Tensor a, b, a_len, b_len, label;
};

struct PairsModelConfig {
  std::string model = "abcnn3";  // siamese | abcnn1 | abcnn2 | abcnn3 | siamese-gru | mwan
  int64_t vocab = 0;
  int64_t max_len = 12;  // L: ABCNN-1's attention feature maps have weights per position
  int64_t embed_dim = 50;
  int64_t hidden = 64;  // convolution filters, or GRU units per direction
  int64_t width = 3;    // convolution width
  int64_t attn_dim = 32;
  int64_t classifier = 64;  // hidden units of the classifier
  std::vector<std::string> ways = {"concat", "bilinear", "dot", "minus"};  // MwAN's
  uint64_t seed = 1;
  std::string Describe() const;
};

// Every model: logits [B, 2]; `attention` (when not null) receives the attention drawn,
// [B, La', Lb'] (see AttentionAxes), or stays undefined for the siamese models.
class PairModel : public nn::Module {
 public:
  virtual Tensor Forward(const PairBatch& batch, Tensor* attention = nullptr) = 0;
  // What the rows and columns of the attention are: "words" (word i of A, word j of B; MwAN:
  // word i of B, word j of A) or "windows" (ABCNN-2's convolution windows).
  virtual std::string AttentionAxes() const { return "words"; }
};

// The CNN family. siamese: wide convolution, w-ap (mean over each window of `width`), all-ap,
// per sentence. abcnn1: A_ij = 1/(1 + |x_i - y_j|) over the word embeddings, and the attention
// feature maps F_a = A W_a, F_b = A^T W_b (W [L, E]) stacked onto the embeddings as extra input
// channels. abcnn2: the same over the convolution outputs, whose row and column sums weight the
// w-ap pooling (r_j = sum_{k=j}^{j+w-1} a_k h_k). abcnn3: both. Padding is masked out of A.
class AbcnnModel : public PairModel {
 public:
  AbcnnModel(const PairsModelConfig& config, Generator& gen, DType dtype = DType::kF32);
  Tensor Forward(const PairBatch& batch, Tensor* attention = nullptr) override;
  std::string AttentionAxes() const override { return attn1_ ? "words" : "windows"; }
  // The two stages on their own (for the tests): attention feature maps of ABCNN-1, and the
  // (attention-)pooled sentence after the convolution.
  static Tensor AttentionFeatureMaps(const Tensor& a_matrix, const Tensor& weight);
  static Tensor WindowPool(const Tensor& h, const Tensor& weights, int64_t width, int64_t len);

  std::shared_ptr<nn::Embedding> embed;
  Tensor w_a, w_b;  // ABCNN-1: [L, E]
  std::shared_ptr<nn::Conv1dModule> conv;
  std::shared_ptr<nn::Linear> fc1, fc2;

 private:
  PairsModelConfig config_;
  bool attn1_, attn2_;
};

// The GRU family. siamese-gru: one BiGRU per sentence, masked mean pooling. mwan: the BiGRU
// encodings h^a, h^b; for each way k (concat, bilinear, dot, minus) every word of B attends over
// A (softmax of the way's score) giving c^k_t; a gate g = sigmoid(W_k [c^k_t; h^b_t]) on
// x^k_t = [c^k_t; h^b_t]; the ways mixed per word by attention (s_kt = v^T tanh(W x^k_t),
// softmax over k); a BiGRU aggregation over B; A pooled by self-attention (learned query) into
// r^a; the aggregation pooled with r^a as query (additive score) into r^o. Classifier on
// [r^o; r^a; |r^o - r^a|; r^o * r^a]. (The paper aggregates each way with its own BiGRU before
// mixing; here the ways are mixed first and aggregated once, a quarter of the recurrent work.)
class MwanModel : public PairModel {
 public:
  MwanModel(const PairsModelConfig& config, Generator& gen, DType dtype = DType::kF32);
  Tensor Forward(const PairBatch& batch, Tensor* attention = nullptr) override;

  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::GRU> encoder, aggregator;
  std::vector<std::shared_ptr<attention::ScoreFunction>> scores;
  std::vector<std::shared_ptr<nn::Linear>> gates;
  std::shared_ptr<nn::Linear> mix_proj;
  Tensor mix_v, self_query;
  std::shared_ptr<attention::AdditiveScore> self_pool, out_pool;
  std::shared_ptr<nn::Linear> fc1, fc2;

 private:
  PairsModelConfig config_;
};

std::shared_ptr<PairModel> MakePairModel(const PairsModelConfig& config, Generator& gen,
                                         DType dtype = DType::kF32);

// ---- the task ----

// Word ids: 0 padding, 1 unknown, then the training words seen at least twice, by count.
class PairVocab {
 public:
  explicit PairVocab(const std::vector<SentencePair>& train, int64_t min_count = 2);
  int64_t Id(const std::string& word) const;
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::vector<std::string>& words() const { return words_; }

 private:
  std::vector<std::string> words_;
  std::vector<std::pair<std::string, int64_t>> sorted_;  // (word, id) by word, for lookups
};

// Pads (or cuts) the pairs rows into a batch of width max_len.
PairBatch MakePairBatch(const std::vector<SentencePair>& pairs, const std::vector<int64_t>& rows,
                        const PairVocab& vocab, int64_t max_len);

struct PairsMetrics {
  double accuracy = 0.0, f1 = 0.0;  // percent; F1 of the paraphrase class
  double loss = 0.0;                // mean cross-entropy
  int64_t n = 0;
};
PairsMetrics EvaluatePairs(PairModel& model, const std::vector<SentencePair>& pairs,
                           const PairVocab& vocab, int64_t max_len, int64_t batch_size = 128);

class PairsTask : public train::Task {
 public:
  // Builds the vocabulary from corpus.splits[0] and the model; max_train > 0 keeps only the first
  // max_train training pairs, max_eval > 0 the first max_eval dev pairs.
  PairsTask(PairsCorpus corpus, PairsModelConfig config, const PairsCorpusOptions& corpus_options,
            int64_t max_train = 0, int64_t max_eval = 0);
  nn::Module& Model() override { return *model_; }
  PairModel& Pairs() { return *model_; }
  int64_t NumTrain() const override { return static_cast<int64_t>(corpus_.splits[0].size()); }
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;
  std::string ConfigJson() const override;
  std::string Describe() const override;
  const PairsCorpus& corpus() const { return corpus_; }
  const PairVocab& vocab() const { return vocab_; }
  const PairsModelConfig& config() const { return config_; }

 private:
  PairsCorpus corpus_;
  PairsModelConfig config_;
  PairsCorpusOptions corpus_options_;
  PairVocab vocab_;
  std::shared_ptr<PairModel> model_;
};

// Draws the attention of the first `count` test paraphrases into one PNG: the pairs' matrices
// along the diagonal, the words of A (MwAN: of B) down the side and of B (MwAN: of A) along the
// top. Returns false (writes nothing) for a model without attention.
bool DrawPairAttention(const std::string& path, PairModel& model,
                       const std::vector<SentencePair>& pairs, const PairVocab& vocab,
                       int64_t max_len, int64_t count = 3);

}  // namespace attend::tasks
