// `attend train` as one library call: the options' table, reading the data of each task,
// training or loading the vocabulary, building the model, then nmt::Train. The command line
// (tools/attend/train_command.cc) and the Python bindings (python/src/toolkit.cc) both fill a
// TrainRun and call RunTraining, so the two cannot drift apart.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "attend/audio.h"
#include "attend/corpus.h"
#include "attend/dist.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"

namespace attend::nmt {
namespace {

namespace fs = std::filesystem;
using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs ToPairs(const std::vector<data::SentencePair>& v, int64_t limit) {
  Pairs out;
  const size_t n = limit > 0 ? std::min<size_t>(v.size(), static_cast<size_t>(limit)) : v.size();
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(v[i].src, v[i].tgt);
  return out;
}

// One split of parallel text: a TSV, two files, or DIR/<split>.<lang>.
Pairs ReadSplit(const TrainRun& a, const std::string& split, const std::string& src,
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
  ATTEND_CHECK(fs::is_directory(a.data_dir), "train: the corpus directory ", a.data_dir,
               " does not exist");
  const fs::path d(a.data_dir);
  return ToPairs(data::ReadParallelText((d / (split + "." + a.src_lang)).string(),
                                        (d / (split + "." + a.tgt_lang)).string(), ro),
                 limit);
}

// A file of the task's data directory unless given: DIR/<split>.tsv.
std::string SplitFile(const TrainRun& a, const std::string& given, const char* split,
                      const char* what) {
  if (!given.empty()) return given;
  ATTEND_CHECK(!a.data_dir.empty(), "train --task ", a.task, ": no ", split, " ", what,
               " (give --data DIR with ", split, ".tsv, or --", split, "-tsv)");
  return (fs::path(a.data_dir) / (std::string(split) + ".tsv")).string();
}

// Data-parallel ranks other than 0 keep quiet: rank 0 speaks for the run.
bool Quiet(const TrainRun& a) { return a.train.comm != nullptr && a.train.comm->rank() != 0; }

// The vocabulary: given, the resumed run's, or trained on `text`; with several ranks, rank 0's
// (trained once, sent to the others).
Vocabulary MakeVocabulary(const TrainRun& a, const std::function<std::vector<std::string>()>& text,
                          const VocabularyOptions& options) {
  if (!a.vocab_path.empty()) return Vocabulary::Load(a.vocab_path);
  if (a.resume) return Vocabulary::Load((fs::path(a.train.out_dir) / "vocab.model").string());
  dist::Communicator* comm = a.train.comm;
  if (comm == nullptr || comm->size() == 1) return Vocabulary::Train(text(), options);
  std::string bytes;
  if (comm->rank() == 0) bytes = Vocabulary::Train(text(), options).bytes();
  comm->Broadcast(bytes, 0);
  return Vocabulary::FromBytes(bytes, "rank 0's vocabulary");
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TrainSummary Finish(TrainRun& a, const Vocabulary& vocab, const std::vector<Example>& train_ex,
                    const std::vector<Example>& dev_ex, const Pairs& dev_text,
                    const std::atomic<bool>* stop) {
  Generator gen(a.train.seed);
  auto model = models::MakeModel(a.model, gen);
  if (stop != nullptr && stop->load()) {
    TrainSummary summary;
    summary.stop_reason = "interrupted before training";
    return summary;
  }
  if (stop != nullptr) a.train.stop_requested = stop;
  return Train(*model, vocab, train_ex, dev_ex, dev_text, a.train, a.resume);
}

// Speech: manifests of audio<TAB>transcript, a character vocabulary over the transcripts,
// log-mel features.
TrainSummary RunSpeech(TrainRun& a, const std::atomic<bool>* stop) {
  std::vector<audio::Utterance> train =
      audio::ReadManifest(SplitFile(a, a.train_tsv, "train", "manifest"));
  const std::vector<audio::Utterance> dev =
      audio::ReadManifest(SplitFile(a, a.dev_tsv, "dev", "manifest"));
  if (a.max_train > 0 && static_cast<int64_t>(train.size()) > a.max_train)
    train.resize(static_cast<size_t>(a.max_train));
  VocabularyOptions vo = a.vocab;
  vo.model_type = "char";
  const Vocabulary vocab = MakeVocabulary(
      a,
      [&] {
        std::vector<std::string> text;
        for (const auto& u : train) text.push_back(u.transcript);
        if (!Quiet(a))
          std::fprintf(stderr, "a character vocabulary from %zu transcripts\n", text.size());
        return text;
      },
      vo);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t dropped = 0;
  const int threads = a.train.threads;
  const auto train_ex = LoadSpeechExamples(train, vocab, a.train.features, a.max_frames,
                                           a.train.max_len, threads, &dropped);
  const auto dev_ex = LoadSpeechExamples(dev, vocab, a.train.features, 0, 0, threads, nullptr);
  double frames = 0;
  for (const auto& e : train_ex) frames += static_cast<double>(e.source_length());
  if (!Quiet(a))
    std::fprintf(stderr,
                 "features: %zu training utterances (%.2f h of audio), %zu dev, in %.1f s; dropped "
                 "%lld longer than %lld frames or %lld characters\n",
                 train_ex.size(), frames * a.train.features.hop_ms / 3.6e6, dev_ex.size(),
                 SecondsSince(t0), (long long)dropped, (long long)a.max_frames,
                 (long long)a.train.max_len);
  Pairs dev_text;
  for (const auto& u : dev) dev_text.emplace_back(u.path, u.transcript);
  a.model.src_vocab = 0;
  a.model.tgt_vocab = vocab.size();
  a.model.feature_dim = a.train.features.mel_bins;
  return Finish(a, vocab, train_ex, dev_ex, dev_text, stop);
}

// Captioning: image<TAB>caption lines (paths relative to the file; several lines per image are
// several reference captions), a word vocabulary over the training captions, the images resized
// to the model's.
TrainSummary RunCaption(TrainRun& a, const std::atomic<bool>* stop) {
  ATTEND_CHECK(a.model.image(),
               "train --task caption: --arch must be show-attend-tell or top-down");
  const std::string train_tsv = SplitFile(a, a.train_tsv, "train", "captions");
  const std::string dev_tsv = SplitFile(a, a.dev_tsv, "dev", "captions");
  std::vector<data::ImageCaption> train = data::ReadCaptionsTsv(train_tsv);
  const std::vector<data::ImageCaption> dev = data::ReadCaptionsTsv(dev_tsv);
  ATTEND_CHECK(!train.empty() && !dev.empty(), "train --task caption: no training or dev images");
  if (a.max_train > 0 && static_cast<int64_t>(train.size()) > a.max_train)
    train.resize(static_cast<size_t>(a.max_train));
  VocabularyOptions vo = a.vocab;
  vo.model_type = "word";
  const Vocabulary vocab = MakeVocabulary(
      a,
      [&] {
        std::vector<std::string> text;
        for (const auto& im : train)
          text.insert(text.end(), im.captions.begin(), im.captions.end());
        if (!Quiet(a)) std::fprintf(stderr, "a word vocabulary from %zu captions\n", text.size());
        return text;
      },
      vo);
  a.model.src_vocab = 0;
  a.model.tgt_vocab = vocab.size();
  // The upper bound with the items' true boxes as regions reads them beside the captions.
  ImageBoxes train_boxes, dev_boxes;
  const bool true_boxes = a.model.arch == models::Arch::kTopDown && !a.model.proposals;
  if (true_boxes) {
    auto items = [&](const std::string& tsv_path) {
      const std::string p = tsv_path.substr(0, tsv_path.size() - 4) + ".items.jsonl";
      ATTEND_CHECK(tsv_path.size() > 4 && tsv_path.ends_with(".tsv") && fs::exists(p),
                   "train --true-boxes: the items' boxes of ", tsv_path, " are read from ", p,
                   ", which does not exist");
      return ItemBoxes(p);
    };
    train_boxes = items(train_tsv);
    dev_boxes = items(dev_tsv);
  }
  const auto t0 = std::chrono::steady_clock::now();
  int64_t dropped = 0;
  const auto train_ex =
      LoadCaptionExamples(train, vocab, a.model, true, a.train.max_len, a.train.threads, &dropped,
                          true_boxes ? &train_boxes : nullptr);
  const auto dev_ex = LoadCaptionExamples(dev, vocab, a.model, false, 0, a.train.threads, nullptr,
                                          true_boxes ? &dev_boxes : nullptr);
  if (!Quiet(a))
    std::fprintf(
        stderr,
        "images: %zu training images with %zu captions, %zu dev images, in %.1f s; dropped "
        "%lld captions longer than %lld words\n",
        train.size(), train_ex.size(), dev_ex.size(), SecondsSince(t0), (long long)dropped,
        (long long)a.train.max_len);
  // Validation scores BLEU against all of an image's captions, joined by newlines here.
  Pairs dev_text;
  for (const auto& im : dev) {
    std::string refs;
    for (const auto& c : im.captions) refs += (refs.empty() ? "" : "\n") + c;
    dev_text.emplace_back(im.image, refs);
  }
  return Finish(a, vocab, train_ex, dev_ex, dev_text, stop);
}

TrainSummary RunTranslation(TrainRun& a, const std::atomic<bool>* stop) {
  const Pairs train = ReadSplit(a, "train", a.train_src, a.train_tgt, a.train_tsv, a.max_train);
  const Pairs dev = ReadSplit(a, "dev", a.dev_src, a.dev_tgt, a.dev_tsv, 0);
  ATTEND_CHECK(!train.empty(), "train: the training data is empty");
  ATTEND_CHECK(!dev.empty(), "train: the dev data is empty");
  const Vocabulary vocab = MakeVocabulary(
      a,
      [&] {
        if (!Quiet(a))
          std::fprintf(stderr, "training a %lld-piece %s vocabulary on %zu pairs\n",
                       (long long)a.vocab.size, a.vocab.model_type.c_str(), train.size());
        std::vector<std::string> text;
        text.reserve(2 * train.size());
        for (const auto& [s, t] : train) {
          text.push_back(s);
          text.push_back(t);
        }
        return text;
      },
      a.vocab);
  int64_t dropped = 0;
  auto train_ex = EncodePairs(vocab, train, a.train.max_len, &dropped);
  if (dropped > 0)
    if (!Quiet(a))
      std::fprintf(stderr, "dropped %lld training pairs longer than %lld subwords\n",
                   (long long)dropped, (long long)a.train.max_len);
  if (!a.guided_alignment.empty()) {
    // Line i aligns training pair i; each example keeps its pair's index through the filtering
    // above and the trainer's bucketing and shuffling.
    const auto alignments = ReadAlignments(a.guided_alignment);
    ATTEND_CHECK(
        alignments.size() == train.size() || (a.max_train > 0 && alignments.size() > train.size()),
        "train: ", a.guided_alignment, " has ", alignments.size(), " alignment lines for ",
        train.size(), " training pairs (one line per pair)");
    ATTEND_CHECK(a.guided_alignment_weight >= 0, "train: --guided-alignment-weight ",
                 a.guided_alignment_weight, " must be >= 0");
    const int64_t links = AttachAlignments(train_ex, vocab, train, alignments, a.guided_alignment);
    a.train.guided_alignment_weight = a.guided_alignment_weight;
    if (!Quiet(a))
      std::fprintf(stderr, "guided alignment: %lld subword links over %zu pairs, weight %g\n",
                   (long long)links, train_ex.size(), a.guided_alignment_weight);
  }
  const auto dev_ex = EncodePairs(vocab, dev, a.train.max_len);
  a.model.src_vocab = a.model.tgt_vocab = vocab.size();
  return Finish(a, vocab, train_ex, dev_ex, dev, stop);
}

}  // namespace

std::vector<TrainRunOption> TrainRunOptions(TrainRun& a) {
  auto& t = a.train;
  return {
      {"task", "translation | speech | caption (the command also has classify)", &a.task},
      {"data", "Corpus directory with train.SRC/TGT and dev.SRC/TGT", &a.data_dir, false, false},
      {"src", "Source language suffix", &a.src_lang},
      {"tgt", "Target language suffix", &a.tgt_lang},
      {"train-src", "Training sources, one sentence per line", &a.train_src, false, false},
      {"train-tgt", "Training targets", &a.train_tgt, false, false},
      {"dev-src", "Dev sources", &a.dev_src, false, false},
      {"dev-tgt", "Dev targets", &a.dev_tgt, false, false},
      {"train-tsv", "Training pairs as source<TAB>target (speech: audio<TAB>transcript)",
       &a.train_tsv, false, false},
      {"dev-tsv", "Dev pairs as source<TAB>target (speech: a manifest)", &a.dev_tsv, false, false},
      {"max-train", "Use only the first N training pairs (0 = all)", &a.max_train, false, false},
      {"out", "Output directory", &t.out_dir},
      {"vocab", "A SentencePiece model to use instead of training one", &a.vocab_path, false,
       false},
      {"vocab-size", "Subword vocabulary size", &a.vocab.size},
      {"vocab-type", "unigram or bpe", &a.vocab.model_type},
      {"max-tokens", "Tokens per batch", &t.max_tokens},
      {"max-len", "Drop training pairs longer than this (subwords)", &t.max_len},
      {"lr", "Peak learning rate", &t.lr},
      {"warmup", "Warm-up steps", &t.warmup},
      {"clip-norm", "Clip the gradient's norm to this (0 = off)", &t.clip_norm},
      {"label-smoothing", "Label smoothing of the cross-entropy", &t.label_smoothing},
      {"max-steps", "Stop after N steps (0 = no limit)", &t.max_steps, false, false},
      {"max-epochs", "Stop after N epochs (0 = no limit)", &t.max_epochs, false, false},
      {"max-minutes", "Stop after N minutes (0 = no limit)", &t.max_minutes, false, false},
      {"valid-every", "Steps between validations", &t.valid_every},
      {"valid-sentences", "Dev sentences translated for BLEU", &t.valid_sentences},
      {"patience", "Validations without improvement before stopping", &t.patience},
      {"seed", "Seed of the initialisation, shuffling and dropout", &t.seed},
      {"log-every", "Steps between log lines", &t.log_every},
      {"threads", "Threads (0 = all cores)", &t.threads},
      {"no-progress", "No progress bar", &a.no_progress, true},
      {"max-frames", "Speech: drop training utterances longer than this many frames",
       &a.max_frames},
      {"mel-bins", "Speech: log-mel bins", &t.features.mel_bins},
      {"spec-augment", "Speech: SpecAugment masks on training batches", &t.spec_augment, true},
      {"freq-masks", "Speech: SpecAugment frequency masks", &t.masks.freq_masks},
      {"freq-width", "Speech: widest frequency mask (bins)", &t.masks.freq_width},
      {"time-masks", "Speech: SpecAugment time masks", &t.masks.time_masks},
      {"time-width", "Speech: widest time mask (frames)", &t.masks.time_width},
      {"resume", "Continue OUT/last.ckpt exactly", &a.resume, true},
      {"guided-alignment",
       "Train one attention head on word alignments: a Pharaoh file (s-t links), one line per "
       "training pair",
       &a.guided_alignment, false, false},
      {"guided-alignment-weight",
       "Weight of the guided-alignment loss (cross-entropy per linked target token)",
       &a.guided_alignment_weight},
      {"alignment-layer", "Guided alignment: decoder layer of the trained head (-1 = last)",
       &t.alignment_layer},
      {"alignment-head", "Guided alignment: the trained head", &t.alignment_head},
      {"accumulate",
       "Batches (of --max-tokens, per rank) whose gradients are summed before each step",
       &t.accumulate},
      {"ema",
       "Decay of an exponential moving average of the weights, validated and saved (0 = off)",
       &t.ema},
      {"keep-checkpoints", "Keep the newest N numbered checkpoints OUT/ckpt.STEP.ckpt (0 = none)",
       &t.keep_checkpoints},
  };
}

TrainSummary RunTraining(TrainRun& a, const std::atomic<bool>* stop) {
  a.train.progress = a.train.progress && !a.no_progress;
  ATTEND_CHECK(a.train.max_steps >= 0 && a.train.max_epochs >= 0 && a.train.max_minutes >= 0,
               "train: --max-steps, --max-epochs and --max-minutes must be >= 0");
  ATTEND_CHECK(a.guided_alignment.empty() || a.task == "translation",
               "train: --guided-alignment needs --task translation");
  if (a.task == "speech") return RunSpeech(a, stop);
  if (a.task == "caption") return RunCaption(a, stop);
  ATTEND_CHECK(a.task == "translation", "train: --task '", a.task,
               "' is not one of translation | speech | caption | classify");
  return RunTranslation(a, stop);
}

}  // namespace attend::nmt
