// `attend transcribe`: loads a speech checkpoint written by `attend train --task speech` and
// transcribes WAV files (given on the command line or in a manifest) with greedy or beam search:
// one transcript per line in input order; optionally the alignment drawn over each spectrogram
// and, for a manifest, WER and CER against its transcripts.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/audio.h"
#include "attend/error.h"
#include "attend/files.h"
#include "attend/metrics.h"
#include "attend/nmt.h"
#include "attend/viz.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct TranscribeArgs {
  std::string model_path, manifest, output = "-", png_dir;
  std::vector<std::string> files;
  nmt::SearchOptions search;
  bool greedy = false, score = false, timing = false;
  int threads = 0;
};

// One input's picture: the spectrogram, the path of the attention over it, the characters.
void WritePicture(const TranscribeArgs& a, const nmt::LoadedModel& m, size_t index,
                  const nmt::Example& e, const nmt::Hypothesis& h) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(a.png_dir, ec);
  ATTEND_CHECK(!ec, "transcribe: cannot create ", a.png_dir, ": ", ec.message());
  std::vector<std::string> labels = m.vocab.Pieces(h.tokens);
  labels.push_back("</s>");
  char name[32];
  std::snprintf(name, sizeof(name), "%06zu.png", index);
  viz::WriteSpectrogramAlignment((fs::path(a.png_dir) / name).string(), e.features,
                                 e.source_length(), e.feature_dim, h.attention,
                                 m.model->config().FramesPerStep(), labels);
}

int Run(TranscribeArgs& a) {
  if (a.threads > 0) SetNumThreads(a.threads);
  if (a.greedy) a.search.beam = 1;
  a.search.nbest = 1;
  a.search.keep_attention = !a.png_dir.empty();
  ATTEND_CHECK(a.manifest.empty() != a.files.empty(),
               "transcribe: give WAV files or --manifest FILE (one of the two)");
  ATTEND_CHECK(!a.score || !a.manifest.empty(), "transcribe: --score needs --manifest");
  const nmt::LoadedModel m = nmt::LoadModel(a.model_path);
  ATTEND_CHECK(m.model->config().speech(), "transcribe: ", a.model_path,
               " is a translation model, not a speech model (use attend translate)");
  std::vector<audio::Utterance> inputs;
  if (!a.manifest.empty()) {
    inputs = audio::ReadManifest(a.manifest);
  } else {
    for (const auto& f : a.files) inputs.push_back({f, "", 0});
  }
  // A file that cannot be read is reported and gets an empty line: the others keep their places.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<nmt::Example> examples(inputs.size());
  bool failed = false;
  double seconds_of_audio = 0.0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      const audio::Waveform w = audio::ReadWav(inputs[i].path);
      seconds_of_audio += w.seconds();
      examples[i] = nmt::SpeechExample(w, m.features);
      examples[i].index = static_cast<int64_t>(i);
    } catch (const Error& e) {
      std::fprintf(stderr, "attend: error: %s\n", e.what());
      failed = true;
      examples[i].feature_dim = m.features.mel_bins;  // empty: transcribed as ""
    }
  }
  const auto results = nmt::TranslateExamples(*m.model, examples, a.search);
  std::string out;
  std::vector<std::string> hyps, refs;
  for (size_t i = 0; i < results.size(); ++i) {
    const std::string text = results[i].empty() ? "" : m.vocab.Decode(results[i][0].tokens);
    out += text;
    out += '\n';
    hyps.push_back(text);
    refs.push_back(inputs[i].transcript);
    if (!a.png_dir.empty() && !results[i].empty() && examples[i].source_length() > 0)
      WritePicture(a, m, i, examples[i], results[i][0]);
  }
  if (a.output == "-") {
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    io::WriteFileAtomic(a.output, out);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.timing)
    std::fprintf(stderr, "%zu files, %.1f s of audio in %.2f s: %.1fx real time\n", inputs.size(),
                 seconds_of_audio, seconds, seconds_of_audio / std::max(1e-9, seconds));
  if (a.score) {
    const auto wer = metrics::WordErrorRate(hyps, refs);
    const auto cer = metrics::CharErrorRate(hyps, refs);
    std::fprintf(stderr, "WER = %.2f\nCER = %.2f\n", wer.score, cer.score);
  }
  return failed ? 1 : 0;
}

}  // namespace

Runner RegisterTranscribeCommand(CLI::App& app) {
  auto a = std::make_shared<TranscribeArgs>();
  a->search.beam = 4;
  a->search.max_len_ratio = nmt::kSpeechLengthRatio;
  CLI::App* c = app.add_subcommand("transcribe", "Transcribe speech (WAV files) with a model");
  c->add_option("-m,--model", a->model_path, "Checkpoint written by attend train --task speech")
      ->required();
  c->add_option("files", a->files, "WAV files");
  c->add_option("--manifest", a->manifest, "A manifest: audio<TAB>transcript per line");
  c->add_option("-o,--output", a->output, "Output file ('-' = stdout)")->capture_default_str();
  c->add_option("-b,--beam", a->search.beam, "Beam size")->capture_default_str();
  c->add_flag("--greedy", a->greedy, "Greedy search (beam 1)");
  c->add_option("--length-penalty", a->search.length_penalty, "GNMT alpha (0 = none)")
      ->capture_default_str();
  c->add_option("--batch-size", a->search.batch_size, "Utterances decoded together")
      ->capture_default_str();
  c->add_option("--max-len-ratio", a->search.max_len_ratio, "Characters per feature frame")
      ->capture_default_str();
  c->add_option("--attention-png", a->png_dir,
                "Write each utterance's spectrogram with its alignment here");
  c->add_flag("--score", a->score, "Print WER and CER against the manifest's transcripts");
  c->add_flag("--timing", a->timing, "Print the real-time factor on stderr");
  c->add_option("--threads", a->threads, "Threads (0 = all cores)");
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
