// Corpus and sentence BLEU as sacreBLEU 2.x computes them (metrics/bleu.py): clipped n-gram counts
// against the per-n-gram maximum over references, closest reference length, smoothing.
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "attend/error.h"
#include "attend/metrics.h"
#include "metrics/internal.h"
#include "text/unicode.h"

namespace attend::metrics {
namespace {

using NGramCounts = std::vector<std::unordered_map<std::string_view, int64_t>>;  // [order]

double SmoothValue(const BleuOptions& options) {
  if (options.smooth_value) return *options.smooth_value;
  return options.smooth_method == Smoothing::kAddK ? 1.0 : 0.1;  // Chen & Cherry (2014) defaults
}

void CheckOptions(const BleuOptions& options) {
  ATTEND_CHECK(options.max_ngram_order >= 1 && options.max_ngram_order <= 64,
               "BLEU: max_ngram_order must be in [1, 64], got ", options.max_ngram_order);
  ATTEND_CHECK(!options.smooth_value ||
                   (std::isfinite(*options.smooth_value) && *options.smooth_value >= 0.0),
               "BLEU: smooth_value must be a finite number >= 0, got ",
               options.smooth_value.value_or(0.0));
}

void CheckStreams(size_t num_hyps, const std::vector<Stream>& references, const char* metric) {
  ATTEND_CHECK(!references.empty(), metric, ": no reference stream given");
  for (size_t k = 0; k < references.size(); ++k) {
    ATTEND_CHECK(references[k].size() == num_hyps, metric, ": reference stream ", k + 1, " has ",
                 references[k].size(), " lines but there are ", num_hyps, " hypotheses");
  }
}

std::string Where(const char* side, size_t stream, size_t line) {
  std::string s = std::string("BLEU: ") + side;
  if (stream > 0) s += " stream " + std::to_string(stream);
  return s + " line " + std::to_string(line + 1);
}

// _preprocess_segment: lowercase, rstrip, tokenize; then the spaces of str.split().
std::string Preprocess(const std::string& line, const BleuOptions& options,
                       const std::string& where) {
  std::u32string text = text::Decode(line, where);
  if (options.lowercase) text = text::Lower(text);
  text = detail::TokenizeCodePoints(text::RStrip(text), options.tokenize);
  return text::Encode(text::NormalizeSpaces(text));
}

// N-grams of a line whose tokens are separated by single spaces; keys view into `line`.
int64_t ExtractNGrams(const std::string& line, int max_order, NGramCounts& counts) {
  counts.assign(max_order, {});
  std::vector<size_t> starts, ends;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    starts.push_back(pos);
    ends.push_back(end);
    pos = end + 1;
  }
  const size_t num_tokens = starts.size();
  for (int n = 1; n <= max_order; ++n) {
    for (size_t i = 0; i + n <= num_tokens; ++i) {
      ++counts[n - 1][std::string_view(line).substr(starts[i], ends[i + n - 1] - starts[i])];
    }
  }
  return static_cast<int64_t>(num_tokens);
}

// The reference length closest to the hypothesis length; ties go to the shorter reference.
int64_t ClosestRefLength(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t closest_diff = -1, closest_len = -1;
  for (int64_t len : ref_lens) {
    const int64_t diff = std::abs(hyp_len - len);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest_len = len;
    } else if (diff == closest_diff && len < closest_len) {
      closest_len = len;
    }
  }
  return closest_len;
}

Signature BleuSignature(const BleuOptions& options, int num_refs) {
  std::string smooth(SmoothingName(options.smooth_method));
  if (options.smooth_method == Smoothing::kFloor || options.smooth_method == Smoothing::kAddK) {
    smooth.append("[").append(detail::FixedPoint(SmoothValue(options), 2)).append("]");
  }
  Signature sig;
  sig.fields = {{"nrefs", "#", std::to_string(num_refs)},
                {"case", "c", options.lowercase ? "lc" : "mixed"},
                {"eff", "e", options.effective_order ? "yes" : "no"},
                {"tok", "tok", std::string(TokenizerName(options.tokenize))},
                {"smooth", "s", smooth},
                {"version", "v", SignatureVersion()}};
  return sig;
}

}  // namespace

Smoothing ParseSmoothing(std::string_view name) {
  if (name == "exp") return Smoothing::kExp;
  if (name == "floor") return Smoothing::kFloor;
  if (name == "add-k") return Smoothing::kAddK;
  if (name == "none") return Smoothing::kNone;
  ATTEND_CHECK(false, "BLEU smoothing: unknown method '", name,
               "' (expected exp, floor, add-k or none)");
}

std::string_view SmoothingName(Smoothing smoothing) {
  switch (smoothing) {
    case Smoothing::kExp: return "exp";
    case Smoothing::kFloor: return "floor";
    case Smoothing::kAddK: return "add-k";
    case Smoothing::kNone: return "none";
  }
  ATTEND_ASSERT(false, "unknown smoothing");
}

BleuStats CorpusBleuStats(const std::vector<std::string>& hypotheses,
                          const std::vector<Stream>& references, const BleuOptions& options) {
  CheckOptions(options);
  ATTEND_CHECK(!hypotheses.empty(), "BLEU: no hypotheses given");
  CheckStreams(hypotheses.size(), references, "BLEU");
  const int max_order = options.max_ngram_order;
  BleuStats stats;
  stats.correct.assign(max_order, 0);
  stats.total.assign(max_order, 0);
  std::vector<std::string> ref_lines(references.size());
  std::vector<int64_t> ref_lens(references.size());
  NGramCounts ref_max, one_ref, hyp_ngrams;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    // The reference n-gram counts are the maximum over the references of each n-gram's count.
    ref_max.assign(max_order, {});
    for (size_t k = 0; k < references.size(); ++k) {
      ref_lines[k] = Preprocess(references[k][i], options, Where("reference", k + 1, i));
      ref_lens[k] = ExtractNGrams(ref_lines[k], max_order, one_ref);
      for (int n = 0; n < max_order; ++n) {
        for (const auto& [ngram, count] : one_ref[n]) {
          int64_t& slot = ref_max[n][ngram];
          slot = std::max(slot, count);
        }
      }
    }
    const std::string hyp = Preprocess(hypotheses[i], options, Where("hypothesis", 0, i));
    const int64_t hyp_len = ExtractNGrams(hyp, max_order, hyp_ngrams);
    stats.hyp_len += hyp_len;
    stats.ref_len += ClosestRefLength(hyp_len, ref_lens);
    for (int n = 0; n < max_order; ++n) {
      for (const auto& [ngram, count] : hyp_ngrams[n]) {
        stats.total[n] += count;
        const auto it = ref_max[n].find(ngram);
        if (it != ref_max[n].end()) stats.correct[n] += std::min(count, it->second);
      }
    }
  }
  return stats;
}

BleuScore BleuFromStats(const BleuStats& stats, const BleuOptions& options, int num_refs) {
  CheckOptions(options);
  const int max_order = options.max_ngram_order;
  ATTEND_CHECK(static_cast<int>(stats.correct.size()) == max_order &&
                   static_cast<int>(stats.total.size()) == max_order,
               "BLEU: statistics have ", stats.correct.size(), " matched and ", stats.total.size(),
               " total counts but max_ngram_order is ", max_order);
  ATTEND_CHECK(stats.hyp_len >= 0 && stats.ref_len >= 0, "BLEU: negative lengths in statistics (",
               stats.hyp_len, ", ", stats.ref_len, ")");
  BleuScore result;
  result.name = "BLEU";
  result.signature = BleuSignature(options, num_refs);
  result.sys_len = stats.hyp_len;
  result.ref_len = stats.ref_len;
  result.counts.assign(stats.correct.begin(), stats.correct.end());
  result.totals.assign(stats.total.begin(), stats.total.end());
  result.precisions.assign(max_order, 0.0);
  const double sys_len = static_cast<double>(stats.hyp_len);
  const double ref_len = static_cast<double>(stats.ref_len);
  result.bp = 1.0;
  if (stats.hyp_len < stats.ref_len)
    result.bp = stats.hyp_len > 0 ? std::exp(1 - ref_len / sys_len) : 0.0;
  result.ratio = stats.ref_len > 0 ? sys_len / ref_len : 0.0;

  bool any_match = false;
  for (int64_t c : stats.correct) any_match = any_match || c != 0;
  if (any_match) {
    // compute_bleu, with sacreBLEU's order of floating-point operations.
    const double smooth_value = SmoothValue(options);
    double smooth_mteval = 1.0;
    int eff_order = max_order;
    for (int n = 1; n <= max_order; ++n) {
      double& correct = result.counts[n - 1];
      double& total = result.totals[n - 1];
      if (options.smooth_method == Smoothing::kAddK && n > 1) {
        correct += smooth_value;
        total += smooth_value;
      }
      if (total == 0) break;
      if (options.effective_order) eff_order = n;
      if (correct == 0) {
        if (options.smooth_method == Smoothing::kExp) {
          smooth_mteval *= 2;
          result.precisions[n - 1] = 100. / (smooth_mteval * total);
        } else if (options.smooth_method == Smoothing::kFloor) {
          result.precisions[n - 1] = 100. * smooth_value / total;
        }
      } else {
        result.precisions[n - 1] = 100. * correct / total;
      }
    }
    double log_sum = 0.0;
    for (int n = 0; n < eff_order; ++n) {
      const double p = result.precisions[n];
      log_sum += p == 0.0 ? -9999999999.0 : std::log(p);  // sacreBLEU's my_log floor
    }
    result.score = result.bp * std::exp(log_sum / eff_order);
  }

  std::string prec;
  for (int n = 0; n < max_order; ++n) {
    if (n > 0) prec += "/";
    prec += detail::FixedPoint(result.precisions[n], 1);
  }
  result.verbose = prec + " (BP = " + detail::FixedPoint(result.bp, 3) +
                   " ratio = " + detail::FixedPoint(result.ratio, 3) +
                   " hyp_len = " + std::to_string(result.sys_len) +
                   " ref_len = " + std::to_string(result.ref_len) + ")";
  return result;
}

BleuScore CorpusBleu(const std::vector<std::string>& hypotheses,
                     const std::vector<Stream>& references, const BleuOptions& options) {
  return BleuFromStats(CorpusBleuStats(hypotheses, references, options), options,
                       static_cast<int>(references.size()));
}

BleuScore SentenceBleu(const std::string& hypothesis, const std::vector<std::string>& references,
                       const BleuOptions& options) {
  return CorpusBleu({hypothesis}, detail::OneLineStreams(references), options);
}

}  // namespace attend::metrics
