// Document classification with attention: manual pages classified by their section (1 commands,
// 2 system calls, 3 library functions, 5 file formats, 7 overviews, 8 administration), read from
// the gzip'ed troff pages of a pinned list of Debian packages. Models: the Hierarchical Attention
// Network (Yang et al. 2016: word attention builds sentence vectors, sentence attention the
// document vector), a flat model (one bidirectional GRU over all the words of the document, one
// attention) and mean pooling (the same GRU without attention). The attention layers are either a
// single context attention or stacked latent attention with a learned query.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention_models.h"
#include "attend/train.h"

namespace attend::tasks {

// The sections classified, in label order (label i is section kDocumentSections[i]).
inline constexpr std::array<int, 6> kDocumentSections = {1, 2, 3, 5, 7, 8};
int DocumentLabelOfSection(int section);  // -1 for a section not classified

// The packages whose English manual pages make the corpus (scripts/setup.sh installs them).
std::vector<std::string> DefaultManPackages();

// ---- reading manual pages ----

// The decompressed bytes of a gzip file. attend::Error naming the file when it is missing, empty,
// not gzip, truncated or corrupt.
std::string ReadGzipFile(const std::string& path);

// The target of a page that is only a ".so" redirect to another page ("man3/open.3"), or "".
std::string TroffRedirect(const std::string& troff);

// The running text of a troff (man macros) page as sentences of lowercase words: comments,
// definitions, table formats and layout requests are dropped; font macros (.B, .BR, ...) and
// headings (.SH) keep their words; escapes (\fB, \(em, \-, \*(..) become their text or nothing.
// A sentence ends at '.', '!' or '?' before a space, at a paragraph or heading, and at every line
// of unfilled text (.nf, .EX: code). Words are maximal runs of letters, digits, '_' and non-ASCII
// bytes.
std::vector<std::vector<std::string>> TroffToSentences(const std::string& troff);

struct ManPageFile {
  std::string path;  // the .gz file
  std::string name;  // "open.2" (the file name without .gz)
  int section = 0;   // from the directory manN
};

// The pages of `packages` as dpkg lists them (DPKG_INFO/PACKAGE.list or PACKAGE:ARCH.list, what
// `dpkg -L` reads): English pages only (/usr/share/man/manN/, never /usr/share/man/LANG/), sorted
// by path. Symbolic links (other names of a page) are left out and counted in *links.
// attend::Error for a package that is not installed or a listed page that is absent.
std::vector<ManPageFile> ListPackageManPages(const std::vector<std::string>& packages,
                                             const std::string& dpkg_info, int64_t* links);
// Every DIR/manN/*.gz (N = a digit), sorted by path; symbolic links left out and counted.
std::vector<ManPageFile> ListDirectoryManPages(const std::string& man_dir, int64_t* links);

// 0 train, 1 dev, 2 test: a hash of the page name (FNV-1a 64 mod 10: 0-7, 8, 9).
int DocumentSplitOfName(const std::string& name);

// ---- the corpus ----

struct Document {
  std::string name;                                 // "open.2"
  int label = 0;                                    // index into kDocumentSections
  std::vector<std::vector<std::string>> sentences;  // capped
};

struct DocumentsCorpusOptions {
  std::vector<std::string> packages = DefaultManPackages();
  std::string dpkg_info = "/var/lib/dpkg/info";
  std::string man_dir;         // when set, DIR/manN/*.gz instead of the packages' lists
  int64_t max_sentences = 24;  // the first sentences of each page
  int64_t max_words = 20;      // the first words of each sentence
  int64_t vocab_size = 8000;   // including <pad> and <unk>
  int64_t min_count = 2;       // training-split occurrences a word needs to enter the vocabulary
};

struct DocumentsCorpus {
  std::array<std::vector<Document>, 3> splits;           // train, dev, test; each sorted by name
  std::vector<std::string> vocab;                        // id -> word; 0 <pad>, 1 <unk>
  int64_t links = 0, redirects = 0, other_sections = 0;  // pages left out, by reason
  // "train 1234 (1: 80, 2: 400, ...) | dev ... | test ...; left out: ..."
  std::string Summary() const;
};

// Reads, converts, caps and splits every page; the vocabulary is the training split's most
// frequent words (ties by the word). No randomness: the same pages give the same corpus.
// attend::Error naming the file for an unreadable page or one without any text, and when a split
// ends up empty.
DocumentsCorpus BuildDocumentsCorpus(const DocumentsCorpusOptions& options);

// ---- batches and models ----

struct EncodedDocument {
  int label = 0;
  std::vector<std::vector<int64_t>> sentences;  // word ids, every sentence non-empty
};
EncodedDocument EncodeDocument(const Document& d, const std::vector<std::string>& vocab);

struct DocumentBatch {
  Tensor words;            // i64 [B, S, W], 0 = padding
  Tensor word_lengths;     // i64 [B, S], 0 for absent sentences
  Tensor sentence_counts;  // i64 [B]
  Tensor flat_words;       // i64 [B, L]: the document's words in order, sentences concatenated
  Tensor flat_lengths;     // i64 [B]
  Tensor labels;           // i64 [B]
};
DocumentBatch MakeDocumentBatch(const std::vector<const EncodedDocument*>& docs);

enum class DocumentModelKind { kHan, kFlat, kMean };
enum class DocumentAttentionKind { kSingle, kStacked };
DocumentModelKind ParseDocumentModel(const std::string& s);          // han | flat | mean
DocumentAttentionKind ParseDocumentAttention(const std::string& s);  // single | stacked
std::string ToString(DocumentModelKind k);
std::string ToString(DocumentAttentionKind k);

struct DocumentModelConfig {
  DocumentModelKind model = DocumentModelKind::kHan;
  DocumentAttentionKind attention = DocumentAttentionKind::kSingle;
  int64_t vocab = 0;
  int64_t embed_dim = 64;
  int64_t word_hidden = 32;      // per direction
  int64_t sentence_hidden = 32;  // per direction (HAN)
  int64_t attn_dim = 32;
  int stacked_layers = 2;  // the layers of stacked latent attention
  int64_t classes = static_cast<int64_t>(kDocumentSections.size());
  DType dtype = DType::kF32;
};

// Pools a sequence h [B, T, D] with padding mask bool [B, T] (true = padding) into [B, 1, D].
// single: attention::ContextAttention (u_t = tanh(W h_t + b), alpha = softmax(u_t . u_w)).
// stacked: attention::StackedLatentAttention whose query c_0 is a learned vector q [attn_dim]
// (the role u_w plays in the single layer), every layer re-scoring the sequence with the
// previous layer's context; the weights reported are the last layer's.
class AttentionPool : public nn::Module {
 public:
  AttentionPool(int64_t dim, int64_t attn_dim, DocumentAttentionKind kind, int stacked_layers,
                Generator& gen, DType dtype);
  struct Output {
    Tensor context;                     // [B, 1, D]
    Tensor weights;                     // [B, 1, T], the last layer's
    std::vector<Tensor> layer_weights;  // per layer [B, 1, T] (one for single)
  };
  Output Forward(const Tensor& h, const Tensor& mask) const;
  Tensor query;  // stacked only: [attn_dim]
  std::shared_ptr<attention::ContextAttention> single;
  std::shared_ptr<attention::StackedLatentAttention> stacked;
};

// han: embed -> word BiGRU per sentence -> word pool -> sentence BiGRU -> sentence pool -> linear.
// flat: embed -> one BiGRU over the document's words -> pool -> linear.
// mean: the flat model with the mean of the GRU states over the words instead of the pool.
class DocumentClassifier : public nn::Module {
 public:
  DocumentClassifier(const DocumentModelConfig& config, Generator& gen);
  struct Output {
    Tensor logits;            // [B, classes]
    Tensor word_weights;      // han: [B, S, W] (zero for absent sentences); flat: [B, L]; mean: -
    Tensor sentence_weights;  // han: [B, S]; otherwise undefined
  };
  Output Forward(const DocumentBatch& batch) const;
  const DocumentModelConfig& config() const { return config_; }

  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::GRU> word_rnn, sentence_rnn;
  std::shared_ptr<AttentionPool> word_pool, sentence_pool;
  std::shared_ptr<nn::Linear> classifier;

 private:
  DocumentModelConfig config_;
};

// ---- the task ----

struct DocumentScores {
  double accuracy = 0.0, macro_f1 = 0.0;  // percent
  std::vector<int> predicted;             // per document of the split
  std::vector<double> f1;                 // per class, percent
  double loss = 0.0;                      // mean cross-entropy (DocumentsTask::Score)
};
// Accuracy and macro-F1 (the mean over the classes of each class's F1; a class absent from
// both the truth and the predictions is left out of the mean).
DocumentScores ScoreDocuments(const std::vector<int>& truth, const std::vector<int>& predicted,
                              int64_t classes);

class DocumentsTask : public train::Task {
 public:
  DocumentsTask(const DocumentsCorpus& corpus, DocumentModelConfig config, uint64_t model_seed,
                int64_t eval_batch = 64);
  nn::Module& Model() override { return *model_; }
  int64_t NumTrain() const override { return static_cast<int64_t>(encoded_[0].size()); }
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;  // dev: score = macro-F1
  std::string ConfigJson() const override;
  std::string Describe() const override;
  std::string Unit() const override { return "words"; }
  double UnitsOf(const std::vector<int64_t>& rows) const override;

  // Scores split 0, 1 or 2 (eval mode, no grad).
  DocumentScores Score(int split);
  // An HTML page drawing, for the first `count` documents of `split`, every sentence's weight
  // and every word's weight as background intensity, with the true and predicted section;
  // written atomically.
  void WriteWeightsHtml(const std::string& path, int split, int64_t count);

  DocumentClassifier& classifier() { return *model_; }

 private:
  const DocumentsCorpus& corpus_;
  DocumentModelConfig config_;
  std::shared_ptr<DocumentClassifier> model_;
  std::array<std::vector<EncodedDocument>, 3> encoded_;
  int64_t eval_batch_;
};

}  // namespace attend::tasks
