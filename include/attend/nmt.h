// Neural machine translation on top of the models: the subword vocabulary (SentencePiece),
// token-count batching with length buckets, the trainer, greedy and beam search, alignments.
// The `attend train` and `attend translate` commands are thin layers over these calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "attend/audio.h"
#include "attend/models.h"
#include "attend/tensor.h"
#include "attend/vision.h"

namespace attend::data {
struct ImageCaption;
}  // namespace attend::data
namespace attend::dist {
class Communicator;
}  // namespace attend::dist

namespace attend::nmt {

// ---- vocabulary ------------------------------------------------------------------------------
// One joint subword vocabulary for both languages (so the Transformer can share embeddings).
// Ids 0..3 are pad, unk, bos, eos (models::SpecialIds).
struct VocabularyOptions {
  int64_t size = 8000;
  std::string model_type = "unigram";  // unigram | bpe | char (one piece per character) | word
  double character_coverage = 1.0;
  int64_t max_sentences = 200000;  // sentences sampled for training the vocabulary
  uint32_t seed = 1;
};

class Vocabulary {
 public:
  Vocabulary();
  ~Vocabulary();
  Vocabulary(Vocabulary&&) noexcept;
  Vocabulary& operator=(Vocabulary&&) noexcept;
  // Trains on `sentences` (both languages' sides); deterministic for the same input and seed.
  static Vocabulary Train(const std::vector<std::string>& sentences,
                          const VocabularyOptions& options);
  // A SentencePiece model file (or its bytes); `source` names it in errors. The model must use
  // the ids 0..3 for pad, unk, bos, eos.
  static Vocabulary Load(const std::string& path);
  static Vocabulary FromBytes(const std::string& bytes, const std::string& source);
  void Save(const std::string& path) const;  // atomically
  std::string bytes() const;

  int64_t size() const;
  std::vector<int64_t> Encode(const std::string& text) const;  // no bos/eos
  std::string Decode(const std::vector<int64_t>& ids) const;   // stops at nothing; skips 0..3
  std::string Piece(int64_t id) const;
  std::vector<std::string> Pieces(const std::vector<int64_t>& ids) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- data ------------------------------------------------------------------------------------
// A word alignment: (source, target) pairs of 0-based positions, as metrics::AlignmentLinks.
using AlignmentLinks = std::vector<std::pair<int64_t, int64_t>>;

// A sentence pair; for speech an utterance: feature frames (row-major [frames, feature_dim]) as
// the source and the transcript's ids as the target; for captioning an image (f32 [C, H, W] in
// [0, 1], feature_dim W, so C * H "frames") and one of its captions.
struct Example {
  std::vector<int64_t> src, tgt;  // subword ids, no bos/eos
  int64_t index = 0;              // line in the corpus
  std::vector<float> features;    // speech only
  // Captioning: the image's pixels, shared by the examples of one image's captions.
  std::shared_ptr<const std::vector<float>> image;
  // Captioners that read given regions: K boxes x0, y0, x1, y1 in the model's pixels.
  std::shared_ptr<const std::vector<float>> regions;
  int64_t feature_dim = 0;  // > 0 for speech and images
  // Guided alignment: the reference links between subword positions (src piece, tgt piece).
  AlignmentLinks links;
  const std::vector<float>& values() const { return image ? *image : features; }
  int64_t source_length() const {
    return feature_dim > 0 ? static_cast<int64_t>(values().size()) / feature_dim
                           : static_cast<int64_t>(src.size());
  }
};

// Encodes sentence pairs; pairs longer than max_len subwords on either side are dropped
// (training) and counted in *dropped.
std::vector<Example> EncodePairs(const Vocabulary& vocab,
                                 const std::vector<std::pair<std::string, std::string>>& pairs,
                                 int64_t max_len, int64_t* dropped = nullptr);

// Pads the examples `order` of `examples` into a batch (tgt_in = bos y, tgt_out = y eos); speech
// examples give a float source [B, frames, feature_dim] padded with zero frames.
models::Batch MakeBatch(const std::vector<Example>& examples, const std::vector<int64_t>& order);

// Batches by token count: examples sorted by length inside buckets, each batch holds at most
// max_tokens padded target (and source) tokens; the order of batches is shuffled per epoch from
// (seed, epoch), so an epoch's batches are a pure function of the data, the seed and the epoch.
std::vector<std::vector<int64_t>> MakeBatches(const std::vector<Example>& examples,
                                              int64_t max_tokens, uint64_t seed, int64_t epoch);

// ---- search ----------------------------------------------------------------------------------
// Beam search with beam B: each live hypothesis proposes its B best tokens; the B best non-eos
// proposals of a sentence live on, and every eos proposal ranked before the last of them
// finishes a hypothesis. A sentence ends when nothing lives on, or when no live hypothesis can
// still beat the nbest-th finished score (a bound valid with the length penalty: log-probs only
// fall, and the penalty is largest at the length limit), or at the length limit. B = 1 is greedy.
struct SearchOptions {
  int64_t beam = 5;             // 1 = greedy
  int64_t nbest = 1;            // hypotheses returned per sentence (<= beam)
  double length_penalty = 1.0;  // GNMT's alpha: score / ((5 + len) / 6)^alpha; 0 = none
  double max_len_ratio = 2.0;   // output length limit: ratio * source length + max_len_extra
  int64_t max_len_extra = 10;
  int64_t batch_size = 32;      // sentences decoded together
  int64_t no_repeat_ngram = 0;  // > 0: no n-gram of this size twice in a hypothesis
  bool keep_attention = false;  // store each target token's weights over the source
  // Vocabulary shortlist (nmt::Shortlist::Targets): given a batch's token sources, the sorted
  // target ids to score (eos among them); the model scores only those
  // (Seq2Seq::RestrictOutput). Empty function = the whole vocabulary.
  std::function<std::vector<int64_t>(const std::vector<std::vector<int64_t>>&)> output_ids;
};

struct Hypothesis {
  std::vector<int64_t> tokens;                // without bos / eos
  double log_prob = 0.0;                      // sum of the tokens' (and eos') log-probabilities
  double score = 0.0;                         // log_prob with the length penalty
  std::vector<std::vector<float>> attention;  // [tokens + 1 (eos)][source length]
};

// Translates each source (subword ids) and returns nbest hypotheses per sentence, best first.
// Runs in eval mode without gradients; the model's state is restored afterwards.
std::vector<std::vector<Hypothesis>> Translate(models::Seq2Seq& model,
                                               const std::vector<std::vector<int64_t>>& sources,
                                               const SearchOptions& options);

// The same for examples: token sources, or speech features (transcription); the examples'
// targets are not read. Attention rows cover the positions the model attends over (for speech,
// the listener's reduced time steps).
std::vector<std::vector<Hypothesis>> TranslateExamples(models::Seq2Seq& model,
                                                       const std::vector<Example>& sources,
                                                       const SearchOptions& options);

// Alignments from attention weights [target][source]: hard (Pharaoh "src-tgt" pairs, each
// target token aligned to its highest-weighted source token, 0-based) and soft (one
// distribution per target token: weights joined by ' ', tokens by " | ").
std::string HardAlignment(const std::vector<std::vector<float>>& attention);
std::string SoftAlignment(const std::vector<std::vector<float>>& attention, int precision = 3);

// ---- attention as word alignment; guided alignment (src/nmt/alignment.cc) ----------------------
// Word alignments count words split at spaces and tabs, as Pharaoh files do.

// The word (0-based) each piece of vocab.Encode(text) belongs to; *words gets the number of words.
// Each word is encoded alone and the pieces joined must be the sentence's (true of SentencePiece,
// whose pieces never cross a space); attend::Error naming `where` otherwise.
std::vector<int64_t> PieceWords(const Vocabulary& vocab, const std::string& text,
                                const std::string& where, int64_t* words = nullptr);

// A Pharaoh file, one line per sentence pair, every line kept (an empty line: no links).
// "s?t" links go to `possible` when given, else they count as links. attend::Error names
// file:line for a malformed link.
std::vector<AlignmentLinks> ReadAlignments(const std::string& path,
                                           std::vector<AlignmentLinks>* possible = nullptr);

// Guided alignment: each example's subword links from the word links of its pair
// (alignments[e.index] of pairs[e.index], so filtering, bucketing and shuffling keep them
// together): every piece of source word s with every piece of target word t. A word outside
// its sentence is an attend::Error naming `source`:line. Returns the number of subword links.
int64_t AttachAlignments(std::vector<Example>& examples, const Vocabulary& vocab,
                         const std::vector<std::pair<std::string, std::string>>& pairs,
                         const std::vector<AlignmentLinks>& alignments, const std::string& source);

// The reference rows of MakeBatch(examples, order), f32 [B, tgt_len, src_len]: row t of example
// r spreads 1 evenly over the source pieces target piece t is linked to (the distribution the
// attention should predict y_t with); zeros for rows without a link (eos, padding). *linked: the
// rows with a link.
Tensor AlignmentTargets(const std::vector<Example>& examples, const std::vector<int64_t>& order,
                        int64_t tgt_len, int64_t src_len, int64_t* linked);

// Guided alignment's loss (as Marian's "ce" and OpenNMT-py's): the cross-entropy of attention
// rows `weights` [B, T, S] against `targets` (AlignmentTargets) averaged over the linked rows,
//   -(1 / linked) sum_{b,t,s} targets * log(max(weights, 1e-18))
// (the clamp only keeps log finite where a weight underflowed: a linked target there costs 41).
Tensor GuidedAlignmentLoss(const Tensor& weights, const Tensor& targets, int64_t linked);

// The decoder's cross-attention sites of a model: its layers (the Transformer's decoder layers;
// one for the RNN) and heads per layer.
int64_t CrossAttentionLayers(const models::ModelConfig& config);
int64_t CrossAttentionHeads(const models::ModelConfig& config);

// The decoder's cross-attention over each (source, target) pair (ids without bos/eos),
// teacher-forced in eval mode without gradients (Seq2Seq::AttentionMaps, kind "cross"): one
// map per layer, weights [B, H, T + 1, S] (the last real row of each pair: eos).
std::vector<models::AttentionMap> CrossAttentionMaps(
    models::Seq2Seq& model, const std::vector<std::vector<int64_t>>& sources,
    const std::vector<std::vector<int64_t>>& targets);
// Pair b's rows of such a map, head `head` (-1: the mean of the heads), cut to rows x cols.
std::vector<std::vector<float>> MapRows(const models::AttentionMap& map, int64_t b, int64_t head,
                                        int64_t rows, int64_t cols);

// Hard word alignment from subword attention [target pieces (+ eos row, ignored)][source
// pieces]: word weights with a target word's row the mean of its pieces' rows and a source
// word's column the sum of its pieces' columns; each target word linked to its highest source
// word (the first on ties). Links in target order.
AlignmentLinks WordAlignment(const std::vector<std::vector<float>>& attention,
                             const std::vector<int64_t>& src_words,
                             const std::vector<int64_t>& tgt_words);

// The weight table of the articles ("I love you" -> "je t'aime"): source tokens across, target
// tokens down, each weight with two decimals, columns aligned. attention [tgt][src].
std::string AlignmentTable(const std::vector<std::string>& src, const std::vector<std::string>& tgt,
                           const std::vector<std::vector<float>>& attention);
// Labels for such a table: a side whose pieces each start a word (a word vocabulary) is shown as
// words (without SentencePiece's U+2581 marker), any other as its pieces.
std::vector<std::string> TableLabels(const std::vector<std::string>& pieces);

// ---- training --------------------------------------------------------------------------------
// What the trainer reports as it goes, in numbers (the same as the log's lines, unrounded).
// Options::on_event receives one per log line: the start, every log_every steps, each
// validation, and the stop.
struct TrainEvent {
  enum class Kind { kStart, kStep, kValidation, kStopped };
  Kind kind = Kind::kStart;
  std::string text;  // the log line
  int64_t step = 0, epoch = 0;
  double seconds = 0.0;  // of the run so far, resumed runs included
  // kStep: means over the steps since the previous step event.
  double loss = 0.0, tokens_per_second = 0.0, lr = 0.0;
  double align_loss = -1.0;  // guided alignment's loss per linked row; -1 without it
  // kValidation (translation: BLEU and chrF; speech: WER and CER, the others 0).
  double dev_loss = 0.0, bleu = 0.0, chrf = 0.0, wer = 0.0, cer = 0.0;
  bool best = false;
  std::string stop_reason;  // kStopped
};

struct TrainOptions {
  std::string out_dir = "model";  // best.ckpt, last.ckpt, vocab.model, train.log
  int64_t max_tokens = 2048;      // tokens per batch
  int64_t max_len = 100;          // training pairs longer than this (subwords) are dropped
  double lr = 1e-3;               // peak learning rate (Adam)
  int64_t warmup = 500;           // steps of linear warm-up, then inverse square root decay
  double clip_norm = 1.0;
  double label_smoothing = 0.1;
  int64_t max_steps = 0, max_epochs = 0;  // 0 = no limit (one of the three must be set)
  double max_minutes = 0.0;
  int64_t valid_every = 500;      // steps between validations (and at the end)
  int64_t valid_sentences = 500;  // dev sentences decoded (greedy) for BLEU/chrF
  int64_t patience = 0;           // validations without a better dev BLEU before stopping; 0 = off
  uint64_t seed = 1;
  int64_t log_every = 50;
  bool progress = true;  // the progress bar on stderr
  int threads = 0;       // 0 = the machine's cores
  // Speech models (feature_dim > 0): validation scores WER and CER (the best has the lowest
  // WER), and training batches may be masked SpecAugment-style, from (seed, step, row).
  bool spec_augment = false;
  audio::MaskOptions masks;
  audio::FeatureOptions features;  // recorded in the checkpoints for transcription
  // Guided alignment (the examples carry Example::links): the weight of GuidedAlignmentLoss added
  // to the cross-entropy (0 = off), on head alignment_head of decoder layer alignment_layer's
  // cross-attention (-1 = the last layer; the RNN has one site, layer 0 head 0).
  double guided_alignment_weight = 0.0;
  int64_t alignment_layer = -1, alignment_head = 0;
  // Set (from any thread) to end the run after the current step, with its last validation and
  // checkpoints as usual; the summary's stop_reason is then "interrupted". (The Python
  // bindings set it on Ctrl-C or when a progress callback raises.)
  const std::atomic<bool>* stop_requested = nullptr;
  // Large batches on small hardware. Each optimizer step takes `accumulate` batches of
  // max_tokens per rank (Marian's --optimizer-delay, fairseq's --update-freq), their gradients
  // summed and normalised by the target tokens of all of them, across ranks too.
  int64_t accumulate = 1;
  // Data-parallel training over comm's ranks (null = this process alone): each rank takes its
  // share of every step's batches, gradients are summed over the ranks, rank 0 validates, logs
  // and writes the checkpoints. Every rank must be given the same options and data (checked).
  dist::Communicator* comm = nullptr;
  // An exponential moving average of the weights (decay per step; 0 = off), updated after each
  // step, validated and saved in best.ckpt in place of the raw weights, kept in ema.ckpt.
  double ema = 0.0;
  // Numbered checkpoints OUT/ckpt.STEP.ckpt written at each validation, the newest N kept (for
  // `attend average`); 0 = none.
  int64_t keep_checkpoints = 0;
  // Called on the training thread with each event (see TrainEvent); empty = none. An exception
  // it throws ends the run as any error does.
  std::function<void(const TrainEvent&)> on_event;
};

struct TrainSummary {
  int64_t steps = 0, epochs_started = 0;
  // The best validation score: dev BLEU, or for speech minus the dev WER (higher is better).
  double best_bleu = 0.0, last_dev_loss = 0.0, seconds = 0.0;
  double tokens_per_second = 0.0;  // target tokens per second of training steps (no validation)
  // Data-parallel: time in the gradients' allreduce, and before it waiting for the slowest rank.
  double allreduce_seconds = 0.0, wait_seconds = 0.0;
  std::string stop_reason;
};

// Trains `model` on `train`, validating on `dev`, writing checkpoints to options.out_dir. With
// `resume`, continues last.ckpt exactly (same batches, same random streams) to the same result
// an uninterrupted run gives. The config JSON stored in the checkpoints holds `model_config`.
TrainSummary Train(models::Seq2Seq& model, const Vocabulary& vocab,
                   const std::vector<Example>& train, const std::vector<Example>& dev,
                   const std::vector<std::pair<std::string, std::string>>& dev_text,
                   const TrainOptions& options, bool resume);

// ---- `attend train` as a library call ---------------------------------------------------------
// Everything `attend train` reads before nmt::Train: where the data is, the vocabulary, the model
// (models::ModelConfig, whose options have their own table) and the training options. The
// command line and the Python bindings fill one from their arguments and call RunTraining.
struct TrainRun {
  std::string task = "translation";  // translation | speech | caption
  // A corpus directory (train.SRC, train.TGT, dev.SRC, dev.TGT; speech and caption: train.tsv
  // and dev.tsv), or explicit files.
  std::string data_dir, src_lang = "en", tgt_lang = "de";
  std::string train_src, train_tgt, dev_src, dev_tgt, train_tsv, dev_tsv;
  int64_t max_train = 0;      // 0 = all
  int64_t max_frames = 1500;  // speech: 15 s
  std::string vocab_path;
  VocabularyOptions vocab;
  models::ModelConfig model;
  TrainOptions train;
  bool resume = false, no_progress = false;
  // Guided alignment: a Pharaoh file, one line per training pair, and the loss's weight.
  std::string guided_alignment;
  double guided_alignment_weight = 0.1;
};

// One option of TrainRun by the command line's name without dashes ("max-tokens"); `value`
// points into the TrainRun it was listed for. `flag`: a bool set by its mere presence.
struct TrainRunOption {
  const char* name;
  const char* help;
  std::variant<std::string*, int64_t*, double*, bool*, int*, uint64_t*> value;
  bool flag = false;
  bool show_default = true;
};
// Every option of `run` except the model's (models::ModelConfig::ForEachOption lists those) and
// the image classifier's, in the command's order.
std::vector<TrainRunOption> TrainRunOptions(TrainRun& run);

// Reads the data, trains or loads the vocabulary, builds the model and trains it, as `attend
// train` does (notes on the data and the vocabulary go to stderr). `stop`, when given and set
// before training starts, skips training ("interrupted before training").
TrainSummary RunTraining(TrainRun& run, const std::atomic<bool>* stop = nullptr);

// ---- speech -----------------------------------------------------------------------------------
// Utterances as examples: each file is read (any WAV the audio reader takes), resampled, turned
// into log-mel features normalised per utterance, and its transcript encoded. Utterances with
// more than max_frames frames or max_len target ids, or an empty transcript, are dropped and
// counted in *dropped (0 = no limit); a file that cannot be read is an error naming it. Runs on
// `threads` threads (0 = the machine's cores); the order of the result is the manifest's.
std::vector<Example> LoadSpeechExamples(const std::vector<audio::Utterance>& utterances,
                                        const Vocabulary& vocab,
                                        const audio::FeatureOptions& features, int64_t max_frames,
                                        int64_t max_len, int threads, int64_t* dropped = nullptr);
// Transcripts are limited to this many ids per feature frame (SearchOptions::max_len_ratio):
// speech runs at ~15 characters a second, 0.15 per 10 ms frame; twice that leaves room.
constexpr double kSpeechLengthRatio = 0.3;
// One waveform's example (features only, no target), as transcription reads it.
Example SpeechExample(const audio::Waveform& wave, const audio::FeatureOptions& features);
// The feature options a speech model was trained with (stored in its checkpoint's config).
std::string FeatureOptionsJson(const audio::FeatureOptions& options);
audio::FeatureOptions FeatureOptionsFromJson(const std::string& json, const std::string& source);

// ---- image captioning -------------------------------------------------------------------------
// An image as a captioner of `config` reads it: converted to config.image_channels, resized to
// image_size x image_size (vision::Resize), f32 [C, H, W] in [0, 1]; no target. A top-down model
// trained with --true-boxes also reads `boxes` (in the image's own pixels; scaled to the model's
// and completed by models::FillRegions); attend::Error when they are missing.
Example ImageExample(const vision::Image& image, const models::ModelConfig& config,
                     const std::vector<models::Seq2Seq::Box>* boxes = nullptr);
// Boxes per image path, as data::ReadItemsJsonl gives them.
using ImageBoxes = std::map<std::string, std::vector<models::Seq2Seq::Box>>;
ImageBoxes ItemBoxes(const std::string& items_jsonl);
// Images with their captions as examples. With `all_captions` (training) one example per
// (image, caption), the examples of an image sharing its pixels; otherwise one per image with its
// first caption as the target (validation). Captions with more than max_len ids are dropped and
// counted in *dropped (0 = no limit). Images are read on `threads` threads (0 = the machine's
// cores); an unreadable image is an error naming its file; the order is the input's.
// `boxes` gives every image's boxes to a model that reads them (else unused).
std::vector<Example> LoadCaptionExamples(const std::vector<data::ImageCaption>& images,
                                         const Vocabulary& vocab, const models::ModelConfig& config,
                                         bool all_captions, int64_t max_len, int threads,
                                         int64_t* dropped = nullptr,
                                         const ImageBoxes* boxes = nullptr);
// The longest caption the search writes (SearchOptions::max_len_extra with max_len_ratio 0).
constexpr int64_t kCaptionMaxWords = 40;
// Grounding: the share of attention mass that `weights` (one per attended position, summing to
// 1) put inside `box`, each position's weight spread evenly over its own box (`positions`, as
// Seq2Seq::AttendedBoxes gives them).
double AttentionMassInBox(const std::vector<float>& weights,
                          const std::vector<models::Seq2Seq::Box>& positions,
                          const models::Seq2Seq::Box& box);

// A trained model loaded from a checkpoint written by Train (config, weights and vocabulary).
struct LoadedModel {
  std::shared_ptr<models::Seq2Seq> model;
  Vocabulary vocab;
  std::string train_json;          // the training options the checkpoint records ("{}" if none)
  audio::FeatureOptions features;  // speech models: how their input features are computed
};
// A quantized checkpoint (attend quantize) loads too: its model decodes in int8
// (Seq2Seq::SetDecodePrecision changes it).
LoadedModel LoadModel(const std::string& checkpoint_path);

}  // namespace attend::nmt
