// The training loop of `attend train`: token-count batches, Adam with warm-up, clipping,
// validation (loss, BLEU, chrF), early stopping, best/last checkpoints, exact resume, progress.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "attend/dist.h"
#include "attend/error.h"
#include "attend/metrics.h"
#include "attend/nmt.h"
#include "attend/nn.h"
#include "nmt/trainer_internal.h"
#include "attend/ops.h"
#include "attend/optim.h"
#include "io/untrusted_json.h"

namespace attend::nmt {

using detail::FormatDuration;
using detail::Logger;

using models::SpecialIds;

namespace {

constexpr const char* kVocabKey = "vocab.spm.base64";

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string Base64Decode(const std::string& in, const std::string& source) {
  ATTEND_CHECK(in.size() % 4 == 0, source, ": the stored vocabulary is not valid base64");
  auto value = [&](char c) -> uint32_t {
    const char* p = std::strchr(kB64, c);
    ATTEND_CHECK(c != 0 && p != nullptr, source, ": the stored vocabulary is not valid base64");
    return static_cast<uint32_t>(p - kB64);
  };
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    const int pad = (in[i + 3] == '=') + (in[i + 2] == '=');
    ATTEND_CHECK(pad == 0 || i + 4 == in.size(), source, ": bad base64 padding");
    uint32_t v = (value(in[i]) << 18) | (value(in[i + 1]) << 12);
    if (pad < 2) v |= value(in[i + 2]) << 6;
    if (pad < 1) v |= value(in[i + 3]);
    out += static_cast<char>((v >> 16) & 255);
    if (pad < 2) out += static_cast<char>((v >> 8) & 255);
    if (pad < 1) out += static_cast<char>(v & 255);
  }
  return out;
}

nlohmann::json TrainOptionsJson(const TrainOptions& o) {
  return {{"max_tokens", o.max_tokens},
          {"max_len", o.max_len},
          {"lr", o.lr},
          {"warmup", o.warmup},
          {"clip_norm", o.clip_norm},
          {"label_smoothing", o.label_smoothing},
          {"max_steps", o.max_steps},
          {"max_epochs", o.max_epochs},
          {"max_minutes", o.max_minutes},
          {"valid_every", o.valid_every},
          {"valid_sentences", o.valid_sentences},
          {"patience", o.patience},
          {"seed", o.seed},
          {"spec_augment", o.spec_augment},
          {"guided_alignment_weight", o.guided_alignment_weight},
          {"alignment_layer", o.alignment_layer},
          {"alignment_head", o.alignment_head}};
}

// Where the loop stands; stored in every checkpoint so a resumed run continues exactly.
struct Progress {
  int64_t step = 0, epoch = 0, batch_in_epoch = 0, bad_validations = 0;
  // The best validation score so far (BLEU, or minus the WER); lowest() until the first.
  double best_bleu = std::numeric_limits<double>::lowest(), seconds = 0.0, tokens = 0.0;
  io::Metadata ToMetadata() const {
    const auto num = detail::ExactNumber;
    return {{"trainer.step", std::to_string(step)},
            {"trainer.epoch", std::to_string(epoch)},
            {"trainer.batch_in_epoch", std::to_string(batch_in_epoch)},
            {"trainer.bad_validations", std::to_string(bad_validations)},
            {"trainer.best_bleu", num(best_bleu)},
            {"trainer.seconds", num(seconds)},
            {"trainer.tokens", num(tokens)}};
  }
  static Progress FromMetadata(const io::Metadata& m, const std::string& source) {
    auto get = [&](const char* key) -> const std::string& {
      auto it = m.find(key);
      ATTEND_CHECK(it != m.end(), source, ": not a training checkpoint (no '", key, "')");
      return it->second;
    };
    Progress p;
    try {
      p.step = std::stoll(get("trainer.step"));
      p.epoch = std::stoll(get("trainer.epoch"));
      p.batch_in_epoch = std::stoll(get("trainer.batch_in_epoch"));
      p.bad_validations = std::stoll(get("trainer.bad_validations"));
      p.best_bleu = std::stod(get("trainer.best_bleu"));
      p.seconds = std::stod(get("trainer.seconds"));
      p.tokens = std::stod(get("trainer.tokens"));
    } catch (const std::logic_error&) {
      ATTEND_CHECK(false, source, ": a trainer.* entry is not a number");
    }
    return p;
  }
};

// SpecAugment on each utterance of a speech batch (its real frames only), seeded by the run's
// seed, the step and the row, so a resumed run masks the same way.
void MaskBatch(models::Batch& batch, const audio::MaskOptions& masks, uint64_t seed, int64_t step) {
  const int64_t b = batch.src.size(0), s = batch.src.size(1), f = batch.src.size(2);
  float* x = batch.src.data<float>();
  const int64_t* len = batch.src_lengths.data<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    audio::Features u;
    u.frames = len[r];
    u.bins = f;
    u.data.assign(x + r * s * f, x + (r * s + len[r]) * f);
    audio::SpecAugment(u, masks, seed * 1000003u + static_cast<uint64_t>(step) * 4099u + r);
    std::copy(u.data.begin(), u.data.end(), x + r * s * f);
  }
}

TrainEvent MakeEvent(TrainEvent::Kind kind, const std::string& text, int64_t step, int64_t epoch,
                     double seconds) {
  TrainEvent e;
  e.kind = kind;
  e.text = text;
  e.step = step;
  e.epoch = epoch;
  e.seconds = seconds;
  return e;
}

void Emit(const TrainOptions& o, TrainEvent::Kind kind, const std::string& text, int64_t step,
          int64_t epoch, double seconds) {
  if (o.on_event) o.on_event(MakeEvent(kind, text, step, epoch, seconds));
}

// Sums every parameter's gradient over the ranks in place, in flat buckets of at most
// kBucketFloats (one allreduce each: a few large messages instead of one per tensor). A rank whose
// batches ran out at the end of an epoch has no gradient and contributes zeros.
constexpr size_t kBucketFloats = size_t{1} << 22;  // 16 MiB of f32

// `bucket` is kept by the caller from step to step, so its memory is allocated once.
void AllReduceGradients(dist::Communicator& comm, const std::vector<Tensor>& params,
                        std::vector<float>& bucket) {
  bucket.clear();
  std::vector<std::pair<Tensor, size_t>> members;  // gradient, offset in the bucket
  auto flush = [&] {
    if (bucket.empty()) return;
    comm.AllReduceSum(bucket.data(), bucket.size());
    for (auto& [g, offset] : members)
      std::copy_n(bucket.data() + offset, g.numel(), g.data<float>());
    bucket.clear();
    members.clear();
  };
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) g = Tensor::Zeros(p.shape(), p.dtype());
    ATTEND_CHECK(g.dtype() == DType::kF32, "train: data-parallel training sums f32 gradients, not ",
                 DTypeName(g.dtype()));
    if (!g.is_contiguous()) g = g.Contiguous();
    const size_t n = static_cast<size_t>(g.numel());
    if (!bucket.empty() && bucket.size() + n > kBucketFloats) flush();
    members.emplace_back(g, bucket.size());
    bucket.insert(bucket.end(), g.data<float>(), g.data<float>() + n);
    Tensor(p).set_grad(g);
  }
  flush();
}

// ema = decay * ema + (1 - decay) * w, in place (every step: no temporaries).
void UpdateMovingAverage(std::vector<Tensor>& ema, const std::vector<Tensor>& params,
                         double decay) {
  const float d = static_cast<float>(decay), rest = static_cast<float>(1.0 - decay);
  for (size_t i = 0; i < params.size(); ++i) {
    ATTEND_CHECK(params[i].dtype() == DType::kF32 && params[i].is_contiguous(),
                 "train --ema: averages contiguous f32 parameters");
    float* e = ema[i].data<float>();
    const float* w = params[i].data<float>();
    const int64_t n = params[i].numel();
    for (int64_t k = 0; k < n; ++k) e[k] = d * e[k] + rest * w[k];
  }
}

// Every rank must run the same training: the same options, vocabulary and data (a digest of
// each, compared with rank 0's). A rank that differs stops with the reason; the `attend`
// command then takes the whole job down.
void CheckSameRun(dist::Communicator& comm, const std::string& config_json,
                  const std::string& vocab_b64, const std::vector<Example>& train,
                  const std::vector<Example>& dev, const TrainOptions& o) {
  auto digest = [](const void* data, size_t n, uint32_t crc) { return io::Crc32(data, n, crc); };
  uint32_t data_crc = 0;
  for (const auto* set : {&train, &dev})
    for (const Example& e : *set) {
      data_crc = digest(e.src.data(), e.src.size() * sizeof(int64_t), data_crc);
      data_crc = digest(e.tgt.data(), e.tgt.size() * sizeof(int64_t), data_crc);
      data_crc = digest(e.features.data(), e.features.size() * sizeof(float), data_crc);
    }
  char mine[160];
  std::snprintf(mine, sizeof(mine),
                "options %08x vocabulary %08x data %08x (%zu+%zu) accumulate %lld",
                io::Crc32(config_json.data(), config_json.size()),
                io::Crc32(vocab_b64.data(), vocab_b64.size()), data_crc, train.size(), dev.size(),
                (long long)o.accumulate);
  std::string theirs = mine;
  comm.Broadcast(theirs, 0);
  ATTEND_CHECK(theirs == mine, "train: rank ", comm.rank(),
               " was not given the same run as rank 0 (", mine, " here, ", theirs,
               " on rank 0): every rank needs the same options and data files");
}

// Keeps the newest `keep` of DIR/ckpt.STEP.ckpt.
void PruneNumberedCheckpoints(const std::string& dir, int64_t keep) {
  namespace fs = std::filesystem;
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 10 || name.rfind("ckpt.", 0) != 0 || !name.ends_with(".ckpt")) continue;
    const std::string digits = name.substr(5, name.size() - 10);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    found.emplace_back(std::stoll(digits), entry.path());
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < found.size(); ++i)
    fs::remove(found[i].second, ec);
}

struct Validation {
  double loss = 0.0, bleu = 0.0, chrf = 0.0;  // translation
  double wer = 0.0, cer = 0.0;                // speech
  double score = 0.0;                         // higher is better: BLEU, or minus the WER
  std::string Describe() const {
    char buf[128];
    if (speech) std::snprintf(buf, sizeof(buf), "dev loss %.4f WER %.2f CER %.2f", loss, wer, cer);
    else
      std::snprintf(buf, sizeof(buf), "dev loss %.4f ppl %.2f BLEU %.2f chrF %.2f", loss,
                    std::exp(loss), bleu, chrf);
    return buf;
  }
  bool speech = false;
};

// Speech: the dev utterances transcribed greedily, scored by WER and CER against their
// transcripts (dev_text[index].second).
void ScoreTranscripts(models::Seq2Seq& model, const Vocabulary& vocab,
                      const std::vector<Example>& dev,
                      const std::vector<std::pair<std::string, std::string>>& dev_text,
                      const TrainOptions& o, Validation* v) {
  const size_t n = std::min<size_t>(dev.size(), static_cast<size_t>(o.valid_sentences));
  if (n == 0) return;
  const std::vector<Example> heard(dev.begin(), dev.begin() + static_cast<int64_t>(n));
  SearchOptions search;
  search.beam = 1;
  search.batch_size = 64;
  search.max_len_ratio = kSpeechLengthRatio;
  auto out = TranslateExamples(model, heard, search);
  std::vector<std::string> refs(n), hyps(n);
  for (size_t i = 0; i < n; ++i) {
    refs[i] = dev_text.at(heard[i].index).second;
    hyps[i] = out[i].empty() ? "" : vocab.Decode(out[i][0].tokens);
  }
  v->wer = metrics::WordErrorRate(hyps, refs).score;
  v->cer = metrics::CharErrorRate(hyps, refs).score;
  v->score = -v->wer;
}

Validation Validate(models::Seq2Seq& model, const Vocabulary& vocab,
                    const std::vector<Example>& dev,
                    const std::vector<std::pair<std::string, std::string>>& dev_text,
                    const TrainOptions& o) {
  Validation v;
  const bool was_training = model.training();
  model.Eval();
  {
    NoGradGuard no_grad;
    double loss_sum = 0.0, tokens = 0.0;
    for (const auto& order : MakeBatches(dev, o.max_tokens, o.seed, 0)) {
      models::Batch batch = MakeBatch(dev, order);
      Tensor logits = model.Forward(batch);
      const int64_t vsize = logits.size(2);
      Tensor loss = CrossEntropy(logits.View({-1, vsize}), batch.tgt_out.View({-1}),
                                 SpecialIds::kPad, 0.0, Reduction::kSum);
      loss_sum += loss.item();
      tokens += static_cast<double>(batch.tgt_tokens);
    }
    v.loss = tokens > 0 ? loss_sum / tokens : 0.0;
  }
  v.speech = model.config().speech();
  const size_t n = std::min<size_t>(dev_text.size(), static_cast<size_t>(o.valid_sentences));
  if (v.speech) {
    ScoreTranscripts(model, vocab, dev, dev_text, o, &v);
  } else if (model.config().image() && n > 0) {
    // Captions: the first n dev images, each scored against its references (dev_text[index]:
    // the image's captions joined by newlines), BLEU over all of them as `attend caption`.
    const std::vector<Example> images(dev.begin(), dev.begin() + std::min(n, dev.size()));
    SearchOptions search;
    search.beam = 1;
    search.batch_size = 64;
    search.max_len_ratio = 0.0;
    search.max_len_extra = kCaptionMaxWords;
    const auto out = TranslateExamples(model, images, search);
    std::vector<std::vector<std::string>> per_image(images.size());
    std::vector<std::string> hyps(images.size());
    size_t k = 1;
    for (size_t i = 0; i < images.size(); ++i) {
      std::istringstream lines(dev_text.at(images[i].index).second);
      for (std::string line; std::getline(lines, line);) per_image[i].push_back(line);
      if (per_image[i].empty()) per_image[i].push_back("");
      k = std::max(k, per_image[i].size());
      hyps[i] = out[i].empty() ? "" : vocab.Decode(out[i][0].tokens);
    }
    // Stream r holds each image's r-th caption (its last when it has fewer).
    std::vector<metrics::Stream> refs(k);
    for (size_t r = 0; r < k; ++r)
      for (const auto& c : per_image) refs[r].push_back(c[std::min(r, c.size() - 1)]);
    v.bleu = metrics::CorpusBleu(hyps, refs).score;
    v.chrf = metrics::CorpusChrf(hyps, refs).score;
    v.score = v.bleu;
  } else if (n > 0) {
    std::vector<std::vector<int64_t>> sources(n);
    std::vector<std::string> refs(n), hyps(n);
    for (size_t i = 0; i < n; ++i) {
      sources[i] = vocab.Encode(dev_text[i].first);
      if (static_cast<int64_t>(sources[i].size()) > o.max_len) sources[i].resize(o.max_len);
      refs[i] = dev_text[i].second;
    }
    SearchOptions search;
    search.beam = 1;
    search.batch_size = 64;
    auto out = Translate(model, sources, search);
    for (size_t i = 0; i < n; ++i) hyps[i] = out[i].empty() ? "" : vocab.Decode(out[i][0].tokens);
    v.bleu = metrics::CorpusBleu(hyps, {refs}).score;
    v.chrf = metrics::CorpusChrf(hyps, {refs}).score;
    v.score = v.bleu;
  }
  model.Train(was_training);
  return v;
}

}  // namespace

TrainSummary Train(models::Seq2Seq& model, const Vocabulary& vocab,
                   const std::vector<Example>& train, const std::vector<Example>& dev,
                   const std::vector<std::pair<std::string, std::string>>& dev_text,
                   const TrainOptions& o, bool resume) {
  ATTEND_CHECK(!train.empty(), "train: no training examples");
  ATTEND_CHECK(o.max_steps > 0 || o.max_epochs > 0 || o.max_minutes > 0,
               "train: set a stop condition (steps, epochs or minutes)");
  ATTEND_CHECK(o.max_tokens > 0 && o.valid_every > 0 && o.log_every > 0 && o.lr > 0,
               "train: max_tokens, valid_every, log_every and lr must be positive");
  ATTEND_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 1, "train: label smoothing ",
               o.label_smoothing, " is not in [0, 1)");
  if (o.threads > 0) SetNumThreads(o.threads);
  // Guided alignment: the site it trains, checked before anything is written.
  const bool guided = o.guided_alignment_weight > 0;
  int64_t align_layer = o.alignment_layer;
  if (guided) {
    const models::ModelConfig& mc = model.config();
    ATTEND_CHECK(
        mc.token_source() && mc.arch != models::Arch::kRnn && mc.arch != models::Arch::kPervasive,
        "train: guided alignment needs a translation model with attention "
        "(rnn-attention or transformer), not ",
        models::NameOf(mc.arch), mc.speech() ? " on speech" : "");
    const int64_t layers = CrossAttentionLayers(mc), heads = CrossAttentionHeads(mc);
    if (align_layer < 0) align_layer += layers;
    ATTEND_CHECK(align_layer >= 0 && align_layer < layers && o.alignment_head >= 0 &&
                     o.alignment_head < heads,
                 "train: --alignment-layer ", o.alignment_layer, " --alignment-head ",
                 o.alignment_head, " is not one of the model's ", layers, " layers x ", heads,
                 " heads");
    bool any = false;
    for (const Example& e : train) any = any || !e.links.empty();
    ATTEND_CHECK(any, "train: guided alignment is on but no training pair has an alignment link");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ATTEND_CHECK(!ec && fs::is_directory(o.out_dir), "train: cannot create the output directory ",
               o.out_dir, ec ? ": " + ec.message() : "");
  const std::string last_path = (fs::path(o.out_dir) / "last.ckpt").string();
  const std::string best_path = (fs::path(o.out_dir) / "best.ckpt").string();
  // A run killed while writing a file leaves its temporary (NAME.tmp or NAME.tmp.XXXXXX, next to
  // the complete NAME it would have replaced): remove those.
  // (Rank 0's alone: it is the only writer.)
  if (o.comm == nullptr || o.comm->rank() == 0)
    for (const auto& entry : fs::directory_iterator(o.out_dir, ec)) {
      const std::string name = entry.path().filename().string();
      for (const std::string base : {"last.ckpt.tmp", "best.ckpt.tmp", "vocab.model.tmp"})
        if (name == base || name.rfind(base + ".", 0) == 0) fs::remove(entry.path(), ec);
    }
  if (o.comm == nullptr || o.comm->rank() == 0)
    vocab.Save((fs::path(o.out_dir) / "vocab.model").string());

  optim::Adam adam(model.Parameters(), optim::AdamOptions{.lr = o.lr, .beta2 = 0.98, .eps = 1e-9});
  optim::InverseSqrtWarmup schedule(
      adam,
      optim::InverseSqrtWarmup::Peak{.lr_peak = o.lr, .warmup = std::max<int64_t>(1, o.warmup)});
  nlohmann::json config;
  config["model"] = nlohmann::json::parse(model.config().ToJson());
  config["train"] = TrainOptionsJson(o);
  const bool speech = model.config().speech();
  if (speech) config["features"] = nlohmann::json::parse(FeatureOptionsJson(o.features));
  const std::string config_json = config.dump();
  const std::string vocab_b64 = Base64Encode(vocab.bytes());

  // Data parallelism and accumulation: every step takes `group` consecutive batches of the
  // epoch's order, rank r the `accumulate` of them from r * accumulate on; gradients are summed
  // and normalised by the target tokens of the whole group, so the step is the same whatever the
  // split of the group over ranks and accumulation.
  const int world = o.comm != nullptr ? o.comm->size() : 1;
  const int rank = o.comm != nullptr ? o.comm->rank() : 0;
  const bool lead = rank == 0;
  ATTEND_CHECK(o.accumulate >= 1, "train: --accumulate ", o.accumulate, " must be >= 1");
  ATTEND_CHECK(o.ema >= 0 && o.ema < 1, "train: --ema ", o.ema, " must be in [0, 1)");
  ATTEND_CHECK(o.keep_checkpoints >= 0, "train: --keep-checkpoints ", o.keep_checkpoints,
               " must be >= 0");
  const int64_t group = static_cast<int64_t>(world) * o.accumulate;
  if (world > 1) CheckSameRun(*o.comm, config_json, vocab_b64, train, dev, o);

  Progress p;
  if (resume) {
    io::Metadata extra;
    io::LoadCheckpoint(last_path, model, &adam, &schedule, &extra);
    p = Progress::FromMetadata(extra, last_path);
    auto it = extra.find(kVocabKey);
    ATTEND_CHECK(it != extra.end() && it->second == vocab_b64, "train --resume: ", last_path,
                 " was trained with a different vocabulary");
  }
  const std::vector<Tensor> params = model.Parameters();
  const std::string ema_path = (fs::path(o.out_dir) / "ema.ckpt").string();
  std::vector<Tensor> ema;  // the moving average, one tensor per parameter
  if (o.ema > 0) {
    for (const Tensor& t : params) ema.push_back(t.Detach().Clone());
    if (resume) {
      io::Metadata extra;
      std::vector<Tensor> raw;
      for (const Tensor& t : params) raw.push_back(t.Detach().Clone());
      io::LoadCheckpoint(ema_path, model, nullptr, nullptr, &extra);
      auto it = extra.find("trainer.step");
      ATTEND_CHECK(it != extra.end() && it->second == std::to_string(p.step),
                   "train --resume: ", ema_path, " is not of the same step as ", last_path,
                   " (was the run started without --ema?)");
      for (size_t i = 0; i < params.size(); ++i) {
        ema[i].CopyFrom(params[i].Detach());
        params[i].Detach().CopyFrom(raw[i]);
      }
    }
  }
  std::optional<Logger> logger;
  if (lead) logger.emplace((fs::path(o.out_dir) / "train.log").string(), o.progress);
  auto log_line = [&](const std::string& line) {
    if (logger) logger->Line(line);
  };
  // Swaps the weights with their moving average (validation and best.ckpt see the average).
  auto swap_ema = [&] {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor keep = params[i].Detach().Clone();
      params[i].Detach().CopyFrom(ema[i]);
      ema[i].CopyFrom(keep);
    }
  };
  auto save = [&](const std::string& path) {
    io::Metadata extra = p.ToMetadata();
    extra[kVocabKey] = vocab_b64;
    io::SaveCheckpoint(path, model, &adam, &schedule, config_json, extra);
  };
  {
    std::ostringstream s;
    s << (resume ? "resuming at step " + std::to_string(p.step) : std::string("training")) << ": "
      << models::NameOf(model.config().arch) << ", " << model.NumParameters() << " parameters, "
      << train.size() << (speech ? " training utterances, " : " training pairs, ") << dev.size()
      << (speech ? " dev utterances, vocabulary " : " dev pairs, vocabulary ") << vocab.size();
    if (group > 1)
      s << "; " << world << (world == 1 ? " rank" : " ranks") << " x " << o.accumulate
        << (o.accumulate == 1 ? " batch" : " batches") << " per step";
    if (o.ema > 0) s << "; weights averaged with decay " << o.ema;
    log_line(s.str());
    if (lead) Emit(o, TrainEvent::Kind::kStart, s.str(), p.step, p.epoch + 1, p.seconds);
  }

  TrainSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  const double seconds_before = p.seconds;
  const double tokens_before = p.tokens;
  auto elapsed = [&] {
    return seconds_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  // Time spent in training steps only (validations excluded): what tokens/s is measured over.
  double train_seconds = 0.0, reduce_seconds = 0.0, wait_seconds = 0.0;
  std::vector<float> bucket;  // the allreduce's buffer, reused every step
  const int64_t first_step = p.step;
  double window_loss = 0.0, window_tokens = 0.0;
  double window_align = 0.0, window_align_rows = 0.0;  // guided alignment's loss, per linked row
  auto t_window = std::chrono::steady_clock::now();
  double window_tok = 0.0;
  int64_t last_validated = resume ? p.step : -1;
  std::string stop;
  auto validate = [&]() {
    // Rank 0 alone validates and writes; the others wait for it at the next step's collectives.
    if (!lead) {
      last_validated = p.step;
      return;
    }
    if (o.ema > 0) swap_ema();
    Validation v = Validate(model, vocab, dev, dev_text, o);
    summary.last_dev_loss = v.loss;
    const bool better = v.score > p.best_bleu;
    if (better) {
      p.best_bleu = v.score;
      p.bad_validations = 0;
    } else {
      ++p.bad_validations;
    }
    p.seconds = elapsed();
    char buf[256];
    std::snprintf(buf, sizeof(buf), "validation step %lld: %s%s (%s)", (long long)p.step,
                  v.Describe().c_str(), better ? " *best*" : "", FormatDuration(p.seconds).c_str());
    log_line(buf);
    if (o.on_event) {
      TrainEvent e = MakeEvent(TrainEvent::Kind::kValidation, buf, p.step, p.epoch + 1, p.seconds);
      e.dev_loss = v.loss;
      e.bleu = v.bleu;
      e.chrf = v.chrf;
      e.wer = v.wer;
      e.cer = v.cer;
      e.best = better;
      o.on_event(e);
    }
    // best before last: a run killed between the two resumes from the previous last.ckpt and
    // redoes this validation, so best.ckpt always matches the best BLEU that last.ckpt records.
    // With --ema, best.ckpt and ema.ckpt hold the average (what was validated), last.ckpt the
    // raw weights; ema.ckpt before last.ckpt for the same reason.
    if (better) save(best_path);
    if (o.ema > 0) {
      save(ema_path);
      swap_ema();
    }
    save(last_path);
    if (o.keep_checkpoints > 0) {
      save((fs::path(o.out_dir) / ("ckpt." + std::to_string(p.step) + ".ckpt")).string());
      PruneNumberedCheckpoints(o.out_dir, o.keep_checkpoints);
    }
    last_validated = p.step;
    if (o.patience > 0 && p.bad_validations >= o.patience)
      stop =
          "early stopping (" + std::to_string(o.patience) + " validations without a better BLEU)";
  };

  model.Train();
  while (stop.empty()) {
    if (o.max_epochs > 0 && p.epoch >= o.max_epochs) {
      stop = "epochs";
      break;
    }
    const auto batches = MakeBatches(train, o.max_tokens, o.seed, p.epoch);
    const int64_t n_batches = static_cast<int64_t>(batches.size());
    summary.epochs_started = p.epoch + 1;
    while (p.batch_in_epoch < n_batches && stop.empty()) {
      if (o.max_steps > 0 && p.step >= o.max_steps) {
        stop = "steps";
        break;
      }
      if (o.stop_requested != nullptr && o.stop_requested->load()) stop = "interrupted";
      if (stop.empty() && o.max_minutes > 0 && elapsed() >= o.max_minutes * 60.0) stop = "minutes";
      // Rank 0's clock, signals and early stopping decide for every rank.
      if (world > 1) o.comm->Broadcast(stop, 0);
      if (!stop.empty()) break;
      const auto step_start = std::chrono::steady_clock::now();
      const int64_t first = p.batch_in_epoch;
      const int64_t in_group = std::min(group, n_batches - first);
      // Target (and source) tokens of the whole group: every rank knows every batch.
      double group_tgt = 0.0, group_src = 0.0;
      for (int64_t j = first; j < first + in_group; ++j)
        for (int64_t i : batches[j]) {
          group_tgt += static_cast<double>(train[i].tgt.size() + 1);
          group_src += static_cast<double>(train[i].source_length());
        }
      // [loss * tokens, guided alignment's loss * rows, rows] of this rank's batches.
      double sums[3] = {0.0, 0.0, 0.0};
      for (int64_t k = 0; k < o.accumulate; ++k) {
        const int64_t j = first + static_cast<int64_t>(rank) * o.accumulate + k;
        if (j >= first + in_group) break;
        models::Batch batch = MakeBatch(train, batches[j]);
        if (speech && o.spec_augment) MaskBatch(batch, o.masks, o.seed, p.step);
        Tensor head_weights;  // guided alignment: the trained head's weights [B, T, S]
        Tensor logits =
            guided ? model.ForwardWithHead(batch, align_layer, o.alignment_head, &head_weights)
                   : model.Forward(batch);
        const int64_t vsize = logits.size(2);
        Tensor loss = CrossEntropy(logits.View({-1, vsize}), batch.tgt_out.View({-1}),
                                   SpecialIds::kPad, o.label_smoothing);
        const double loss_value = loss.item();
        ATTEND_CHECK(std::isfinite(loss_value), "train: the loss became ", loss_value, " at step ",
                     p.step + 1, " (try a lower learning rate)");
        sums[0] += loss_value * static_cast<double>(batch.tgt_tokens);
        // The model's own terms (an attention penalty, a REINFORCE surrogate) join the gradient;
        // the loss logged stays the cross-entropy, comparable across models.
        if (Tensor extra = model.AuxiliaryLoss(batch, logits); extra.defined())
          loss = Add(loss, extra);
        if (guided) {
          ATTEND_CHECK(head_weights.defined() && head_weights.requires_grad(),
                       "train: ", models::NameOf(model.config().arch),
                       " gave no attention weights with gradient for guided alignment");
          int64_t linked = 0;
          const Tensor targets = AlignmentTargets(train, batches[j], head_weights.size(1),
                                                  head_weights.size(2), &linked);
          if (linked > 0) {
            Tensor align =
                GuidedAlignmentLoss(head_weights, targets.To(head_weights.dtype()), linked);
            sums[1] += align.item() * static_cast<double>(linked);
            sums[2] += static_cast<double>(linked);
            loss = Add(loss, MulScalar(align, o.guided_alignment_weight));
          }
        }
        // Each batch's loss is a mean over its tokens; weighted by its share of the group's
        // tokens, the summed gradients are those of the mean over the group. One batch alone
        // (the default) is its own group: no weighting, the arithmetic of a plain step.
        const double share = static_cast<double>(batch.tgt_tokens) / group_tgt;
        if (group > 1) loss = MulScalar(loss, share);
        // Nothing reads the logits after this: let go, so that the cross-entropy's gradient can
        // take their memory (autograd/node.h, SavedTensorsFreedAfterThis).
        logits = Tensor();
        loss.Backward();
      }
      if (world > 1) {
        // A one-number allreduce first waits for the slowest rank (its batches may be longer), so
        // that the gradients' time is the communication alone.
        const auto r0 = std::chrono::steady_clock::now();
        double ready = 0.0;
        o.comm->AllReduceSum(&ready, 1);
        const auto r1 = std::chrono::steady_clock::now();
        AllReduceGradients(*o.comm, params, bucket);
        o.comm->AllReduceSum(sums, 3);
        wait_seconds += std::chrono::duration<double>(r1 - r0).count();
        reduce_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - r1).count();
      }
      if (o.clip_norm > 0) optim::ClipGradNorm(params, o.clip_norm);
      adam.Step();
      schedule.Step();
      adam.ZeroGrad();
      if (o.ema > 0) UpdateMovingAverage(ema, params, o.ema);
      ++p.step;
      p.batch_in_epoch += in_group;
      train_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      p.tokens += group_tgt;
      window_loss += sums[0];
      window_tokens += group_tgt;
      window_align += sums[1];
      window_align_rows += sums[2];
      window_tok += group_src + group_tgt;
      const double now = elapsed();
      // ETA from whichever limit comes first.
      double eta = INFINITY;
      const double per_step = train_seconds / std::max<double>(1.0, p.step - first_step);
      if (o.max_steps > 0)
        eta = std::min(eta, per_step * static_cast<double>(o.max_steps - p.step));
      if (o.max_minutes > 0) eta = std::min(eta, o.max_minutes * 60.0 - now);
      if (o.max_epochs > 0) {
        const double steps_left = static_cast<double>(
            ((o.max_epochs - p.epoch) * n_batches - p.batch_in_epoch + group - 1) / group);
        eta = std::min(eta, per_step * steps_left);
      }
      const double window_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_window).count();
      char bar[256], align[48] = "", reduce[48] = "";
      if (guided)
        std::snprintf(align, sizeof(align), " | align %.3f",
                      window_align / std::max(1.0, window_align_rows));
      if (world > 1)
        std::snprintf(reduce, sizeof(reduce), " | allreduce %.1f ms/step",
                      1e3 * reduce_seconds / std::max<double>(1.0, p.step - first_step));
      std::snprintf(
          bar, sizeof(bar),
          "step %lld | epoch %lld | loss %.3f%s | %.0f src+tgt tok/s | lr %.2e%s | ETA %s",
          (long long)p.step, (long long)p.epoch + 1, window_loss / window_tokens, align,
          window_tok / std::max(1e-9, window_seconds), adam.lr(), reduce,
          FormatDuration(eta).c_str());
      if (logger) logger->Bar(bar);
      if (p.step % o.log_every == 0) {
        log_line(bar);
        if (lead && o.on_event) {
          TrainEvent e = MakeEvent(TrainEvent::Kind::kStep, bar, p.step, p.epoch + 1, now);
          e.loss = window_loss / window_tokens;
          e.tokens_per_second = window_tok / std::max(1e-9, window_seconds);
          e.lr = adam.lr();
          if (guided) e.align_loss = window_align / std::max(1.0, window_align_rows);
          o.on_event(e);
        }
        window_loss = window_tokens = window_tok = window_align = window_align_rows = 0.0;
        t_window = std::chrono::steady_clock::now();
      }
      if (p.step % o.valid_every == 0) {
        validate();
        // Rank 0's early stopping reaches the others before any of them can leave the epoch.
        if (world > 1) o.comm->Broadcast(stop, 0);
        t_window = std::chrono::steady_clock::now();  // tokens/s leaves validation out
      }
    }
    if (!stop.empty()) break;
    ++p.epoch;
    p.batch_in_epoch = 0;
  }
  if (last_validated != p.step) validate();
  if (logger) logger->ClearBar();
  summary.steps = p.step;
  summary.best_bleu = p.best_bleu;
  summary.seconds = elapsed();
  summary.tokens_per_second = (p.tokens - tokens_before) / std::max(1e-9, train_seconds);
  summary.allreduce_seconds = reduce_seconds;
  summary.wait_seconds = wait_seconds;
  summary.stop_reason = stop;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "stopped (%s) after %lld steps, %s; best dev %s %.2f",
                stop.c_str(), (long long)p.step, FormatDuration(summary.seconds).c_str(),
                speech ? "WER" : "BLEU", speech ? -p.best_bleu : p.best_bleu);
  log_line(buf);
  if (lead && o.on_event) {
    TrainEvent e = MakeEvent(TrainEvent::Kind::kStopped, buf, p.step, p.epoch + 1, summary.seconds);
    e.stop_reason = stop;
    o.on_event(e);
  }
  return summary;
}

LoadedModel LoadModel(const std::string& path) {
  io::SafetensorsContents contents = io::LoadSafetensors(path, /*require_checksum=*/true);
  auto it = contents.metadata.find("config");
  ATTEND_CHECK(it != contents.metadata.end(), path, ": not a model checkpoint (no config)");
  // The file may come from anywhere: its config is parsed with bounded nesting and quoted short.
  const nlohmann::json config =
      io::ParseUntrustedJson(it->second, path + ": the checkpoint's config");
  ATTEND_CHECK(config.is_object() && config.contains("model"), path,
               ": the checkpoint's config has no model section");
  models::ModelConfig mc;
  try {
    mc = models::ModelConfig::FromJson(config.at("model").dump());
  } catch (const Error& e) {
    ATTEND_CHECK(false, path, ": ", e.what());
  }
  auto v = contents.metadata.find(kVocabKey);
  ATTEND_CHECK(v != contents.metadata.end(), path, ": the checkpoint holds no vocabulary");
  LoadedModel out;
  out.vocab = Vocabulary::FromBytes(Base64Decode(v->second, path), path);
  out.train_json = config.contains("train") ? config.at("train").dump() : "{}";
  const bool speech = mc.speech();
  ATTEND_CHECK(
      (!mc.token_source() || out.vocab.size() == mc.src_vocab) && out.vocab.size() == mc.tgt_vocab,
      path, ": vocabulary size ", out.vocab.size(), " does not match the model's ", mc.src_vocab,
      "/", mc.tgt_vocab);
  if (speech) {
    ATTEND_CHECK(config.contains("features"), path,
                 ": a speech model's checkpoint must record its feature options");
    out.features = FeatureOptionsFromJson(config.at("features").dump(), path);
    ATTEND_CHECK(out.features.mel_bins == mc.feature_dim, path, ": the model reads ",
                 mc.feature_dim, " features per frame, its feature options give ",
                 out.features.mel_bins);
  }
  // The config decides how much the model allocates; the file's tensors are what it must hold
  // (LoadCheckpoint checks every name and shape once it is built). Building is capped by them,
  // so a config claiming a far larger model fails here instead of allocating gigabytes. The
  // cap counts every request, so it leaves room for initialisation: a tensor, its draw, scaled,
  // shifted (4x), an embedding drawn twice (7x; tested for every architecture).
  uint64_t file_bytes = 0;
  // (A quantized checkpoint's i8 matrices become f32: counted at 4 bytes.)
  for (const auto& [name, t] : contents.tensors)
    file_bytes +=
        static_cast<uint64_t>(t.numel()) * (t.dtype() == DType::kI8 ? 4 : DTypeSize(t.dtype()));
  const bool quantized = contents.metadata.count(io::kQuantizedKey) > 0;
  const uint64_t cap = models::kModelBuildFactor * file_bytes + (uint64_t{16} << 20);
  Generator gen(0);
  {
    AllocationLimitGuard limit(
        cap, path + ": the config describes a larger model than the file's " +
                 std::to_string(file_bytes) + " bytes of tensors (" + mc.ToJson() + ")");
    // Every tensor is overwritten below (LoadCheckpoint requires them all): no draws.
    nn::init::SkipRandomInit no_draws;
    out.model = models::MakeModel(mc, gen);
  }
  // The file read above (its checksum checked), not read again: the second read and checksum
  // gone, a 10-sentence `attend translate` went 0.31 -> 0.26 s (docs/results.md, issue 20).
  io::LoadCheckpoint(std::move(contents), path, *out.model);
  out.model->Eval();
  // A quantized checkpoint decodes in the precision it was rounded for.
  if (quantized) out.model->SetDecodePrecision(nn::Precision::kInt8);
  return out;
}

}  // namespace attend::nmt
