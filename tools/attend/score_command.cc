// `attend score`: corpus BLEU, chrF and chrF++ of a hypothesis file against reference files,
// printed as sacreBLEU prints them (`sacrebleu -f text`, or its JSON with --json), the word
// and character error rates of speech recognition, the alignment error rate of word alignments
// and the labelled bracket F1 of linearised trees, in the same layout.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "attend/error.h"
#include "attend/metrics.h"
#include "commands.h"

namespace attend::tools {
namespace {

// The metrics --metrics names, in the order their lines are printed (sacreBLEU's: BLEU, chrF,
// chrF++; then WER and CER). AER and bracket F1 read other hypotheses (alignments, trees), so
// each is scored alone.
enum class Metric { kBleu, kChrf, kChrfPlusPlus, kWer, kCer, kAer, kBracket };
struct MetricName {
  std::string_view name;
  Metric metric;
};
constexpr MetricName kMetricNames[] = {
    {"bleu", Metric::kBleu},      {"chrf", Metric::kChrf}, {"chrf++", Metric::kChrfPlusPlus},
    {"wer", Metric::kWer},        {"cer", Metric::kCer},   {"aer", Metric::kAer},
    {"bracket", Metric::kBracket}};

bool ScoredAlone(Metric m) { return m == Metric::kAer || m == Metric::kBracket; }

// The text metrics, which may be combined ("bleu, chrf, chrf++, wer, cer").
std::string MetricNameList() {
  std::string out;
  for (const MetricName& m : kMetricNames) {
    if (!ScoredAlone(m.metric)) out += (out.empty() ? "" : ", ") + std::string(m.name);
  }
  return out;
}

Metric ParseMetric(std::string_view name) {
  for (const MetricName& m : kMetricNames) {
    if (m.name == name) return m.metric;
  }
  ATTEND_CHECK(false, "attend score: unknown metric '", name, "' (expected ", MetricNameList(),
               "), or aer or bracket alone (word alignments, linearised trees)");
}

struct ScoreArgs {
  std::vector<std::string> references;
  std::string input = "-";
  std::vector<std::string> metrics = {"bleu"};
  std::string tokenize = "13a";
  bool lowercase = false;
  std::string smooth_method = "exp";
  double smooth_value = -1.0;  // < 0: the method's default
  bool json = false;
  bool short_signature = false;
  bool score_only = false;
  int width = 1;  // sacreBLEU's command-line default
  // chrF holds every n-gram of a line: ~400 bytes per character at worst (random text), so a
  // 256 KiB line costs ~100 MB and a few seconds. Segments are sentences or paragraphs.
  size_t max_line_bytes = size_t{256} << 10;
};

// Reads the file in blocks and stops at the first line over `max_line_bytes`: one line is scored
// in memory proportional to its length (chrF keeps every character n-gram of it), so a runaway
// line is an error naming it, found before it is read whole.
std::vector<std::string> ReadScoringFile(const std::string& path, size_t max_line_bytes) {
  const std::string name = path == "-" ? "<stdin>" : path;
  std::ifstream file;
  if (path != "-") {
    std::error_code ec;
    ATTEND_CHECK(!std::filesystem::is_directory(path, ec), "attend score: '", path,
                 "' is a directory, not a text file");
    file.open(path, std::ios::binary);
    ATTEND_CHECK(file.good(), "attend score: cannot open '", path, "' (missing or unreadable)");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string contents;
  size_t line = 1, line_bytes = 0;
  std::vector<char> block(size_t{1} << 16);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < n; ++i) {
      if (block[i] == '\n') {
        ++line;
        line_bytes = 0;
      } else {
        ATTEND_CHECK(++line_bytes <= max_line_bytes, "attend score: ", name, ":", line,
                     ": the line is longer than ", max_line_bytes,
                     " bytes (--max-line-bytes raises the limit)");
      }
    }
    contents.append(block.data(), n);
  }
  ATTEND_CHECK(!in.bad(), "attend score: error while reading '", name, "'");
  // Invalid UTF-8 is reported with the file, the line and the byte.
  return metrics::SplitScoringLines(contents, name);
}

// `--metrics aer`: the hypotheses are Pharaoh alignments, or the lines `attend translate
// --alignment hard` writes ("translation ||| 0-0 1-2", n-best lines too), whose alignment is the
// part after the last "|||"; the reference's "s?t" links are possible ones.
std::unique_ptr<metrics::Score> ScoreAlignments(const std::vector<std::string>& hypotheses,
                                                const std::string& hyp_name,
                                                const metrics::Stream& references,
                                                const std::string& ref_name, int width) {
  std::vector<metrics::AlignmentLinks> hyp(hypotheses.size()), sure(hypotheses.size()),
      possible(hypotheses.size());
  for (size_t k = 0; k < hypotheses.size(); ++k) {
    std::string_view line = hypotheses[k];
    const size_t bar = line.rfind("|||");
    if (bar != std::string_view::npos) line.remove_prefix(bar + 3);
    hyp[k] = metrics::ParsePharaoh(line, hyp_name + ":" + std::to_string(k + 1));
    sure[k] =
        metrics::ParsePharaoh(references[k], ref_name + ":" + std::to_string(k + 1), &possible[k]);
  }
  return std::make_unique<metrics::Score>(
      metrics::AlignmentScoreLine(metrics::AlignmentErrorRate(hyp, sure, possible), width));
}

int RunScore(const ScoreArgs& args) {
  ATTEND_CHECK(args.width >= 0 && args.width <= 20,
               "attend score: --width must be in [0, 20], got ", args.width);
  bool wanted[std::size(kMetricNames)] = {};
  for (const std::string& m : args.metrics) wanted[static_cast<size_t>(ParseMetric(m))] = true;
  auto want = [&wanted](Metric m) { return wanted[static_cast<size_t>(m)]; };
  size_t chosen = 0;
  for (bool w : wanted) chosen += w;
  for (const Metric alone : {Metric::kAer, Metric::kBracket}) {
    ATTEND_CHECK(!want(alone) || chosen == 1,
                 "attend score: ", alone == Metric::kAer ? "aer" : "bracket",
                 " reads other hypotheses than the text metrics (",
                 alone == Metric::kAer ? "word alignments" : "linearised trees",
                 ") and is scored alone; run attend score once per kind");
    ATTEND_CHECK(!want(alone) || args.references.size() == 1,
                 "attend score: ", alone == Metric::kAer ? "aer" : "bracket",
                 " takes one reference file, got ", args.references.size(), " (-r)");
  }
  // An error rate aligns against one reference; several would need a rule sclite and jiwer lack.
  ATTEND_CHECK(!(want(Metric::kWer) || want(Metric::kCer)) || args.references.size() == 1,
               "attend score: wer and cer take one reference file, got ", args.references.size(),
               " (-r)");
  metrics::BleuOptions bleu_options;
  bleu_options.tokenize = metrics::ParseTokenizer(args.tokenize);
  bleu_options.lowercase = args.lowercase;
  bleu_options.smooth_method = metrics::ParseSmoothing(args.smooth_method);
  if (args.smooth_value >= 0) bleu_options.smooth_value = args.smooth_value;

  const std::vector<std::string> hypotheses = ReadScoringFile(args.input, args.max_line_bytes);
  const std::string hyp_name = args.input == "-" ? "<stdin>" : args.input;
  ATTEND_CHECK(!hypotheses.empty(), "attend score: the hypotheses (", hyp_name,
               ") contain no lines");
  std::vector<metrics::Stream> references;
  for (const std::string& path : args.references) {
    ATTEND_CHECK(path != "-" || args.input != "-",
                 "attend score: stdin cannot be both the hypotheses and a reference");
    references.push_back(ReadScoringFile(path, args.max_line_bytes));
    ATTEND_CHECK(references.back().size() == hypotheses.size(), "attend score: the hypotheses (",
                 hyp_name, ") have ", hypotheses.size(), " lines but the reference ", path, " has ",
                 references.back().size());
  }

  metrics::ErrorRateOptions error_rate_options;
  error_rate_options.lowercase = args.lowercase;
  std::vector<std::unique_ptr<metrics::Score>> scores;
  const std::string ref_name = args.references.front() == "-" ? "<stdin>" : args.references.front();
  for (const MetricName& m : kMetricNames) {
    if (!want(m.metric)) continue;
    switch (m.metric) {
      case Metric::kBleu:
        scores.push_back(std::make_unique<metrics::BleuScore>(
            metrics::CorpusBleu(hypotheses, references, bleu_options)));
        break;
      case Metric::kChrf:
      case Metric::kChrfPlusPlus: {
        metrics::ChrfOptions chrf_options = m.metric == Metric::kChrfPlusPlus
                                                ? metrics::ChrfOptions::PlusPlus()
                                                : metrics::ChrfOptions{};
        chrf_options.lowercase = args.lowercase;
        scores.push_back(std::make_unique<metrics::ChrfScore>(
            metrics::CorpusChrf(hypotheses, references, chrf_options)));
        break;
      }
      case Metric::kWer:
        scores.push_back(std::make_unique<metrics::ErrorRateScore>(
            metrics::WordErrorRate(hypotheses, references.front(), error_rate_options)));
        break;
      case Metric::kCer:
        scores.push_back(std::make_unique<metrics::ErrorRateScore>(
            metrics::CharErrorRate(hypotheses, references.front(), error_rate_options)));
        break;
      case Metric::kAer:
        scores.push_back(
            ScoreAlignments(hypotheses, hyp_name, references.front(), ref_name, args.width));
        break;
      case Metric::kBracket: {
        metrics::BracketScore brackets;
        try {
          brackets = metrics::BracketF1(hypotheses, references.front());
        } catch (const Error& e) {
          // Only a reference can be wrong here (hypotheses never throw): say which file.
          throw Error("attend score: " + ref_name + ": " + e.what());
        }
        scores.push_back(
            std::make_unique<metrics::Score>(metrics::BracketScoreLine(brackets, args.width)));
        break;
      }
    }
  }
  std::string out;
  if (args.score_only && !args.json) {
    for (const auto& s : scores) out += s->FormatScore(args.width) + "\n";
  } else {
    std::vector<const metrics::Score*> views;
    for (const auto& s : scores) views.push_back(s.get());
    out = metrics::FormatScores(views, args.width, args.json, args.short_signature);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

Runner RegisterScoreCommand(CLI::App& app) {
  auto args = std::make_shared<ScoreArgs>();
  CLI::App* sub = app.add_subcommand(
      "score",
      "BLEU, chrF and chrF++ of a hypothesis file, as sacreBLEU computes and prints them; word "
      "and character error rates (WER, CER); alignment error rate (AER) of word alignments; "
      "labelled bracket F1 of linearised trees");
  sub->add_option("-r,--reference,--ref", args->references,
                  "Reference file (one sentence per line); repeat for several references")
      ->required();
  sub->add_option("-i,--input", args->input, "Hypothesis file ('-': stdin)")->capture_default_str();
  sub->add_option("--metrics,--metric", args->metrics,
                  "Comma-separated: " + MetricNameList() +
                      "; or aer (hypotheses: Pharaoh alignments, or translate --alignment hard "
                      "lines; reference: Pharaoh, s?t possible) or bracket (linearised trees) "
                      "alone")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--tokenize", args->tokenize, "BLEU tokenizer: 13a, none, intl, char")
      ->capture_default_str();
  sub->add_flag("--lowercase", args->lowercase,
                "Case-insensitive scores (every metric chosen; the signatures say case:lc)");
  sub->add_option("--smooth-method", args->smooth_method, "BLEU smoothing: exp, floor, add-k, none")
      ->capture_default_str();
  sub->add_option("--smooth-value", args->smooth_value,
                  "Value for floor (default 0.1) and add-k (default 1)");
  sub->add_flag("--json", args->json, "Print sacreBLEU's JSON instead of text lines");
  sub->add_flag("--short", args->short_signature, "Short signatures (#:1|c:mixed|...)");
  sub->add_flag("-b,--score-only", args->score_only, "Print only the scores");
  sub->add_option("-w,--width", args->width, "Decimals of the scores")->capture_default_str();
  sub->add_option("--max-line-bytes", args->max_line_bytes,
                  "A longer line (hypotheses or references) is an error naming it")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 30));
  return [args]() -> int { return RunScore(*args); };
}

}  // namespace attend::tools
