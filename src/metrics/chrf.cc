// chrF and chrF++ as sacreBLEU 2.x computes them (metrics/chrf.py): character n-grams without
// whitespace, chrF++'s word n-grams after splitting off punctuation, per-sentence best reference,
// statistics summed over the corpus and one F-score at the end.
#include <memory>
#include <string_view>
#include <unordered_map>

#include "attend/error.h"
#include "attend/metrics.h"
#include "metrics/internal.h"
#include "text/unicode.h"

namespace attend::metrics {
namespace {

// The n-grams of one sentence: characters 1..char_order then words 1..word_order. The maps' keys
// view into `chars` and `words`, so an object is built in place and never moved.
struct SentenceNGrams {
  std::string chars;
  std::string words;
  std::vector<std::unordered_map<std::string_view, int64_t>> counts;  // [char_order + word_order]
};

bool IsAsciiPunct(char32_t c) {  // Python's string.punctuation
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

void CheckOptions(const ChrfOptions& o) {
  ATTEND_CHECK(o.char_order >= 0 && o.word_order >= 0 && o.char_order + o.word_order >= 1,
               "chrF: char_order and word_order must be >= 0 and not both 0, got ", o.char_order,
               " and ", o.word_order);
  ATTEND_CHECK(o.char_order <= 64 && o.word_order <= 64, "chrF: orders above 64 are not supported");
  ATTEND_CHECK(o.beta >= 0, "chrF: beta must be >= 0, got ", o.beta);
}

// Adds the n-grams of 1..max_order units of `text`, whose units start at starts[i] and end at
// ends[i] (byte offsets).
void AddNGrams(const std::string& text, const std::vector<size_t>& starts,
               const std::vector<size_t>& ends, int max_order,
               std::unordered_map<std::string_view, int64_t>* maps) {
  for (int n = 1; n <= max_order; ++n) {
    for (size_t i = 0; i + n <= starts.size(); ++i) {
      ++maps[n - 1][std::string_view(text).substr(starts[i], ends[i + n - 1] - starts[i])];
    }
  }
}

void Extract(const std::string& line, const ChrfOptions& o, const std::string& where,
             SentenceNGrams& out) {
  std::u32string text = text::Decode(line, where);
  if (o.lowercase) text = text::Lower(text);
  out.counts.assign(o.char_order + o.word_order, {});

  // Characters: whitespace removed unless kept (extract_all_char_ngrams).
  std::vector<size_t> starts, ends;
  out.chars.clear();
  for (char32_t c : text) {
    if (!o.whitespace && text::IsSpace(c)) continue;
    starts.push_back(out.chars.size());
    text::AppendUtf8(c, out.chars);
    ends.push_back(out.chars.size());
  }
  AddNGrams(out.chars, starts, ends, o.char_order, out.counts.data());
  if (o.word_order == 0) return;

  // Words: _remove_punctuation splits one punctuation mark off the end of a word, or else off
  // its start ('(hi)' gives '(hi' and ')', as in sacreBLEU).
  std::vector<std::u32string_view> words;
  const std::u32string_view view(text);
  size_t pos = 0;
  while (pos < view.size()) {
    while (pos < view.size() && text::IsSpace(view[pos])) ++pos;
    if (pos == view.size()) break;
    size_t end = pos;
    while (end < view.size() && !text::IsSpace(view[end])) ++end;
    const std::u32string_view w = view.substr(pos, end - pos);
    if (w.size() == 1) {
      words.push_back(w);
    } else if (IsAsciiPunct(w.back())) {
      words.push_back(w.substr(0, w.size() - 1));
      words.push_back(w.substr(w.size() - 1));
    } else if (IsAsciiPunct(w.front())) {
      words.push_back(w.substr(0, 1));
      words.push_back(w.substr(1));
    } else {
      words.push_back(w);
    }
    pos = end;
  }
  starts.clear();
  ends.clear();
  out.words.clear();
  for (const std::u32string_view w : words) {
    if (!out.words.empty()) out.words.push_back(' ');
    starts.push_back(out.words.size());
    for (char32_t c : w) text::AppendUtf8(c, out.words);
    ends.push_back(out.words.size());
  }
  AddNGrams(out.words, starts, ends, o.word_order, out.counts.data() + o.char_order);
}

// _compute_f_score on [hyp, ref, match] triples, with sacreBLEU's order of operations.
double FScore(const std::vector<int64_t>& stats, const ChrfOptions& o) {
  const double eps = 1e-16;
  const int order = o.char_order + o.word_order;
  const double factor = static_cast<double>(o.beta) * o.beta;
  double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (int i = 0; i < order; ++i) {
    const int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? static_cast<double>(n_match) / n_hyp : eps;
    const double rec = n_ref > 0 ? static_cast<double>(n_match) / n_ref : eps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (o.eps_smoothing) return 100 * score / order;
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec == 0.0) return 0.0;
  score = (1 + factor) * avg_prec * avg_rec;
  score /= (factor * avg_prec) + avg_rec;
  return 100 * score;
}

// _get_match_statistics for every order: [hyp count (0 when the reference has no n-gram of that
// order), ref count, clipped matches].
void MatchStats(const SentenceNGrams& hyp, const SentenceNGrams& ref, std::vector<int64_t>& out) {
  out.clear();
  for (size_t n = 0; n < hyp.counts.size(); ++n) {
    int64_t hyp_count = 0, match = 0, ref_count = 0;
    for (const auto& [ngram, count] : hyp.counts[n]) {
      hyp_count += count;
      const auto it = ref.counts[n].find(ngram);
      if (it != ref.counts[n].end()) match += std::min(count, it->second);
    }
    for (const auto& entry : ref.counts[n]) ref_count += entry.second;
    out.push_back(ref.counts[n].empty() ? 0 : hyp_count);
    out.push_back(ref_count);
    out.push_back(match);
  }
}

std::string Where(const char* side, size_t stream, size_t line) {
  std::string s = std::string("chrF: ") + side;
  if (stream > 0) s += " stream " + std::to_string(stream);
  return s + " line " + std::to_string(line + 1);
}

}  // namespace

ChrfScore CorpusChrf(const std::vector<std::string>& hypotheses,
                     const std::vector<Stream>& references, const ChrfOptions& options) {
  CheckOptions(options);
  ATTEND_CHECK(!hypotheses.empty(), "chrF: no hypotheses given");
  ATTEND_CHECK(!references.empty(), "chrF: no reference stream given");
  for (size_t k = 0; k < references.size(); ++k) {
    ATTEND_CHECK(references[k].size() == hypotheses.size(), "chrF: reference stream ", k + 1,
                 " has ", references[k].size(), " lines but there are ", hypotheses.size(),
                 " hypotheses");
  }
  const int order = options.char_order + options.word_order;
  std::vector<int64_t> totals(3 * order, 0), stats, best;
  auto hyp = std::make_unique<SentenceNGrams>();
  std::vector<std::unique_ptr<SentenceNGrams>> refs;
  for (size_t k = 0; k < references.size(); ++k) refs.push_back(std::make_unique<SentenceNGrams>());
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    Extract(hypotheses[i], options, Where("hypothesis", 0, i), *hyp);
    // The reference with the best sentence-level F-score counts; the first one wins ties.
    double best_f = -1.0;
    for (size_t k = 0; k < references.size(); ++k) {
      Extract(references[k][i], options, Where("reference", k + 1, i), *refs[k]);
      MatchStats(*hyp, *refs[k], stats);
      const double f = FScore(stats, options);
      if (f > best_f) {
        best_f = f;
        best = stats;
      }
    }
    for (int j = 0; j < 3 * order; ++j) totals[j] += best[j];
  }

  ChrfScore result;
  result.char_order = options.char_order;
  result.word_order = options.word_order;
  result.beta = options.beta;
  result.name = "chrF" + std::to_string(options.beta) + std::string(options.word_order, '+');
  result.score = FScore(totals, options);
  result.stats = std::move(totals);
  result.signature.fields = {{"nrefs", "#", std::to_string(references.size())},
                             {"case", "c", options.lowercase ? "lc" : "mixed"},
                             {"eff", "e", options.eps_smoothing ? "no" : "yes"},
                             {"nc", "nc", std::to_string(options.char_order)},
                             {"nw", "nw", std::to_string(options.word_order)},
                             {"space", "s", options.whitespace ? "yes" : "no"},
                             {"version", "v", SignatureVersion()}};
  return result;
}

ChrfScore SentenceChrf(const std::string& hypothesis, const std::vector<std::string>& references,
                       const ChrfOptions& options) {
  return CorpusChrf({hypothesis}, detail::OneLineStreams(references), options);
}

}  // namespace attend::metrics
