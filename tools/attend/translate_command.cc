// `attend translate`: loads a checkpoint written by `attend train` and translates lines from
// stdin or a file with greedy or beam search; optionally prints alignments and writes one
// attention heatmap per sentence.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "attend/attention.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/nmt.h"
#include "attend/viz.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct TranslateArgs {
  std::string model_path, input = "-", output = "-", alignment, png_dir;
  nmt::SearchOptions search;
  int threads = 0;
  bool greedy = false, timing = false, no_fused = false;
};

int Run(TranslateArgs& a) {
  ATTEND_CHECK(a.alignment.empty() || a.alignment == "hard" || a.alignment == "soft",
               "translate: --alignment must be hard or soft, got '", a.alignment, "'");
  if (a.threads > 0) SetNumThreads(a.threads);
  if (a.no_fused) attention::SetFusedKernels(false);
  if (a.greedy) a.search.beam = 1;
  if (a.search.nbest > a.search.beam) a.search.nbest = a.search.beam;
  const nmt::LoadedModel m = nmt::LoadModel(a.model_path);
  io::ReadOptions ro;
  ro.max_bytes = 4096;
  const std::vector<std::string> lines = io::ReadLines(a.input, ro);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int64_t>> sources(lines.size());
  const int64_t max_len = m.model->config().arch == "transformer"
                              ? m.model->config().max_positions
                              : (m.model->config().score == "location"
                                     ? m.model->config().max_source_len
                                     : int64_t{1} << 40);
  for (size_t i = 0; i < lines.size(); ++i) {
    sources[i] = m.vocab.Encode(lines[i]);
    ATTEND_CHECK(static_cast<int64_t>(sources[i].size()) <= max_len, "translate: ", a.input,
                 ":", i + 1, ": the sentence has ", sources[i].size(),
                 " subwords; this model accepts at most ", max_len);
  }
  a.search.keep_attention = !a.alignment.empty() || !a.png_dir.empty();
  ATTEND_CHECK(!a.search.keep_attention || m.model->config().arch != "rnn", "translate: ",
               a.model_path, " is an rnn model without attention (one fixed context vector): ",
               "--alignment and --attention-png need rnn-attention or transformer");
  const auto results = nmt::Translate(*m.model, sources, a.search);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<std::string> out;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& hyps = results[i];
    for (size_t k = 0; k < hyps.size(); ++k) {
      std::string line = m.vocab.Decode(hyps[k].tokens);
      if (a.search.nbest > 1) {
        char score[64];
        std::snprintf(score, sizeof(score), "%.4f", hyps[k].score);
        line = std::to_string(i) + " ||| " + line + " ||| " + score;
      }
      if (a.alignment == "hard") line += " ||| " + nmt::HardAlignment(hyps[k].attention);
      if (a.alignment == "soft") line += " ||| " + nmt::SoftAlignment(hyps[k].attention);
      out.push_back(std::move(line));
    }
    if (!a.png_dir.empty() && !hyps.empty() && !sources[i].empty()) {
      namespace fs = std::filesystem;
      std::error_code ec;
      fs::create_directories(a.png_dir, ec);
      ATTEND_CHECK(!ec, "translate: cannot create ", a.png_dir, ": ", ec.message());
      std::vector<std::string> src = m.vocab.Pieces(sources[i]);
      std::vector<std::string> tgt = m.vocab.Pieces(hyps[0].tokens);
      tgt.push_back("</s>");
      const size_t s = src.size(), t = tgt.size();
      std::vector<float> weights(t * s);
      for (size_t r = 0; r < t; ++r)
        for (size_t j = 0; j < s; ++j) weights[r * s + j] = hyps[0].attention[r][j];
      char name[64];
      std::snprintf(name, sizeof(name), "sentence-%05zu.png", i + 1);
      viz::WriteAttentionHeatmap((fs::path(a.png_dir) / name).string(), src, tgt, weights);
    }
  }
  if (a.output == "-") {
    for (const auto& l : out) std::printf("%s\n", l.c_str());
  } else {
    io::WriteLinesAtomic(a.output, out);
  }
  if (a.timing)
    std::fprintf(stderr, "translated %zu sentences in %.3f s: %.2f sentences/s\n", lines.size(),
                 seconds, seconds > 0 ? static_cast<double>(lines.size()) / seconds : 0.0);
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
