// `attend train`: reads parallel data (or, with --task speech, manifests of audio files and
// transcripts), trains (or loads) the subword or character vocabulary, builds the model the
// options describe and runs nmt::Train.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>

#include "attend/audio.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct TrainArgs {
  std::string task = "translation";  // translation | speech | caption
  // Data: a corpus directory (train.SRC, train.TGT, dev.SRC, dev.TGT), or explicit files.
  std::string data_dir, src_lang = "en", tgt_lang = "de";
  std::string train_src, train_tgt, dev_src, dev_tgt, train_tsv, dev_tsv;
  int64_t max_train = 0;      // 0 = all
  int64_t max_frames = 1500;  // speech: 15 s
  std::string vocab_path;
  nmt::VocabularyOptions vocab;
  models::ModelConfig model;
  nmt::TrainOptions train;
  bool resume = false, no_progress = false;
  // Guided alignment: a Pharaoh file, one line per training pair, and the loss's weight.
  std::string guided_alignment;
  double guided_alignment_weight = 0.1;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs ToPairs(const std::vector<data::SentencePair>& v, int64_t limit) {
  Pairs out;
  const size_t n = limit > 0 ? std::min<size_t>(v.size(), limit) : v.size();
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(v[i].src, v[i].tgt);
  return out;
}

Pairs ReadSplit(const TrainArgs& a, const std::string& split, const std::string& src,
                const std::string& tgt, const std::string& tsv, int64_t limit) {
  data::ReadOptions ro;
  if (!tsv.empty()) return ToPairs(data::ReadTsv(tsv, ro), limit);
  if (!src.empty() || !tgt.empty()) {
    ATTEND_CHECK(!src.empty() && !tgt.empty(), "train: give both --", split, "-src and --", split,
                 "-tgt");
    return ToPairs(data::ReadParallelText(src, tgt, ro), limit);
  }
  ATTEND_CHECK(!a.data_dir.empty(), "train: no ", split, " data (give --data DIR, --", split,
               "-src/--", split, "-tgt or --", split, "-tsv)");
  namespace fs = std::filesystem;
  const fs::path d(a.data_dir);
  return ToPairs(data::ReadParallelText((d / (split + "." + a.src_lang)).string(),
                                        (d / (split + "." + a.tgt_lang)).string(), ro),
                 limit);
}

// Speech: manifests DIR/train.tsv and DIR/dev.tsv (or --train-tsv / --dev-tsv), a character
// vocabulary over the transcripts, log-mel features.
int RunSpeech(TrainArgs& a) {
  namespace fs = std::filesystem;
  auto manifest = [&](const std::string& given, const char* split) {
    if (!given.empty()) return given;
    ATTEND_CHECK(!a.data_dir.empty(), "train --task speech: no ", split,
                 " manifest (give --data DIR with ", split, ".tsv, or --", split, "-tsv)");
    return (fs::path(a.data_dir) / (std::string(split) + ".tsv")).string();
  };
  std::vector<audio::Utterance> train = audio::ReadManifest(manifest(a.train_tsv, "train"));
  const std::vector<audio::Utterance> dev = audio::ReadManifest(manifest(a.dev_tsv, "dev"));
  if (a.max_train > 0 && static_cast<int64_t>(train.size()) > a.max_train)
    train.resize(a.max_train);
  nmt::Vocabulary vocab;
  const std::string saved_vocab = (fs::path(a.train.out_dir) / "vocab.model").string();
  if (!a.vocab_path.empty()) {
    vocab = nmt::Vocabulary::Load(a.vocab_path);
  } else if (a.resume) {
    vocab = nmt::Vocabulary::Load(saved_vocab);
  } else {
    std::vector<std::string> text;
    for (const auto& u : train) text.push_back(u.transcript);
    nmt::VocabularyOptions vo = a.vocab;
    vo.model_type = "char";
    vocab = nmt::Vocabulary::Train(text, vo);
    std::fprintf(stderr, "a %lld-piece character vocabulary from %zu transcripts\n",
                 (long long)vocab.size(), train.size());
  }
  const auto t0 = std::chrono::steady_clock::now();
  int64_t dropped = 0;
  const int threads = a.train.threads;
  const auto train_ex = nmt::LoadSpeechExamples(train, vocab, a.train.features, a.max_frames,
                                                a.train.max_len, threads, &dropped);
  const auto dev_ex = nmt::LoadSpeechExamples(dev, vocab, a.train.features, 0, 0, threads, nullptr);
  double frames = 0;
  for (const auto& e : train_ex) frames += static_cast<double>(e.source_length());
  std::fprintf(stderr,
               "features: %zu training utterances (%.2f h of audio), %zu dev, in %.1f s; dropped "
               "%lld longer than %lld frames or %lld characters\n",
               train_ex.size(), frames * a.train.features.hop_ms / 3.6e6, dev_ex.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               (long long)dropped, (long long)a.max_frames, (long long)a.train.max_len);
  std::vector<std::pair<std::string, std::string>> dev_text;
  for (const auto& u : dev) dev_text.emplace_back(u.path, u.transcript);
  a.model.src_vocab = 0;
  a.model.tgt_vocab = vocab.size();
  a.model.feature_dim = a.train.features.mel_bins;
  Generator gen(a.train.seed);
  auto model = models::MakeModel(a.model, gen);
  const nmt::TrainSummary s =
      nmt::Train(*model, vocab, train_ex, dev_ex, dev_text, a.train, a.resume);
  std::printf("steps %lld, %.0f s, %.0f target tokens/s, best dev WER %.2f, checkpoint %s\n",
              (long long)s.steps, s.seconds, s.tokens_per_second, -s.best_bleu,
              (fs::path(a.train.out_dir) / "best.ckpt").c_str());
  return 0;
}

// Captioning: DIR/train.tsv and DIR/dev.tsv (or --train-tsv / --dev-tsv), lines
// image<TAB>caption (paths relative to the file; several lines per image are several reference
// captions), a word vocabulary over the training captions, the images resized to the model's.
int RunCaption(TrainArgs& a) {
  namespace fs = std::filesystem;
  ATTEND_CHECK(a.model.image(),
               "train --task caption: --arch must be show-attend-tell or top-down");
  auto tsv = [&](const std::string& given, const char* split) {
    if (!given.empty()) return given;
    ATTEND_CHECK(!a.data_dir.empty(), "train --task caption: no ", split,
                 " captions (give --data DIR with ", split, ".tsv, or --", split, "-tsv)");
    return (fs::path(a.data_dir) / (std::string(split) + ".tsv")).string();
  };
  std::vector<data::ImageCaption> train = data::ReadCaptionsTsv(tsv(a.train_tsv, "train"));
  const std::vector<data::ImageCaption> dev = data::ReadCaptionsTsv(tsv(a.dev_tsv, "dev"));
  ATTEND_CHECK(!train.empty() && !dev.empty(), "train --task caption: no training or dev images");
  if (a.max_train > 0 && static_cast<int64_t>(train.size()) > a.max_train)
    train.resize(a.max_train);
  nmt::Vocabulary vocab;
  if (!a.vocab_path.empty()) {
    vocab = nmt::Vocabulary::Load(a.vocab_path);
  } else if (a.resume) {
    vocab = nmt::Vocabulary::Load((fs::path(a.train.out_dir) / "vocab.model").string());
  } else {
    std::vector<std::string> text;
    for (const auto& im : train) text.insert(text.end(), im.captions.begin(), im.captions.end());
    nmt::VocabularyOptions vo = a.vocab;
    vo.model_type = "word";
    vocab = nmt::Vocabulary::Train(text, vo);
    std::fprintf(stderr, "a %lld-word vocabulary from %zu captions\n", (long long)vocab.size(),
                 text.size());
  }
  a.model.src_vocab = 0;
  a.model.tgt_vocab = vocab.size();
  // The upper bound with the items' true boxes as regions reads them beside the captions.
  nmt::ImageBoxes train_boxes, dev_boxes;
  const bool true_boxes = a.model.arch == models::Arch::kTopDown && !a.model.proposals;
  if (true_boxes) {
    auto items = [&](const std::string& tsv_path) {
      const std::string p = tsv_path.substr(0, tsv_path.size() - 4) + ".items.jsonl";
      ATTEND_CHECK(tsv_path.size() > 4 && tsv_path.ends_with(".tsv") && fs::exists(p),
                   "train --true-boxes: the items' boxes of ", tsv_path, " are read from ", p,
                   ", which does not exist");
      return nmt::ItemBoxes(p);
    };
    train_boxes = items(tsv(a.train_tsv, "train"));
    dev_boxes = items(tsv(a.dev_tsv, "dev"));
  }
  const auto t0 = std::chrono::steady_clock::now();
  int64_t dropped = 0;
  const auto train_ex =
      nmt::LoadCaptionExamples(train, vocab, a.model, true, a.train.max_len, a.train.threads,
                               &dropped, true_boxes ? &train_boxes : nullptr);
  const auto dev_ex = nmt::LoadCaptionExamples(dev, vocab, a.model, false, 0, a.train.threads,
                                               nullptr, true_boxes ? &dev_boxes : nullptr);
  std::fprintf(stderr,
               "images: %zu training images with %zu captions, %zu dev images, in %.1f s; dropped "
               "%lld captions longer than %lld words\n",
               train.size(), train_ex.size(), dev_ex.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               (long long)dropped, (long long)a.train.max_len);
  std::vector<std::pair<std::string, std::string>> dev_text;
  // Validation scores BLEU against all of an image's captions, joined by newlines here.
  for (const auto& im : dev) {
    std::string refs;
    for (const auto& c : im.captions) refs += (refs.empty() ? "" : "\n") + c;
    dev_text.emplace_back(im.image, refs);
  }
  Generator gen(a.train.seed);
  auto model = models::MakeModel(a.model, gen);
  const nmt::TrainSummary s =
      nmt::Train(*model, vocab, train_ex, dev_ex, dev_text, a.train, a.resume);
  std::printf("steps %lld, %.0f s, %.0f target tokens/s, best dev BLEU %.2f, checkpoint %s\n",
              (long long)s.steps, s.seconds, s.tokens_per_second, s.best_bleu,
              (fs::path(a.train.out_dir) / "best.ckpt").c_str());
  return 0;
}

int Run(TrainArgs& a) {
  a.train.progress = !a.no_progress;
  ATTEND_CHECK(a.guided_alignment.empty() || a.task == "translation",
               "train: --guided-alignment needs --task translation");
  if (a.task == "speech") return RunSpeech(a);
  if (a.task == "caption") return RunCaption(a);
  if (a.task == "classify")
    return RunClassifyTraining(a.data_dir, a.train_tsv, a.dev_tsv, a.max_train, a.train, a.resume);
  ATTEND_CHECK(a.task == "translation", "train: --task '", a.task,
               "' is not one of translation | speech | caption | classify");
  const Pairs train = ReadSplit(a, "train", a.train_src, a.train_tgt, a.train_tsv, a.max_train);
  const Pairs dev = ReadSplit(a, "dev", a.dev_src, a.dev_tgt, a.dev_tsv, 0);
  ATTEND_CHECK(!train.empty(), "train: the training data is empty");
  ATTEND_CHECK(!dev.empty(), "train: the dev data is empty");
  namespace fs = std::filesystem;
  nmt::Vocabulary vocab;
  const std::string saved_vocab = (fs::path(a.train.out_dir) / "vocab.model").string();
  if (!a.vocab_path.empty()) {
    vocab = nmt::Vocabulary::Load(a.vocab_path);
  } else if (a.resume) {
    vocab = nmt::Vocabulary::Load(saved_vocab);
  } else {
    std::fprintf(stderr, "training a %lld-piece %s vocabulary on %zu pairs\n",
                 (long long)a.vocab.size, a.vocab.model_type.c_str(), train.size());
    std::vector<std::string> text;
    text.reserve(2 * train.size());
    for (const auto& [s, t] : train) {
      text.push_back(s);
      text.push_back(t);
    }
    vocab = nmt::Vocabulary::Train(text, a.vocab);
  }
  int64_t dropped = 0;
  auto train_ex = nmt::EncodePairs(vocab, train, a.train.max_len, &dropped);
  if (dropped > 0)
    std::fprintf(stderr, "dropped %lld training pairs longer than %lld subwords\n",
                 (long long)dropped, (long long)a.train.max_len);
  if (!a.guided_alignment.empty()) {
    // Line i aligns training pair i; each example keeps its pair's index through the filtering
    // above and the trainer's bucketing and shuffling.
    const auto alignments = nmt::ReadAlignments(a.guided_alignment);
    ATTEND_CHECK(
        alignments.size() == train.size() || (a.max_train > 0 && alignments.size() > train.size()),
        "train: ", a.guided_alignment, " has ", alignments.size(), " alignment lines for ",
        train.size(), " training pairs (one line per pair)");
    ATTEND_CHECK(a.guided_alignment_weight >= 0, "train: --guided-alignment-weight ",
                 a.guided_alignment_weight, " must be >= 0");
    const int64_t links =
        nmt::AttachAlignments(train_ex, vocab, train, alignments, a.guided_alignment);
    a.train.guided_alignment_weight = a.guided_alignment_weight;
    std::fprintf(stderr, "guided alignment: %lld subword links over %zu pairs, weight %g\n",
                 (long long)links, train_ex.size(), a.guided_alignment_weight);
  }
  const auto dev_ex = nmt::EncodePairs(vocab, dev, a.train.max_len);
  a.model.src_vocab = a.model.tgt_vocab = vocab.size();
  Generator gen(a.train.seed);
  auto model = models::MakeModel(a.model, gen);
  const nmt::TrainSummary s = nmt::Train(*model, vocab, train_ex, dev_ex, dev, a.train, a.resume);
  std::printf("steps %lld, %.0f s, %.0f target tokens/s, best dev BLEU %.2f, checkpoint %s\n",
              (long long)s.steps, s.seconds, s.tokens_per_second, s.best_bleu,
              (fs::path(a.train.out_dir) / "best.ckpt").c_str());
  return 0;
}

}  // namespace

Runner RegisterTrainCommand(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "Train a translation or speech recognition model");
  c->add_option("--task", a->task, "translation | speech | caption | classify")
      ->capture_default_str();
  c->add_option("--data", a->data_dir, "Corpus directory with train.SRC/TGT and dev.SRC/TGT");
  c->add_option("--src", a->src_lang, "Source language suffix")->capture_default_str();
  c->add_option("--tgt", a->tgt_lang, "Target language suffix")->capture_default_str();
  c->add_option("--train-src", a->train_src, "Training sources, one sentence per line");
  c->add_option("--train-tgt", a->train_tgt, "Training targets");
  c->add_option("--dev-src", a->dev_src, "Dev sources");
  c->add_option("--dev-tgt", a->dev_tgt, "Dev targets");
  c->add_option("--train-tsv", a->train_tsv,
                "Training pairs as source<TAB>target (speech: audio<TAB>transcript)");
  c->add_option("--dev-tsv", a->dev_tsv, "Dev pairs as source<TAB>target (speech: a manifest)");
  c->add_option("--max-train", a->max_train, "Use only the first N training pairs (0 = all)");
  c->add_option("-o,--out", a->train.out_dir, "Output directory")->capture_default_str();
  c->add_option("--vocab", a->vocab_path, "A SentencePiece model to use instead of training one");
  c->add_option("--vocab-size", a->vocab.size, "Subword vocabulary size")->capture_default_str();
  c->add_option("--vocab-type", a->vocab.model_type, "unigram or bpe")->capture_default_str();
  // The model's options come from ModelConfig's table: name, help, and the flag that flips a
  // bool's default.
  models::ModelConfig::ForEachOption(a->model, [&](const models::OptionInfo& o, auto& value) {
    if (o.help == nullptr) return;
    using T = std::decay_t<decltype(value)>;
    std::string name = std::string("--") + o.name;
    std::replace(name.begin(), name.end(), '_', '-');
    if constexpr (std::is_same_v<T, bool>) {
      c->add_flag_function(
          o.flag, [&value, flipped = !value](int64_t) { value = flipped; }, o.help);
    } else if constexpr (std::is_enum_v<T>) {
      c->add_option_function<std::string>(
           name, [&value, name](const std::string& s) { value = models::ParseEnum<T>(s, name); },
           o.help)
          ->default_str(models::NameOf(value));
    } else {
      c->add_option(name, value, o.help)->capture_default_str();
    }
  });
  auto& t = a->train;
  c->add_option("--max-tokens", t.max_tokens, "Tokens per batch")->capture_default_str();
  c->add_option("--max-len", t.max_len, "Drop training pairs longer than this (subwords)")
      ->capture_default_str();
  c->add_option("--lr", t.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--warmup", t.warmup, "Warm-up steps")->capture_default_str();
  c->add_option("--clip-norm", t.clip_norm)->capture_default_str();
  c->add_option("--label-smoothing", t.label_smoothing)->capture_default_str();
  c->add_option("--max-steps", t.max_steps, "Stop after N steps (0 = no limit)");
  c->add_option("--max-epochs", t.max_epochs, "Stop after N epochs (0 = no limit)");
  c->add_option("--max-minutes", t.max_minutes, "Stop after N minutes (0 = no limit)");
  c->add_option("--valid-every", t.valid_every, "Steps between validations")->capture_default_str();
  c->add_option("--valid-sentences", t.valid_sentences, "Dev sentences translated for BLEU")
      ->capture_default_str();
  c->add_option("--patience", t.patience, "Validations without improvement before stopping")
      ->capture_default_str();
  c->add_option("--seed", t.seed)->capture_default_str();
  c->add_option("--log-every", t.log_every)->capture_default_str();
  c->add_option("--threads", t.threads, "Threads (0 = all cores)")->capture_default_str();
  c->add_flag("--no-progress", a->no_progress, "No progress bar");
  c->add_option("--max-frames", a->max_frames,
                "Speech: drop training utterances longer than this many frames")
      ->capture_default_str();
  c->add_option("--mel-bins", t.features.mel_bins, "Speech: log-mel bins")->capture_default_str();
  c->add_flag("--spec-augment", t.spec_augment, "Speech: SpecAugment masks on training batches");
  c->add_option("--freq-masks", t.masks.freq_masks)->capture_default_str();
  c->add_option("--freq-width", t.masks.freq_width)->capture_default_str();
  c->add_option("--time-masks", t.masks.time_masks)->capture_default_str();
  c->add_option("--time-width", t.masks.time_width)->capture_default_str();
  c->add_flag("--resume", a->resume, "Continue OUT/last.ckpt exactly");
  c->add_option("--guided-alignment", a->guided_alignment,
                "Train one attention head on word alignments: a Pharaoh file (s-t links), one "
                "line per training pair");
  c->add_option("--guided-alignment-weight", a->guided_alignment_weight,
                "Weight of the guided-alignment loss (cross-entropy per linked target token)")
      ->capture_default_str();
  c->add_option("--alignment-layer", t.alignment_layer,
                "Guided alignment: decoder layer of the trained head (-1 = last)")
      ->capture_default_str();
  c->add_option("--alignment-head", t.alignment_head, "Guided alignment: the trained head")
      ->capture_default_str();
  // ---- --task classify: the image classifier's options (classify_command.cc) ----
  AddClassifyTrainOptions(*c, [a] { return a->task; });
  // ---- end of --task classify ----
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
