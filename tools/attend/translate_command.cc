// `attend translate`: loads a checkpoint written by `attend train` and translates lines from
// stdin or a file with greedy or beam search, streaming batch by batch; optionally prints
// alignments and writes one attention heatmap per sentence.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "attend/attention.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/files.h"
#include "attend/text.h"
#include "attend/nmt.h"
#include "attend/viz.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct TranslateArgs {
  std::string model_path, input = "-", output = "-", alignment, png_dir;
  nmt::SearchOptions search;
  int threads = 0;
  size_t max_line_bytes = 16384;
  bool greedy = false, timing = false, no_fused = false;
};

// The longest source the model takes, in subwords.
int64_t SourceLimit(const models::ModelConfig& c) {
  if (c.arch == models::Arch::kTransformer) return c.max_positions;
  if (c.score == models::Score::kLocation) return c.max_source_len;
  return int64_t{1} << 40;
}

// Output lines of one input line: its translation (n-best: "i ||| text ||| score"), with the
// alignment appended when asked; and its heatmap.
void Emit(const TranslateArgs& a, const nmt::LoadedModel& m, size_t index,
          const std::vector<int64_t>& source, const std::vector<nmt::Hypothesis>& hyps,
          std::string* out) {
  for (const nmt::Hypothesis& h : hyps) {
    std::string line = m.vocab.Decode(h.tokens);
    if (a.search.nbest > 1) {
      char score[64];
      std::snprintf(score, sizeof(score), "%.4f", h.score);
      line = std::to_string(index) + " ||| " + line + " ||| " + score;
    }
    if (a.alignment == "hard") line += " ||| " + nmt::HardAlignment(h.attention);
    if (a.alignment == "soft") line += " ||| " + nmt::SoftAlignment(h.attention);
    *out += line;
    *out += '\n';
  }
  if (!a.png_dir.empty() && !hyps.empty() && !source.empty()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(a.png_dir, ec);
    ATTEND_CHECK(!ec, "translate: cannot create ", a.png_dir, ": ", ec.message());
    std::vector<std::string> src = m.vocab.Pieces(source);
    std::vector<std::string> tgt = m.vocab.Pieces(hyps[0].tokens);
    tgt.push_back("</s>");
    const size_t s = src.size(), t = tgt.size();
    std::vector<float> weights(t * s);
    for (size_t r = 0; r < t; ++r)
      for (size_t j = 0; j < s; ++j) weights[r * s + j] = hyps[0].attention[r][j];
    char name[64];
    std::snprintf(name, sizeof(name), "sentence-%05zu.png", index + 1);
    viz::WriteAttentionHeatmap((fs::path(a.png_dir) / name).string(), src, tgt, weights);
  }
}

// Reads the input in batches and writes each batch's translations as soon as they are done:
// a batch ends when it is full or when no further line is waiting, so that in a pipe every line
// is answered before the next is sent. Output line i is always the translation of input line i:
// an empty line gives an empty line, an over-long line is cropped (a warning names it), invalid
// UTF-8 is an error naming the line.
int Run(TranslateArgs& a) {
  ATTEND_CHECK(a.alignment.empty() || a.alignment == "hard" || a.alignment == "soft",
               "translate: --alignment must be hard or soft, got '", a.alignment, "'");
  if (a.threads > 0) SetNumThreads(a.threads);
  if (a.no_fused) attention::SetFusedKernels(false);
  if (a.greedy) a.search.beam = 1;
  if (a.search.nbest > a.search.beam) a.search.nbest = a.search.beam;
  const nmt::LoadedModel m = nmt::LoadModel(a.model_path);
  ATTEND_CHECK(!m.model->config().speech(), "translate: ", a.model_path,
               " is a speech model: transcribe audio with it (attend transcribe)");
  ATTEND_CHECK(!m.model->config().image(), "translate: ", a.model_path,
               " is a captioning model: describe images with it (attend caption)");
  a.search.keep_attention = !a.alignment.empty() || !a.png_dir.empty();
  ATTEND_CHECK(!a.search.keep_attention || m.model->config().arch != models::Arch::kRnn,
               "translate: ", a.model_path,
               " is an rnn model without attention (one fixed context vector): ",
               "--alignment and --attention-png need rnn-attention or transformer");
  const int64_t max_len = SourceLimit(m.model->config());
  text::LineReader in(a.input, a.max_line_bytes);
  std::unique_ptr<io::AtomicFileWriter> file;
  if (a.output != "-") file = std::make_unique<io::AtomicFileWriter>(a.output);
  // Batches of several decoding chunks: translation sorts a batch by length into chunks.
  const size_t batch_lines = static_cast<size_t>(std::max<int64_t>(1, a.search.batch_size)) * 16;
  size_t translated = 0;
  double seconds = 0;
  std::vector<text::LineReader::Line> lines;
  std::vector<std::vector<int64_t>> sources;
  for (bool more = true; more;) {
    lines.clear();
    while (lines.size() < batch_lines && (lines.empty() || in.Ready())) {
      text::LineReader::Line line;
      if (!in.Next(&line)) {
        more = false;
        break;
      }
      const size_t bad = text::FirstInvalidUtf8(line.text);
      ATTEND_CHECK(bad == std::string_view::npos, "translate: ", in.name(), ":", line.number,
                   ": invalid UTF-8 at byte ", bad, " of the line");
      if (line.cropped())
        std::fprintf(stderr,
                     "translate: warning: %s:%zu: the line is %zu bytes long; cropped to "
                     "its first %zu bytes (--max-line-bytes)\n",
                     in.name().c_str(), line.number, line.bytes, line.text.size());
      lines.push_back(std::move(line));
    }
    if (lines.empty()) break;
    const auto t0 = std::chrono::steady_clock::now();
    sources.assign(lines.size(), {});
    for (size_t i = 0; i < lines.size(); ++i) {
      sources[i] = m.vocab.Encode(lines[i].text);
      if (static_cast<int64_t>(sources[i].size()) > max_len) {
        std::fprintf(stderr,
                     "translate: warning: %s:%zu: the sentence has %zu subwords; this "
                     "model accepts at most %lld, so it is cropped to them\n",
                     in.name().c_str(), lines[i].number, sources[i].size(),
                     static_cast<long long>(max_len));
        sources[i].resize(static_cast<size_t>(max_len));
      }
    }
    const auto results = nmt::Translate(*m.model, sources, a.search);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string out;
    for (size_t i = 0; i < results.size(); ++i)
      Emit(a, m, lines[i].number - 1, sources[i], results[i], &out);
    if (file) {
      file->Write(out);
    } else {
      ATTEND_CHECK(
          std::fwrite(out.data(), 1, out.size(), stdout) == out.size() && std::fflush(stdout) == 0,
          "translate: cannot write to stdout");
    }
    translated += lines.size();
  }
  if (file) file->Commit();
  if (a.timing)
    std::fprintf(stderr, "translated %zu sentences in %.3f s: %.2f sentences/s\n", translated,
                 seconds, seconds > 0 ? static_cast<double>(translated) / seconds : 0.0);
  return 0;
}

}  // namespace

Runner RegisterTranslateCommand(CLI::App& app) {
  auto a = std::make_shared<TranslateArgs>();
  CLI::App* c = app.add_subcommand("translate", "Translate sentences with a trained model");
  c->add_option("-m,--model", a->model_path, "Checkpoint written by attend train")->required();
  c->add_option("-i,--input", a->input, "Input file, one sentence per line ('-' = stdin)")
      ->capture_default_str();
  c->add_option("-o,--output", a->output, "Output file ('-' = stdout)")->capture_default_str();
  c->add_option("-b,--beam", a->search.beam, "Beam size")->capture_default_str();
  c->add_flag("--greedy", a->greedy, "Greedy search (beam 1)");
  c->add_option("-n,--nbest", a->search.nbest, "Hypotheses per sentence: 'i ||| text ||| score'")
      ->capture_default_str();
  c->add_option("--length-penalty", a->search.length_penalty, "GNMT alpha (0 = none)")
      ->capture_default_str();
  c->add_option("--batch-size", a->search.batch_size, "Sentences decoded together")
      ->capture_default_str();
  c->add_option("--max-len-ratio", a->search.max_len_ratio)->capture_default_str();
  c->add_option("--no-repeat-ngram", a->search.no_repeat_ngram,
                "Never repeat an n-gram of this size in a translation (0 = off)")
      ->capture_default_str();
  c->add_option("--max-line-bytes", a->max_line_bytes,
                "Longer input lines are cropped to this many bytes (a warning names them)")
      ->capture_default_str();
  c->add_option("--alignment", a->alignment,
                "Append ' ||| ' and the alignment: hard (Pharaoh src-tgt pairs) or soft");
  c->add_option("--attention-png", a->png_dir, "Write one attention heatmap per sentence here");
  c->add_option("--threads", a->threads, "Threads (0 = all cores)");
  c->add_flag("--timing", a->timing, "Print sentences/s on stderr");
  c->add_flag("--no-fused", a->no_fused,
              "Run attention as compositions of engine ops instead of the fused kernels "
              "(same results; for measuring the kernels)");
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
