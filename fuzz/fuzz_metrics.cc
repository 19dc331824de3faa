// The metrics on arbitrary bytes, as `attend score` meets files: SplitScoringLines over a
// hypothesis file and one to three reference files, then corpus and sentence BLEU, chrF and chrF++,
// with every tokenizer, lowercasing, smoothing and the output formats; WER and CER against the
// first reference file (their counts add up; the word alignment agrees with WER); and the
// tokenizers and Python's lowercase on each line and on the raw bytes.
//
// Input layout: two bytes of options, then the hypothesis file, then each reference file, the
// files separated by 0xFF bytes (never part of valid UTF-8).
//   byte 0: bits 0-1 tokenizer, bit 2 lowercase, bits 3-4 smoothing, bit 5 effective order,
//           bit 6 chrF keeps whitespace, bit 7 chrF's epsilon smoothing
//   byte 1: bits 0-1 smoothing value (default, 0, 0.5, 1), bits 2-3 max n-gram order - 1,
//           bits 4-5 chrF character order - 3, bits 6-7 chrF beta
#include <cmath>
#include <string>
#include <vector>

#include "attend/corpus.h"
#include "attend/metrics.h"
#include "fuzz_support.h"

namespace {

using namespace attend;

void CheckScore(const metrics::Score& s, bool bounded) {
  FUZZ_CHECK(std::isfinite(s.score) && s.score >= 0.0, "%s = %g", s.name.c_str(), s.score);
  FUZZ_CHECK(!bounded || s.score <= 100.0 + 1e-9, "%s = %g", s.name.c_str(), s.score);
  for (const int width : {0, 1, 2, 20}) {
    FUZZ_CHECK(text::IsValidUtf8(s.Format(width, true, false)));
    s.FormatScore(width);
    FUZZ_CHECK(text::IsValidUtf8(s.Json(width)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t a = data[0], b = data[1];
  const std::string_view rest = fuzz::AsView(data + 2, size - 2);

  // The tokenizers and lowercase on the raw bytes: valid UTF-8 or attend::Error.
  for (const metrics::Tokenizer t : {metrics::Tokenizer::k13a, metrics::Tokenizer::kNone,
                                     metrics::Tokenizer::kIntl, metrics::Tokenizer::kChar}) {
    std::string out;
    if (fuzz::Accepts([&] { out = metrics::Tokenize(rest, t); }))
      FUZZ_CHECK(text::IsValidUtf8(out), "tokenizer %s made invalid UTF-8",
                 std::string(metrics::TokenizerName(t)).c_str());
  }
  std::string lower;
  if (fuzz::Accepts([&] { lower = metrics::Lowercase(rest); }))
    FUZZ_CHECK(text::IsValidUtf8(lower));
  FUZZ_CHECK((metrics::FindInvalidUtf8(rest) < 0) == text::IsValidUtf8(rest),
             "the metrics' and the corpus' UTF-8 checks disagree");

  // The files, as `attend score` splits them.
  std::vector<std::string_view> files;
  for (size_t pos = 0;;) {
    const size_t sep = rest.find('\xff', pos);
    files.push_back(rest.substr(pos, sep == std::string_view::npos ? sep : sep - pos));
    if (sep == std::string_view::npos || files.size() == 4) break;
    pos = sep + 1;
  }
  std::vector<std::string> hyps;
  if (!fuzz::Accepts([&] { hyps = metrics::SplitScoringLines(files[0], "hyp"); })) return 0;
  if (hyps.empty()) return 0;  // `attend score` refuses a hypothesis file without lines
  std::vector<metrics::Stream> refs;
  for (size_t k = 1; k < files.size(); ++k) {
    metrics::Stream stream;
    if (!fuzz::Accepts([&] { stream = metrics::SplitScoringLines(files[k], "ref"); })) return 0;
    stream.resize(hyps.size());  // `attend score` requires as many lines; keep the data flowing
    refs.push_back(std::move(stream));
  }
  if (refs.empty()) refs.push_back(metrics::Stream(hyps.size()));
  for (const std::string& line : hyps) {
    FUZZ_CHECK(text::IsValidUtf8(line) && line.find('\n') == std::string::npos);
    metrics::Tokenize(line, metrics::Tokenizer(a & 3));
    metrics::Lowercase(line);
  }

  metrics::BleuOptions bleu;
  bleu.tokenize = metrics::Tokenizer(a & 3);
  bleu.lowercase = (a & 4) != 0;
  bleu.smooth_method = metrics::Smoothing((a >> 3) & 3);
  bleu.effective_order = (a & 32) != 0;
  const double smooth_values[] = {-1.0, 0.0, 0.5, 1.0};
  if (smooth_values[b & 3] >= 0) bleu.smooth_value = smooth_values[b & 3];
  bleu.max_ngram_order = 1 + ((b >> 2) & 3);
  metrics::ChrfOptions chrf;
  chrf.lowercase = bleu.lowercase;
  chrf.whitespace = (a & 64) != 0;
  chrf.eps_smoothing = (a & 128) != 0;
  chrf.char_order = 3 + ((b >> 4) & 3);
  chrf.beta = (b >> 6) & 3;
  metrics::ChrfOptions chrfpp = chrf;
  chrfpp.word_order = 2;

  const metrics::BleuScore corpus_bleu = metrics::CorpusBleu(hyps, refs, bleu);
  const metrics::ChrfScore corpus_chrf = metrics::CorpusChrf(hyps, refs, chrf);
  const metrics::ChrfScore corpus_chrfpp = metrics::CorpusChrf(hyps, refs, chrfpp);
  CheckScore(corpus_bleu, true);
  CheckScore(corpus_chrf, true);
  CheckScore(corpus_chrfpp, true);
  for (const bool json : {false, true}) {
    const std::string out =
        metrics::FormatScores({&corpus_bleu, &corpus_chrf, &corpus_chrfpp}, 2, json, json);
    FUZZ_CHECK(text::IsValidUtf8(out));
  }
  // The statistics give the same score as the corpus call.
  const metrics::BleuStats stats = metrics::CorpusBleuStats(hyps, refs, bleu);
  const metrics::BleuScore from_stats =
      metrics::BleuFromStats(stats, bleu, static_cast<int>(refs.size()));
  FUZZ_CHECK(from_stats.score == corpus_bleu.score, "%g from the statistics, %g from the corpus",
             from_stats.score, corpus_bleu.score);

  // The error rates against the first reference stream.
  metrics::ErrorRateOptions error_rate;
  error_rate.lowercase = bleu.lowercase;
  const metrics::ErrorRateScore wer = metrics::WordErrorRate(hyps, refs.front(), error_rate);
  const metrics::ErrorRateScore cer = metrics::CharErrorRate(hyps, refs.front(), error_rate);
  for (const metrics::ErrorRateScore* s : {&wer, &cer}) {
    const metrics::ErrorCounts& c = s->counts;
    FUZZ_CHECK(c.substitutions >= 0 && c.deletions >= 0 && c.insertions >= 0 && c.hits >= 0,
               "%s: negative counts", s->name.c_str());
    FUZZ_CHECK(c.substitutions + c.deletions + c.hits == c.ref_len &&
                   c.substitutions + c.insertions + c.hits == c.hyp_len,
               "%s: S=%lld D=%lld I=%lld H=%lld do not add up to N=%lld and %lld hypothesis units",
               s->name.c_str(), static_cast<long long>(c.substitutions),
               static_cast<long long>(c.deletions), static_cast<long long>(c.insertions),
               static_cast<long long>(c.hits), static_cast<long long>(c.ref_len),
               static_cast<long long>(c.hyp_len));
    FUZZ_CHECK(s->score == metrics::ErrorRate(c));
    CheckScore(*s, false);  // insertions take a rate past 100
  }
  for (const bool json : {false, true}) {
    const std::string out = metrics::FormatScores({&corpus_bleu, &wer, &cer}, 2, json, json);
    FUZZ_CHECK(text::IsValidUtf8(out));
  }
  int64_t aligned[4] = {};
  for (const metrics::AlignedWord& w :
       metrics::AlignWords(refs.front().front(), hyps.front(), error_rate)) {
    ++aligned[static_cast<int>(w.op)];
    FUZZ_CHECK((w.op == metrics::EditOp::kHit) == (w.reference == w.hypothesis));
  }
  const metrics::ErrorCounts first =
      metrics::WordErrorRate({hyps.front()}, {refs.front().front()}, error_rate).counts;
  FUZZ_CHECK(aligned[0] == first.hits && aligned[1] == first.substitutions &&
                 aligned[2] == first.deletions && aligned[3] == first.insertions,
             "AlignWords and WordErrorRate disagree");

  std::vector<std::string> first_refs;
  for (const metrics::Stream& s : refs) first_refs.push_back(s.front());
  CheckScore(metrics::SentenceBleu(hyps.front(), first_refs, bleu), true);
  CheckScore(metrics::SentenceChrf(hyps.front(), first_refs, chrfpp), true);
  return 0;
}
