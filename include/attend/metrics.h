// Corpus and sentence BLEU and chrF/chrF++ computed exactly as sacreBLEU 2.x computes them, with
// its tokenizers, its score line, signature and JSON layout (docs/cli.md, "attend score"); and
// speech recognition's word and character error rates, counted as sclite and jiwer count them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attend::metrics {

// The sacreBLEU release whose behaviour this module reproduces; the signature's version field is
// kSacrebleuVersion + "+attend-" + the project version, so that a reader sees which sacreBLEU the
// numbers are comparable to and that attend, not sacreBLEU, printed them.
inline constexpr std::string_view kSacrebleuVersion = "2.6.0";
std::string SignatureVersion();

// One reference stream holds one line per hypothesis; several streams give several references.
using Stream = std::vector<std::string>;

// ---- Tokenizers (sacreBLEU's tokenizers/) ------------------------------------------------------
enum class Tokenizer {
  k13a,  // mteval-v13a: the default
  kNone,
  kIntl,  // mteval-v14 international: Unicode punctuation and symbols (Unicode 14.0 tables)
  kChar,  // one token per character
};
Tokenizer ParseTokenizer(std::string_view name);  // "13a", "none", "intl", "char"
std::string_view TokenizerName(Tokenizer tokenizer);
// Tokenizes one line of valid UTF-8 (sacreBLEU's tokenizer __call__, without lowercasing).
std::string Tokenize(std::string_view line, Tokenizer tokenizer);
// Python's str.lower() on valid UTF-8 (full case mapping and the Greek final sigma rule).
std::string Lowercase(std::string_view text);
// The first invalid byte offset of `text` as UTF-8 (overlong forms, surrogates and code points past
// U+10FFFF are invalid, as in Python's strict decoder), or -1 when all of it is valid.
int64_t FindInvalidUtf8(std::string_view text);

// Lines as sacreBLEU's command line reads a file: split on '\n' only (a final '\n' ends the last
// line), each stripped of trailing whitespace as Python's str.rstrip() does (Unicode whitespace,
// '\r' included). Invalid UTF-8 throws attend::Error naming `name`, the line and the byte.
std::vector<std::string> SplitScoringLines(std::string_view contents, std::string_view name);

// ---- Scores ------------------------------------------------------------------------------------
// sacreBLEU's reproducibility signature: key/value pairs in its order, version last.
struct SignatureField {
  std::string key;    // "nrefs"
  std::string abbr;   // "#" (the --short form)
  std::string value;  // "2"
};
struct Signature {
  std::vector<SignatureField> fields;
  // "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0+attend-0.1.0"
  std::string Format(bool short_form = false) const;
};

struct Score {
  // BleuScore and ChrfScore are held and deleted through Score (attend score's list of metrics).
  Score() = default;
  Score(const Score&) = default;
  Score(Score&&) = default;
  Score& operator=(const Score&) = default;
  Score& operator=(Score&&) = default;
  virtual ~Score() = default;

  std::string name;  // "BLEU", "chrF2", "chrF2++"
  double score = 0.0;
  std::string verbose;  // BLEU's "82.4/50.0/... (BP = ...)", WER's "S=1 D=0 ..."; empty for chrF
  Signature signature;
  // Integer fields JSON writes after the signature's: WER and CER's counts; empty otherwise.
  std::vector<std::pair<std::string, int64_t>> json_counts;

  // sacreBLEU's Score.format: "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944
  // hyp_len = 17 ref_len = 18)"; with the signature: "BLEU|nrefs:2|...|version:... = 48.53 ...".
  std::string Format(int width = 2, bool with_signature = false,
                     bool short_signature = false) const;
  // Only the score, "48.53" (sacreBLEU's --score-only).
  std::string FormatScore(int width = 2) const;
  // sacreBLEU's JSON (json.dumps(..., indent=1, ensure_ascii=False)): name, score rounded to
  // `width` decimals, signature, verbose_score (BLEU, WER, CER), then each signature field, then
  // json_counts as integers.
  std::string Json(int width = 2) const;
};

// Several scores as sacreBLEU's single-system output prints them: text lines right-aligned on
// " = ", or a JSON list (a lone object when there is one score).
std::string FormatScores(const std::vector<const Score*>& scores, int width, bool json,
                         bool short_signature = false);

// ---- BLEU --------------------------------------------------------------------------------------
enum class Smoothing { kExp, kFloor, kAddK, kNone };
Smoothing ParseSmoothing(std::string_view name);  // "exp", "floor", "add-k", "none"
std::string_view SmoothingName(Smoothing smoothing);

struct BleuOptions {
  Tokenizer tokenize = Tokenizer::k13a;
  bool lowercase = false;
  Smoothing smooth_method = Smoothing::kExp;
  std::optional<double> smooth_value;  // floor: 0.1, add-k: 1 when not given
  int max_ngram_order = 4;
  bool effective_order = false;  // stop at the highest order with any hypothesis n-gram
};

// Sufficient statistics of a corpus: lengths after tokenization and matched/total n-grams per
// order.
struct BleuStats {
  int64_t hyp_len = 0;
  int64_t ref_len = 0;  // sum over sentences of the closest reference length (ties: the shorter)
  std::vector<int64_t> correct;  // [max_ngram_order] clipped matches
  std::vector<int64_t> total;    // [max_ngram_order] hypothesis n-grams
};

struct BleuScore : Score {
  // add-k adds k to counts and totals of orders >= 2, as sacreBLEU's BLEUScore reports them.
  std::vector<double> counts;      // [max_ngram_order]
  std::vector<double> totals;      // [max_ngram_order]
  std::vector<double> precisions;  // [max_ngram_order], percent
  double bp = 1.0;
  double ratio = 0.0;  // hyp_len / ref_len (0 when ref_len is 0)
  int64_t sys_len = 0;
  int64_t ref_len = 0;
};

// `references` holds one or more streams, each as long as `hypotheses`. Lines are valid UTF-8.
BleuScore CorpusBleu(const std::vector<std::string>& hypotheses,
                     const std::vector<Stream>& references, const BleuOptions& options = {});
// Sentence BLEU is corpus BLEU over one sentence (sacreBLEU's sentence_score); sacreBLEU recommends
// effective_order = true for it.
BleuScore SentenceBleu(const std::string& hypothesis, const std::vector<std::string>& references,
                       const BleuOptions& options = {});
// Statistics of a corpus, and the score from statistics (sacreBLEU's compute_bleu).
BleuStats CorpusBleuStats(const std::vector<std::string>& hypotheses,
                          const std::vector<Stream>& references, const BleuOptions& options = {});
BleuScore BleuFromStats(const BleuStats& stats, const BleuOptions& options = {}, int num_refs = 1);

// ---- chrF / chrF++ -----------------------------------------------------------------------------
struct ChrfOptions {
  int char_order = 6;
  int word_order = 0;  // 2 gives chrF++
  int beta = 2;
  bool lowercase = false;
  bool whitespace = false;  // keep whitespace inside character n-grams
  // false (sacreBLEU's default): average precision and recall over the orders that both sides
  // have, as sacreBLEU < 2.0 did (signature eff:yes); true: chrF++.py's epsilon smoothing.
  bool eps_smoothing = false;
  static ChrfOptions PlusPlus() {
    ChrfOptions options;
    options.word_order = 2;
    return options;
  }
};

struct ChrfScore : Score {
  int char_order = 6;
  int word_order = 0;
  int beta = 2;
  // Summed over sentences, per order (characters 1..char_order, then words 1..word_order):
  // [hyp n-grams, ref n-grams, matches] of each sentence's best-matching reference.
  std::vector<int64_t> stats;
};

ChrfScore CorpusChrf(const std::vector<std::string>& hypotheses,
                     const std::vector<Stream>& references, const ChrfOptions& options = {});
ChrfScore SentenceChrf(const std::string& hypothesis, const std::vector<std::string>& references,
                       const ChrfOptions& options = {});

// ---- WER / CER ---------------------------------------------------------------------------------
// Word and character error rates as sclite and jiwer count them: each hypothesis is aligned to its
// reference by a minimum edit distance (Levenshtein, unit costs), the substitutions S, deletions
// D, insertions I, hits H and reference length N are summed over the corpus, and the rate is
// 100 * (S + D + I) / N percent (above 100 when the hypotheses insert much).
//
// Units: WER's words are the runs of non-whitespace (Python's str.split(): Unicode whitespace,
// leading and trailing whitespace ignored). CER's characters are the code points of the line with
// each whitespace run made one space and the ends stripped, so spaces count as characters, as in
// jiwer's cer. (jiwer differs on whitespace only: its WER keeps a lone tab or other non-space
// whitespace character inside a word, and its CER counts every character of a run of spaces.) No
// case folding or punctuation removal unless asked, as jiwer's default.
//
// The alignment: the standard dynamic programme, row by row over the reference. When several
// moves into a cell cost the same, the diagonal (hit or substitution) is taken first, then a
// deletion, then an insertion; the counts are those of the alignment a backtrace from the end with
// that order of preference gives. Equal-cost alignments can split S, D and I differently (ref
// "a b", hyp "b c": S=2, or D=1 I=1 H=1; this order of preference gives S=2);
// S + D + I is the edit distance either way. jiwer (rapidfuzz's opcodes) may break such ties
// otherwise, so its S, D, I may differ where its rate does not. Time O(n*m) per sentence, memory
// O(m) (m: hypothesis units).
//
// Empty lines: an empty reference counts every hypothesis unit as an insertion, an empty
// hypothesis every reference unit as a deletion (jiwer refuses an empty reference). A corpus whose
// references are all empty (N = 0) scores 0 when the hypotheses are empty too and 100 otherwise,
// rather than dividing by zero; the counts say what happened.
//
// Signatures: "case:mixed|version:attend-<project version>" (sacreBLEU has no WER or CER).
struct ErrorRateOptions {
  bool lowercase = false;  // Python's str.lower() on both sides first (signature case:lc)
};

struct ErrorCounts {
  int64_t substitutions = 0;
  int64_t deletions = 0;
  int64_t insertions = 0;
  int64_t hits = 0;
  int64_t ref_len = 0;  // N = S + D + H
  int64_t hyp_len = 0;  // S + I + H
  int64_t errors() const { return substitutions + deletions + insertions; }
};

// 100 * (S + D + I) / N, or for N = 0: 0 without errors and 100 with (see above).
double ErrorRate(const ErrorCounts& counts);

struct ErrorRateScore : Score {
  // name "WER" or "CER"; verbose "S=1 D=0 I=2 H=5 N=6"; JSON adds substitutions, deletions,
  // insertions, hits, ref_len and hyp_len as integers.
  ErrorCounts counts;
};

// Hypotheses first, as for BLEU and chrF; one reference stream, as long as `hypotheses`. Lines
// are valid UTF-8 (else attend::Error naming the side and line, "WER: hypothesis line 3: invalid
// UTF-8 at byte 4 (0xc3)").
ErrorRateScore WordErrorRate(const std::vector<std::string>& hypotheses, const Stream& references,
                             const ErrorRateOptions& options = {});
ErrorRateScore CharErrorRate(const std::vector<std::string>& hypotheses, const Stream& references,
                             const ErrorRateOptions& options = {});

// One sentence's word alignment, for showing the errors. Note the order: reference first, as
// sclite and jiwer take it. The steps run left to right over both sentences; their counts are
// those WordErrorRate gives for the pair (the same tie-break). Memory O(n*m): refuses more than
// 2^30 cells with attend::Error.
enum class EditOp { kHit, kSubstitution, kDeletion, kInsertion };
struct AlignedWord {
  EditOp op;
  std::string reference;   // empty for an insertion
  std::string hypothesis;  // empty for a deletion
};
std::vector<AlignedWord> AlignWords(std::string_view reference, std::string_view hypothesis,
                                    const ErrorRateOptions& options = {});

// ---- Word alignment (Och and Ney 2003) ----------------------------------------------------------
// One sentence's alignment: (source word, target word) pairs, 0-based.
using AlignmentLinks = std::vector<std::pair<int64_t, int64_t>>;
// Pharaoh's "0-0 1-2 2-1": links separated by whitespace, each "s-t" (decimal digits, no sign).
// "s?t" is a possible link: it goes into `possible` when given (cleared first), else it is read as
// a sure one. An empty line is an empty alignment. Links come back in the line's order, repeats
// kept. Malformed text throws attend::Error naming `where` (say "align.txt:3") and the link
// ("align.txt:3: link 2 '1-x' is not an alignment link ...").
AlignmentLinks ParsePharaoh(std::string_view line, std::string_view where,
                            AlignmentLinks* possible = nullptr);
// "s-t" links joined by single spaces, in the given order; a negative index is an attend::Error.
std::string FormatPharaoh(const AlignmentLinks& links);
struct AlignmentCounts {
  int64_t hypothesis = 0, sure = 0, possible = 0;  // |A|, |S|, |P| (P includes S)
  int64_t hit_sure = 0, hit_possible = 0;          // |A n S|, |A n P|
};
// Over a corpus, with each count summed over its sentences:
//   AER = 1 - (|A n S| + |A n P|) / (|A| + |S|),  precision = |A n P| / |A|,  recall = |A n S| /
//   |S|
// as fractions in [0, 1] (attend score prints percent). A, S and P are sets per sentence: a link
// given twice counts once. With no possible links (P = S) AER = 1 - F1 of A against S. Empty
// denominators: AER 0 when |A| + |S| = 0; precision (recall) 1 when both |A| and |S| are 0, and 0
// when only |A| (|S|) is.
struct AlignmentScore {
  AlignmentCounts counts;
  double aer = 0, precision = 0, recall = 0;
};
// Corpus AER of `hypotheses` against `sure` (and `possible` links beyond them, P = S u possible;
// empty = none), line by line; the lists must be equally long (attend::Error otherwise).
AlignmentScore AlignmentErrorRate(const std::vector<AlignmentLinks>& hypotheses,
                                  const std::vector<AlignmentLinks>& sure,
                                  const std::vector<AlignmentLinks>& possible = {});
// `attend score`'s line: "AER|version:attend-0.1.0 = 12.34 (P = 87.65 R = 87.65 |A| = 120
// |S| = 118)" (100 * AER; "|P| = ..." too when there are possible links; `width` decimals); the
// counts as JSON integers.
Score AlignmentScoreLine(const AlignmentScore& score, int width = 2);

// ---- Parsing as translation: linearised trees ---------------------------------------------------
// Trees as "(S (NP XX XX ) (VP XX ) )" (Vinyals et al. 2015), tokens separated by whitespace:
// "(LABEL" opens a constituent, ")" closes one (")LABEL" too, when LABEL is the open one's), any
// other token is a leaf (a word or XX). Labelled bracket precision/recall/F1 as evalb counts them:
// a constituent is its label and its leaf span; each sentence's brackets are a multiset (two NP
// over the same words in the reference need two in the hypothesis); matched, hypothesis and
// reference brackets are summed over the corpus, then P = matched / hypothesis, R = matched /
// reference, F1 = 2PR / (P + R) (fractions; empty denominators as AER's precision and recall).
// Every bracket counts, the root's included (these trees have no preterminals, and no TOP or
// punctuation for evalb to delete). Exact: the hypothesis is well-formed, has as many leaves as the
// reference and the same multiset of brackets.
// A reference must be one well-formed tree (attend::Error naming the line and what is wrong). A
// hypothesis that is not (an unmatched bracket, a word outside the tree, an empty constituent,
// no tree at all) never throws: it counts with the brackets it closes correctly and is counted in
// `ill_formed`. Unlike evalb, a sentence whose hypothesis has a different number of leaves is
// scored (its spans then mostly miss), not skipped.
struct BracketScore {
  int64_t sentences = 0, exact = 0;
  int64_t hypothesis_brackets = 0, reference_brackets = 0, matched = 0;
  double precision = 0, recall = 0, f1 = 0, exact_match = 0;
  int64_t ill_formed = 0;  // hypotheses that are not one well-formed tree
};
BracketScore BracketF1(const std::vector<std::string>& hypotheses,
                       const std::vector<std::string>& references);
// `attend score`'s line: "BracketF1|version:attend-0.1.0 = 91.20 (P = 91.00 R = 91.40
// exact = 45.0% n = 500)" (100 * F1; "ill-formed = k" too when k > 0); the counts as JSON integers.
Score BracketScoreLine(const BracketScore& score, int width = 2);

}  // namespace attend::metrics
