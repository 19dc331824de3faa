// `attend translate`: loads a checkpoint written by `attend train` and translates lines from
// stdin or a file with greedy or beam search, streaming batch by batch; optionally prints
// alignments or the weight table (from the search's attention, or from one layer and head of a
// teacher-forced pass over each translation) and writes one attention heatmap per sentence.
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
#include "attend/shortlist.h"
#include "attend/viz.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct TranslateArgs {
  std::string model_path, input = "-", output = "-", alignment, png_dir, shortlist,
                          precision;  // empty: the checkpoint's (int8 when quantized, else f32)
  nmt::SearchOptions search;
  int threads = 0;
  size_t max_line_bytes = 16384;
  bool greedy = false, timing = false, no_fused = false;
  // --alignment-layer / --alignment-head: read alignments from this site (layer -1 = the last)
  // instead of the search's attention.
  bool site = false;
  int64_t layer = -1, head = 0;
};

// The longest source the model takes, in subwords.
int64_t SourceLimit(const models::ModelConfig& c) {
  if (c.arch == models::Arch::kTransformer || c.arch == models::Arch::kPervasive)
    return c.max_positions;
  // The location score and the tutorial wiring weigh max_source_len fixed positions.
  if (c.arch == models::Arch::kRnnAttention &&
      (c.score == models::Score::kLocation || c.wiring == models::Wiring::kTutorial))
    return c.max_source_len;
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
    if (a.alignment == "table" && !source.empty() && !h.attention.empty()) {
      std::vector<std::string> tgt = nmt::TableLabels(m.vocab.Pieces(h.tokens));
      tgt.push_back("</s>");
      *out += nmt::AlignmentTable(nmt::TableLabels(m.vocab.Pieces(source)), tgt, h.attention);
      *out += '\n';
    }
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

// Replaces each hypothesis's attention by the weights of the chosen site (decoder layer, head)
// over a teacher-forced pass of it in eval mode: what the model computes there for its own output.
void ReadSite(const TranslateArgs& a, models::Seq2Seq& model,
              const std::vector<std::vector<int64_t>>& sources,
              std::vector<std::vector<nmt::Hypothesis>>& results) {
  std::vector<std::pair<size_t, size_t>> at;  // (sentence, hypothesis)
  for (size_t i = 0; i < results.size(); ++i)
    if (!sources[i].empty())
      for (size_t h = 0; h < results[i].size(); ++h) at.emplace_back(i, h);
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, a.search.batch_size));
  for (size_t first = 0; first < at.size(); first += chunk) {
    const size_t n = std::min(chunk, at.size() - first);
    std::vector<std::vector<int64_t>> src(n), tgt(n);
    for (size_t k = 0; k < n; ++k) {
      src[k] = sources[at[first + k].first];
      tgt[k] = results[at[first + k].first][at[first + k].second].tokens;
    }
    const auto maps = nmt::CrossAttentionMaps(model, src, tgt);
    ATTEND_CHECK(static_cast<int64_t>(maps.size()) > a.layer, "translate: the model has ",
                 maps.size(), " cross-attention layers, asked for layer ", a.layer);
    for (size_t k = 0; k < n; ++k) {
      nmt::Hypothesis& h = results[at[first + k].first][at[first + k].second];
      h.attention = nmt::MapRows(maps[a.layer], static_cast<int64_t>(k), a.head,
                                 static_cast<int64_t>(tgt[k].size()) + 1,
                                 static_cast<int64_t>(src[k].size()));
    }
  }
}

// Reads the input in batches and writes each batch's translations as soon as they are done:
// a batch ends when it is full or when no further line is waiting, so that in a pipe every line
// is answered before the next is sent. Output line i is always the translation of input line i:
// an empty line gives an empty line, an over-long line is cropped (a warning names it), invalid
// UTF-8 is an error naming the line.
int Run(TranslateArgs& a) {
  ATTEND_CHECK(a.alignment.empty() || a.alignment == "hard" || a.alignment == "soft" ||
                   a.alignment == "table",
               "translate: --alignment must be hard, soft or table, got '", a.alignment, "'");
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
               "--alignment and --attention-png need rnn-attention, transformer or pervasive");
  // Quantized (or packed f32) once for the whole run: the weights no longer change.
  if (!a.precision.empty()) m.model->SetDecodePrecision(nn::ParsePrecision(a.precision));
  m.model->PrepareDecoding();
  if (!a.shortlist.empty()) {
    ATTEND_CHECK(m.model->config().token_source(),
                 "translate: --shortlist needs a model with "
                 "token sources");
    a.search.output_ids = nmt::LoadOutputIds(a.shortlist, m.vocab);
  }
  if (a.site) {
    const int64_t layers = nmt::CrossAttentionLayers(m.model->config()),
                  heads = nmt::CrossAttentionHeads(m.model->config());
    const int64_t given = a.layer;
    if (a.layer < 0) a.layer += layers;
    ATTEND_CHECK(a.layer >= 0 && a.layer < layers && a.head >= 0 && a.head < heads,
                 "translate: --alignment-layer ", given, " --alignment-head ", a.head,
                 " is not one of the model's ", layers, " layers x ", heads, " heads");
    ATTEND_CHECK(a.search.keep_attention,
                 "translate: --alignment-layer and --alignment-head "
                 "choose where --alignment or --attention-png read the attention; give one");
    a.search.keep_attention = false;  // the search's own weights are replaced
  }
  const int64_t max_len = SourceLimit(m.model->config());
  text::LineReader in(a.input, a.max_line_bytes);
  std::unique_ptr<io::AtomicFileWriter> file;
  if (a.output != "-") file = std::make_unique<io::AtomicFileWriter>(a.output);
  // Batches of several decoding chunks: translation sorts a batch by length into chunks.
  const size_t batch_lines = static_cast<size_t>(std::max<int64_t>(1, a.search.batch_size)) * 16;
  size_t translated = 0, target_tokens = 0;
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
    auto results = nmt::Translate(*m.model, sources, a.search);
    if (a.site) ReadSite(a, *m.model, sources, results);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& r : results)
      if (!r.empty()) target_tokens += r[0].tokens.size() + 1;  // with eos
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
    std::fprintf(stderr,
                 "translated %zu sentences in %.3f s: %.2f sentences/s, %.1f target tokens/s "
                 "(%s on %s)\n",
                 translated, seconds, seconds > 0 ? static_cast<double>(translated) / seconds : 0.0,
                 seconds > 0 ? static_cast<double>(target_tokens) / seconds : 0.0,
                 nn::PrecisionName(m.model->decode_precision()),
                 nn::PrecisionKernelName(m.model->decode_precision()));
  if (a.timing) {
    const AllocatorStats st = GetAllocatorStats();
    std::fprintf(stderr,
                 "tensor buffers: %llu from the system, %llu reused; peak %.1f MB in use, %.1f MB "
                 "cached\n",
                 static_cast<unsigned long long>(st.system_allocs),
                 static_cast<unsigned long long>(st.cache_hits),
                 static_cast<double>(st.peak_bytes_in_use) / 1e6,
                 static_cast<double>(st.bytes_cached) / 1e6);
  }
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
                "Append ' ||| ' and the alignment: hard (Pharaoh src-tgt pairs) or soft; or "
                "table: the weight table (source across, target down) after each translation");
  CLI::Option* layer =
      c->add_option("--alignment-layer", a->layer,
                    "Read the alignment from this decoder layer's cross-attention (-1 = last; a "
                    "teacher-forced pass over each translation) instead of the search's attention");
  CLI::Option* head =
      c->add_option("--alignment-head", a->head, "... and this head of it (default 0)");
  c->add_option("--attention-png", a->png_dir, "Write one attention heatmap per sentence here");
  c->add_option("--precision", a->precision,
                "Arithmetic of the model's projections (encoder, decoder, output layer): f32, "
                "bf16 or int8 (quantized once at load). Default: the checkpoint's (int8 for "
                "attend quantize's, else f32)");
  c->add_option("--shortlist", a->shortlist,
                "Score only the target subwords this file (attend shortlist) lists for the "
                "batch's source subwords");
  c->add_option("--threads", a->threads, "Threads (0 = all cores)");
  c->add_flag("--timing", a->timing, "Print sentences/s on stderr");
  c->add_flag("--no-fused", a->no_fused,
              "Run attention as compositions of engine ops instead of the fused kernels "
              "(same results; for measuring the kernels)");
  return [a, layer, head]() {
    a->site = layer->count() > 0 || head->count() > 0;
    return Run(*a);
  };
}

}  // namespace attend::tools
