// A lexical shortlist (Marian's): for each source subword, the target subwords it is likely to
// produce, learnt with IBM model 1 from the training pairs; decoding scores only the union of a
// batch's lists (plus the special ids and the most frequent targets) instead of the vocabulary.
// Written as text, so people can read it:
//   attend-shortlist 1 vocab_size=8000 digest=1a2b3c4d frequent=100 per_source=50 iterations=5
//   frequent<TAB>5 9 12 ...             the most frequent target ids, most frequent first
//   <src_id><TAB>t1 t2 ...              one line per source id with candidates, best first
// Ids 0..3 (pad, unk, bos, eos) are always scored, so no list holds them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace attend::nmt {

class Vocabulary;  // attend/nmt.h

struct ShortlistOptions {
  int64_t frequent = 100;   // the most frequent target ids of the training data, always scored
  int64_t per_source = 50;  // each source id's best target ids by IBM model 1's p(t | s)
  int64_t iterations = 5;   // EM iterations of IBM model 1 (with a NULL source word)
};

class Shortlist {
 public:
  // The largest vocabulary a shortlist takes.
  static constexpr int64_t kMaxVocabulary = int64_t{1} << 24;

  Shortlist() = default;

  // sources[i], targets[i]: subword ids of pair i (no bos/eos), ids < vocab_size; vocab_digest as
  // VocabularyDigest gives it. IBM model 1 (t(t | s), a NULL source word) starts uniform over the
  // target ids each source id co-occurs with and runs options.iterations EM iterations; each
  // source id keeps its options.per_source targets of highest t(t | s) (ties: lower id first).
  // Memory: 4 bytes per (source token + 1) x target token of each pair, 16 per distinct
  // co-occurring (source, target) id pair. With `log_likelihood`, receives the corpus
  // log-likelihood of the targets, sum_j log(sum_i t(t_j | s_i) / (|s| + 1)) over the pairs,
  // under the initial table and after each iteration (iterations + 1 values; EM never lowers it).
  static Shortlist Build(const std::vector<std::vector<int64_t>>& sources,
                         const std::vector<std::vector<int64_t>>& targets, int64_t vocab_size,
                         const std::string& vocab_digest, const ShortlistOptions& options,
                         std::vector<double>* log_likelihood = nullptr);
  // The text format above; attend::Error naming "shortlist FILE:LINE" for anything malformed: a bad
  // header or version, a number that is not one, an id out of range or special (0..3), a
  // duplicate id in a list or a second line for one source id, a list longer than the header's
  // frequent / per_source, an empty line, trailing characters.
  static Shortlist Load(const std::string& path);
  static Shortlist Parse(const std::string& text, const std::string& source_name);
  void Save(const std::string& path) const;  // atomically
  std::string ToText() const;

  int64_t vocab_size() const { return vocab_size_; }
  const std::string& vocab_digest() const { return digest_; }
  const ShortlistOptions& options() const { return options_; }
  // Throws attend::Error when the shortlist was built for another vocabulary (size or digest).
  void CheckVocabulary(int64_t vocab_size, const std::string& vocab_digest) const;
  // Sorted unique target ids to score for these sources: ids 0..3 (pad, unk, bos, eos: eos is
  // required for search to end), the frequent ones, and every source id's list. An id outside
  // the vocabulary is an attend::Error.
  std::vector<int64_t> Targets(const std::vector<std::vector<int64_t>>& sources) const;
  const std::vector<int64_t>& frequent() const { return frequent_; }
  // Best first; empty for ids never seen in training (attend::Error outside the vocabulary).
  const std::vector<int64_t>& candidates(int64_t source_id) const;
  // The source ids that have candidates, ascending.
  const std::vector<int64_t>& sources() const { return sources_; }

  // Equal lists, vocabulary and options (where it was read from does not count).
  friend bool operator==(const Shortlist& a, const Shortlist& b);

 private:
  int64_t vocab_size_ = 0;
  std::string digest_;
  ShortlistOptions options_;
  std::string name_;  // the file it was read from, for messages ("" when built)
  std::vector<int64_t> frequent_;
  std::vector<int64_t> sources_;                  // ascending
  std::vector<std::vector<int64_t>> candidates_;  // candidates_[k]: the list of sources_[k]
};

// A digest of a vocabulary's bytes (nmt::Vocabulary::bytes()): zlib's CRC-32 (io::Crc32, as the
// trainer compares vocabularies across ranks) as 8 lowercase hex digits; the shortlist records it.
std::string VocabularyDigest(const std::string& vocab_bytes);

// The shortlist file at `path`, checked to be built for `vocab`, as the search asks for it
// (SearchOptions::output_ids: a batch's token sources -> the target ids to score). What
// `attend translate --shortlist` and Python's load_translator(shortlist=) use.
std::function<std::vector<int64_t>(const std::vector<std::vector<int64_t>>&)> LoadOutputIds(
    const std::string& path, const Vocabulary& vocab);

// What a shortlist leaves to score on some sentences, decoded as `attend translate` batches
// them: consecutive groups of batch_size sentences.
struct ShortlistCoverage {
  int64_t sentences = 0, batches = 0;
  double mean_targets = 0.0;  // mean size of a batch's Targets()
  double mean_share = 0.0;    // mean of a batch's Targets().size() / vocab_size
  // With references: the share of their tokens that their batch's Targets() hold (a token
  // outside can never be produced); -1 without.
  double reference_recall = -1.0;
};
// references: empty, or one per source (ids as the sources').
ShortlistCoverage MeasureCoverage(const Shortlist& shortlist,
                                  const std::vector<std::vector<int64_t>>& sources,
                                  const std::vector<std::vector<int64_t>>& references,
                                  int64_t batch_size);

}  // namespace attend::nmt
