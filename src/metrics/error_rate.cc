// Word and character error rates: the Levenshtein alignment of each hypothesis to its reference,
// its substitutions, deletions, insertions and hits summed over the corpus (sclite's and jiwer's
// counts; the tie-break is attend/metrics.h's).
#include <string_view>
#include <unordered_map>

#include "attend/error.h"
#include "attend/metrics.h"
#include "metrics/internal.h"
#include "text/unicode.h"

namespace attend::metrics {
namespace {

enum class Unit { kWord, kChar };

// A sentence as the DP sees it: one id per unit (words interned per sentence pair, characters as
// code points), so that comparing two units is comparing two integers.
using Ids = std::vector<uint32_t>;

// The move into cell (i, j) of the DP table.
enum class Move : uint8_t { kDiagonal, kDeletion, kInsertion };

// The one place the tie-break lives: the diagonal (hit or substitution) on ties, then a deletion,
// then an insertion. Costs are those of the whole path through each move.
inline Move Choose(int64_t diagonal, int64_t deletion, int64_t insertion) {
  if (diagonal <= deletion && diagonal <= insertion) return Move::kDiagonal;
  return deletion <= insertion ? Move::kDeletion : Move::kInsertion;
}

// Splits `text` on whitespace runs (Python's str.split()).
std::vector<std::u32string_view> SplitWords(std::u32string_view text) {
  std::vector<std::u32string_view> words;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && text::IsSpace(text[pos])) ++pos;
    if (pos == text.size()) break;
    size_t end = pos;
    while (end < text.size() && !text::IsSpace(text[end])) ++end;
    words.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

std::u32string Prepare(std::string_view line, const ErrorRateOptions& options,
                       const std::string& where) {
  std::u32string text = text::Decode(line, where);
  if (options.lowercase) text = text::Lower(text);
  return text;
}

// Both sides of a sentence pair as ids; the decoded text stays in `ref_text` and `hyp_text`,
// which `ref_units` and `hyp_units` (when given) view into.
void ToIds(Unit unit, std::u32string& ref_text, std::u32string& hyp_text, Ids& ref, Ids& hyp,
           std::vector<std::u32string_view>* ref_units = nullptr,
           std::vector<std::u32string_view>* hyp_units = nullptr) {
  ref.clear();
  hyp.clear();
  if (unit == Unit::kChar) {
    // jiwer's cer keeps spaces as characters; a whitespace run counts as one space here.
    ref_text = text::NormalizeSpaces(ref_text);
    hyp_text = text::NormalizeSpaces(hyp_text);
    ref.assign(ref_text.begin(), ref_text.end());
    hyp.assign(hyp_text.begin(), hyp_text.end());
    return;
  }
  const std::vector<std::u32string_view> ref_words = SplitWords(ref_text);
  const std::vector<std::u32string_view> hyp_words = SplitWords(hyp_text);
  std::unordered_map<std::u32string_view, uint32_t> vocab;
  auto intern = [&vocab](std::u32string_view w) {
    return vocab.emplace(w, static_cast<uint32_t>(vocab.size())).first->second;
  };
  for (const std::u32string_view w : ref_words) ref.push_back(intern(w));
  for (const std::u32string_view w : hyp_words) hyp.push_back(intern(w));
  if (ref_units != nullptr) *ref_units = ref_words;
  if (hyp_units != nullptr) *hyp_units = hyp_words;
}

// The counts of the tie-broken optimal alignment, row by row over the reference: each cell
// carries the S, D and I of the path the tie-break chose into it, so two rows suffice.
struct PathCounts {
  int64_t s = 0, d = 0, i = 0;
  int64_t cost() const { return s + d + i; }
};

ErrorCounts CountEdits(const Ids& ref, const Ids& hyp) {
  const size_t m = hyp.size();
  std::vector<PathCounts> prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j].i = static_cast<int64_t>(j);  // row 0: insertions
  for (size_t r = 1; r <= ref.size(); ++r) {
    cur[0] = PathCounts{0, static_cast<int64_t>(r), 0};  // column 0: deletions
    for (size_t j = 1; j <= m; ++j) {
      const bool sub = ref[r - 1] != hyp[j - 1];
      switch (Choose(prev[j - 1].cost() + sub, prev[j].cost() + 1, cur[j - 1].cost() + 1)) {
        case Move::kDiagonal:
          cur[j] = prev[j - 1];
          cur[j].s += sub;
          break;
        case Move::kDeletion:
          cur[j] = prev[j];
          ++cur[j].d;
          break;
        case Move::kInsertion:
          cur[j] = cur[j - 1];
          ++cur[j].i;
          break;
      }
    }
    std::swap(prev, cur);
  }
  const PathCounts& end = prev[m];
  ErrorCounts c;
  c.substitutions = end.s;
  c.deletions = end.d;
  c.insertions = end.i;
  c.ref_len = static_cast<int64_t>(ref.size());
  c.hyp_len = static_cast<int64_t>(m);
  c.hits = c.ref_len - c.substitutions - c.deletions;
  return c;
}

// The tie-broken optimal alignment as moves from the start: the DP's choice in every cell (one
// byte each), then a backtrace from the end.
std::vector<Move> AlignIds(const Ids& ref, const Ids& hyp) {
  const size_t n = ref.size(), m = hyp.size();
  ATTEND_CHECK((n + 1) * (m + 1) <= (size_t{1} << 30), "AlignWords: ", n, " x ", m,
               " words are too many to align (more than 2^30 cells)");
  std::vector<Move> moves((n + 1) * (m + 1));
  std::vector<int64_t> prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) {
    prev[j] = static_cast<int64_t>(j);
    moves[j] = Move::kInsertion;
  }
  for (size_t r = 1; r <= n; ++r) {
    cur[0] = static_cast<int64_t>(r);
    moves[r * (m + 1)] = Move::kDeletion;
    for (size_t j = 1; j <= m; ++j) {
      const int64_t diagonal = prev[j - 1] + (ref[r - 1] != hyp[j - 1]);
      const Move move = Choose(diagonal, prev[j] + 1, cur[j - 1] + 1);
      moves[r * (m + 1) + j] = move;
      cur[j] =
          move == Move::kDiagonal ? diagonal : (move == Move::kDeletion ? prev[j] : cur[j - 1]) + 1;
    }
    std::swap(prev, cur);
  }
  std::vector<Move> path;
  for (size_t r = n, j = m; r > 0 || j > 0;) {
    const Move move = moves[r * (m + 1) + j];
    path.push_back(move);
    if (move != Move::kInsertion) --r;
    if (move != Move::kDeletion) --j;
  }
  return {path.rbegin(), path.rend()};
}

std::string Where(const char* metric, const char* side, size_t line) {
  return std::string(metric) + ": " + side + " line " + std::to_string(line + 1);
}

ErrorRateScore CorpusErrorRate(Unit unit, const std::vector<std::string>& hypotheses,
                               const Stream& references, const ErrorRateOptions& options) {
  const char* metric = unit == Unit::kWord ? "WER" : "CER";
  ATTEND_CHECK(!hypotheses.empty(), metric, ": no hypotheses given");
  ATTEND_CHECK(references.size() == hypotheses.size(), metric, ": the reference has ",
               references.size(), " lines but there are ", hypotheses.size(), " hypotheses");
  ErrorCounts total;
  std::u32string ref_text, hyp_text;
  Ids ref, hyp;
  for (size_t k = 0; k < hypotheses.size(); ++k) {
    hyp_text = Prepare(hypotheses[k], options, Where(metric, "hypothesis", k));
    ref_text = Prepare(references[k], options, Where(metric, "reference", k));
    ToIds(unit, ref_text, hyp_text, ref, hyp);
    const ErrorCounts c = CountEdits(ref, hyp);
    total.substitutions += c.substitutions;
    total.deletions += c.deletions;
    total.insertions += c.insertions;
    total.hits += c.hits;
    total.ref_len += c.ref_len;
    total.hyp_len += c.hyp_len;
  }

  ErrorRateScore result;
  result.name = metric;
  result.score = ErrorRate(total);
  result.counts = total;
  result.verbose = "S=" + std::to_string(total.substitutions) +
                   " D=" + std::to_string(total.deletions) +
                   " I=" + std::to_string(total.insertions) + " H=" + std::to_string(total.hits) +
                   " N=" + std::to_string(total.ref_len);
  result.json_counts = {{"substitutions", total.substitutions},
                        {"deletions", total.deletions},
                        {"insertions", total.insertions},
                        {"hits", total.hits},
                        {"ref_len", total.ref_len},
                        {"hyp_len", total.hyp_len}};
  result.signature.fields = {{"case", "c", options.lowercase ? "lc" : "mixed"},
                             {"version", "v", "attend-" + detail::ProjectVersion()}};
  return result;
}

}  // namespace

double ErrorRate(const ErrorCounts& counts) {
  if (counts.ref_len == 0) return counts.errors() > 0 ? 100.0 : 0.0;
  return 100.0 * static_cast<double>(counts.errors()) / static_cast<double>(counts.ref_len);
}

ErrorRateScore WordErrorRate(const std::vector<std::string>& hypotheses, const Stream& references,
                             const ErrorRateOptions& options) {
  return CorpusErrorRate(Unit::kWord, hypotheses, references, options);
}

ErrorRateScore CharErrorRate(const std::vector<std::string>& hypotheses, const Stream& references,
                             const ErrorRateOptions& options) {
  return CorpusErrorRate(Unit::kChar, hypotheses, references, options);
}

std::vector<AlignedWord> AlignWords(std::string_view reference, std::string_view hypothesis,
                                    const ErrorRateOptions& options) {
  std::u32string ref_text = Prepare(reference, options, "AlignWords: reference");
  std::u32string hyp_text = Prepare(hypothesis, options, "AlignWords: hypothesis");
  Ids ref, hyp;
  std::vector<std::u32string_view> ref_words, hyp_words;
  ToIds(Unit::kWord, ref_text, hyp_text, ref, hyp, &ref_words, &hyp_words);
  std::vector<AlignedWord> out;
  size_t r = 0, j = 0;
  for (const Move move : AlignIds(ref, hyp)) {
    AlignedWord w;
    if (move != Move::kInsertion) w.reference = text::Encode(ref_words[r]);
    if (move != Move::kDeletion) w.hypothesis = text::Encode(hyp_words[j]);
    switch (move) {
      case Move::kDiagonal:
        w.op = ref[r] == hyp[j] ? EditOp::kHit : EditOp::kSubstitution;
        ++r;
        ++j;
        break;
      case Move::kDeletion:
        w.op = EditOp::kDeletion;
        ++r;
        break;
      case Move::kInsertion:
        w.op = EditOp::kInsertion;
        ++j;
        break;
    }
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace attend::metrics
