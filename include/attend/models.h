// Sequence-to-sequence models behind one interface: the RNN encoder-decoder without attention
// (one fixed context vector), the RNN encoder-decoder with attention, the Transformer, and the
// image captioners (Show, Attend and Tell; Bottom-Up and Top-Down), whose source is an image.
// Training uses Forward (teacher forcing); translation uses Start / Step / Select, which decode one
// token at a time with everything that depends only on the source computed once per sentence
// (encoder states, projected keys, the Transformer's key/value caches).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "attend/nn.h"
#include "attend/tensor.h"

namespace attend::models {

// Token ids every vocabulary reserves (nmt::Vocabulary keeps them in these places).
struct SpecialIds {
  static constexpr int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;
};

// A padded batch of sentence pairs (token ids, i64).
struct Batch {
  Tensor src;                              // [B, S], padded with kPad
  Tensor src_lengths;                      // [B]
  Tensor tgt_in;                           // [B, T]: kBos y_1 .. y_{n}, padded with kPad
  Tensor tgt_out;                          // [B, T]: y_1 .. y_n kEos, padded with kPad
  Tensor tgt_lengths;                      // [B] (n + 1)
  int64_t src_tokens = 0, tgt_tokens = 0;  // real (non-pad) tokens
  // Captioners that read given region boxes (top-down with --true-boxes): f32 [B, K, 4], each
  // box x0, y0, x1, y1 in the model's pixels.
  Tensor regions;
};

// ---- the options' choices: enums with one name table each ----
enum class Arch { kRnn, kRnnAttention, kTransformer, kShowAttendTell, kTopDown, kPervasive };
// advanced-lstm: an LSTM whose recurrent input is an attention-weighted mix of the states of the
// previous `history` steps (Advanced LSTM, Tao and Liu 2018).
enum class Cell { kGru, kLstm, kAdvancedLstm };
// qkv: the query, the keys and the values projected (W_q s, W_k h_j, W_v h_j, no biases) and the
// scores divided by sqrt(attention_dim), the encyclopedia's "encoder-decoder QKV"
// (attention::QkvScore); the context mixes the values, so it is attention_dim wide and the layers
// that read it (combine; bahdanau's recurrent input) are sized for that.
enum class Score { kAdditive, kDot, kGeneral, kConcat, kLocation, kLocationAware, kQkv };
// Where the RNN decoder's attention sits. luong (Luong et al. 2015): scored from the current
// state s_t after the recurrent step, the context combined after it (h~ = tanh(W_c [c_t; s_t])),
// with input feeding. bahdanau (Bahdanau et al. 2015): scored from the previous state s_{t-1}
// (s_0: the bridged encoder summary; any score and window), the context fed into the recurrent
// step with the previous word ([y_{t-1}; c_t]), the output tanh(W_c [s_t; c_t; y_{t-1}]) (no
// maxout) before `out`. tutorial (the PyTorch tutorial's AttnDecoderRNN): the weights
// softmax(W_a [emb(y_{t-1}); s_{t-1}]) over max_source_len positions, cut to the source and
// masked to its real length (the tutorial does not mask), then relu(W [emb; c_t]) (hidden_dim
// wide) into the recurrent step, the output read from s_t; its own layer replaces --score and
// --window (the model refuses others), and a source longer than max_source_len is an error.
// bahdanau and tutorial ignore input_feeding (the context already enters the step); with several
// decoder layers s_{t-1} is the top layer's.
enum class Wiring { kLuong, kBahdanau, kTutorial };
// A self-attention layer over the RNN encoder's states (the encyclopedia's "encoder self dot /
// encoder self QKV"), added to them as a residual: h'_i = h_i + sum_j alpha_ij v_j over the real
// positions j. dot: scores h_i . h_j / sqrt(hidden_dim), v = h; qkv: attention::QkvScore with
// v_j = W_v h_j hidden_dim wide. The decoder attends over h', and the encoder summary (the
// bridge's input, and the fixed context of arch rnn) is read from h' where the final states sit.
// No dropout inside; AttentionMaps shows it as the site "encoder.0.self".
enum class SelfAttend { kNone, kDot, kQkv };
enum class Window { kGlobal, kLocalM, kLocalP };
// How a captioner looks at the image: soft attention, hard attention (one cell per word, sampled
// and trained with REINFORCE; the highest-scoring cell when decoding), or not at all (the mean
// of the grid, the baseline).
enum class ImageAttend { kSoft, kHard, kNone };

template <typename E>
struct EnumName {
  E value;
  const char* name;
};
// The name table of each enum: the one list of its values and their spellings, read by the
// checkpoint's JSON, `attend train`'s options and every message.
template <typename E>
struct EnumNames;
template <>
struct EnumNames<Arch> {
  static constexpr EnumName<Arch> kTable[] = {{Arch::kRnn, "rnn"},
                                              {Arch::kRnnAttention, "rnn-attention"},
                                              {Arch::kTransformer, "transformer"},
                                              {Arch::kShowAttendTell, "show-attend-tell"},
                                              {Arch::kTopDown, "top-down"},
                                              {Arch::kPervasive, "pervasive"}};
};
template <>
struct EnumNames<Cell> {
  static constexpr EnumName<Cell> kTable[] = {
      {Cell::kGru, "gru"}, {Cell::kLstm, "lstm"}, {Cell::kAdvancedLstm, "advanced-lstm"}};
};
template <>
struct EnumNames<Score> {
  static constexpr EnumName<Score> kTable[] = {{Score::kAdditive, "additive"},
                                               {Score::kDot, "dot"},
                                               {Score::kGeneral, "general"},
                                               {Score::kConcat, "concat"},
                                               {Score::kLocation, "location"},
                                               {Score::kLocationAware, "location-aware"},
                                               {Score::kQkv, "qkv"}};
};
template <>
struct EnumNames<Wiring> {
  static constexpr EnumName<Wiring> kTable[] = {
      {Wiring::kLuong, "luong"}, {Wiring::kBahdanau, "bahdanau"}, {Wiring::kTutorial, "tutorial"}};
};
template <>
struct EnumNames<SelfAttend> {
  static constexpr EnumName<SelfAttend> kTable[] = {
      {SelfAttend::kNone, "none"}, {SelfAttend::kDot, "dot"}, {SelfAttend::kQkv, "qkv"}};
};
template <>
struct EnumNames<Window> {
  static constexpr EnumName<Window> kTable[] = {
      {Window::kGlobal, "global"}, {Window::kLocalM, "local-m"}, {Window::kLocalP, "local-p"}};
};

template <>
struct EnumNames<ImageAttend> {
  static constexpr EnumName<ImageAttend> kTable[] = {
      {ImageAttend::kSoft, "soft"}, {ImageAttend::kHard, "hard"}, {ImageAttend::kNone, "none"}};
};

template <typename E>
const char* NameOf(E value) {
  for (const auto& e : EnumNames<E>::kTable)
    if (e.value == value) return e.name;
  return "?";
}
// "a | b | c": the allowed names, for help texts and messages.
template <typename E>
std::string AllowedNames() {
  std::string out;
  for (const auto& e : EnumNames<E>::kTable)
    out += (out.empty() ? "" : " | ") + std::string(e.name);
  return out;
}
// The value named `name`; attend::Error naming `what` and the allowed names otherwise.
[[noreturn]] void ThrowParseError(std::string_view what, std::string_view name,
                                  const std::string& allowed);

template <typename E>
E ParseEnum(std::string_view name, std::string_view what) {
  for (const auto& e : EnumNames<E>::kTable)
    if (name == e.name) return e.value;
  ThrowParseError(what, name, AllowedNames<E>());
}

// One option of ModelConfig: its name (the checkpoint's JSON key; `attend train` spells it
// --name-with-dashes), its help, and how the command line sets it: `flag`, for a bool, is the
// flag that flips the default ("--no-input-feeding", "--transparent"); options without help are not
// on the command line (the vocabulary sizes come from the vocabulary).
struct OptionInfo {
  const char* name;
  const char* help;
  const char* flag = nullptr;
};

// Every option of every model, in one typed place. ForEachOption walks the table that ToJson,
// FromJson, Validate and `attend train` all read, so an option is added in one line there.
struct ModelConfig {
  Arch arch = Arch::kRnnAttention;
  int64_t src_vocab = 0, tgt_vocab = 0;
  double dropout = 0.1;
  // RNN encoder-decoder.
  Cell cell = Cell::kGru;
  int64_t embed_dim = 256;
  int64_t hidden_dim = 256;  // decoder size = encoder output (hidden_dim / 2 per direction)
  int64_t encoder_layers = 1, decoder_layers = 1;
  Score score = Score::kAdditive;
  int64_t attention_dim = 256;  // additive / concat / qkv
  Wiring wiring = Wiring::kLuong;
  SelfAttend encoder_self_attention = SelfAttend::kNone;
  int64_t history = 3;  // advanced-lstm: previous steps the cell attends over
  Window window = Window::kGlobal;
  int64_t window_size = 5;       // D of the local windows
  int64_t max_source_len = 256;  // location score's positions
  bool input_feeding = true;
  double teacher_forcing = 1.0;  // probability of feeding the reference token in training
  // Speech (Listen, Attend and Spell): with feature_dim > 0 the source is a float [B, S, F]
  // sequence of feature frames instead of token ids, and the encoder is a pyramidal "listener":
  // encoder_layers bidirectional layers over the frames, then pyramid_levels layers that each
  // read two adjacent outputs of the layer below concatenated (the time axis halves per level).
  // frame_stacking k first joins k consecutive frames into one (the listener's input is k *
  // feature_dim wide, its time axis k times shorter): fewer recurrent steps, as Sak et al. 2015.
  int64_t feature_dim = 0;
  int64_t frame_stacking = 1;
  int64_t pyramid_levels = 2;
  // The location-aware score (Chorowski et al. 2015): location_filters convolution filters of
  // width location_width over the previous step's weights; sharpening scales the scores (> 1
  // sharper) before the softmax.
  int64_t location_filters = 10, location_width = 31;
  double sharpening = 1.0;
  // Image captioning (arch show-attend-tell | top-down): the source is an image of
  // image_channels x image_size x image_size pixels in [0, 1], given as f32 [B, C * H, W] (an
  // example's features hold it row-major, feature width W). A CNN of four 3x3 convolutions
  // (cnn_channels, 2x, 4x, 8x wide; a 2x2 max-pool after each of the first three) turns it into
  // a grid of (image_size / 8)^2 feature vectors. show-attend-tell's LSTM decoder attends over
  // the grid (image_attention), gated by beta, with the doubly stochastic penalty weighted by
  // attention_penalty (per target token, as the trainer's cross-entropy); top-down's two LSTMs
  // attend over `regions` region features (proposals from the image: see
  // src/models/captioner.cc).
  int64_t image_size = 96, image_channels = 1, cnn_channels = 16;
  ImageAttend image_attention = ImageAttend::kSoft;
  double attention_penalty = 1.0;
  int64_t regions = 16;
  bool proposals = true;  // top-down: regions from proposals (false: given with the batch)
  // Transformer (Vaswani et al. 2017; the Annotated Transformer).
  int64_t d_model = 256, heads = 4, ff_dim = 1024, layers = 3;
  int64_t decoder_depth = 0;  // decoder layers; 0: as many as the encoder's `layers`
  int64_t DecoderDepth() const { return decoder_depth > 0 ? decoder_depth : layers; }
  bool pre_norm = true;
  bool share_embeddings = true;  // source, target and output projection share one matrix
  int64_t max_positions = 1024;
  // Transparent attention (Bapna et al. 2018): each decoder layer's cross-attention reads its own
  // learned softmax-weighted combination of the embeddings and every encoder layer's output.
  bool transparent = false;
  // Pervasive attention (Elbayad et al. 2018): the source and target embeddings (embed_dim each)
  // concatenated into a [T, S] grid, dense_layers layers of a DenseNet of masked kernel x kernel
  // convolutions (each adds `growth` channels; the filter never sees later target positions),
  // max-pooled over the source axis.
  int64_t dense_layers = 8, growth = 32, kernel = 3;

  // Calls f(const OptionInfo&, member&) for every option, in the order of the command line.
  template <typename Config, typename F>
  static void ForEachOption(Config& c, F&& f) {
    f(OptionInfo{"arch",
                 "Model: rnn | rnn-attention | transformer | show-attend-tell | top-down | "
                 "pervasive"},
      c.arch);
    f(OptionInfo{"src_vocab", nullptr}, c.src_vocab);
    f(OptionInfo{"tgt_vocab", nullptr}, c.tgt_vocab);
    f(OptionInfo{"dropout", "Dropout probability"}, c.dropout);
    f(OptionInfo{"cell", "RNN cell: gru | lstm | advanced-lstm"}, c.cell);
    f(OptionInfo{"embed_dim", "RNN and pervasive embedding size"}, c.embed_dim);
    f(OptionInfo{"hidden_dim", "RNN decoder size (encoder: half per direction)"}, c.hidden_dim);
    f(OptionInfo{"encoder_layers", "RNN encoder layers"}, c.encoder_layers);
    f(OptionInfo{"decoder_layers", "RNN decoder layers"}, c.decoder_layers);
    f(OptionInfo{"score",
                 "Attention score: additive | dot | general | concat | location | location-aware "
                 "| qkv"},
      c.score);
    f(OptionInfo{"attention_dim", "additive/concat/qkv attention size"}, c.attention_dim);
    f(OptionInfo{"wiring", "RNN attention wiring: luong | bahdanau | tutorial"}, c.wiring);
    f(OptionInfo{"encoder_self_attention",
                 "RNN: self-attention over the encoder: none | dot | qkv"},
      c.encoder_self_attention);
    f(OptionInfo{"history", "advanced-lstm: previous steps the cell attends over"}, c.history);
    f(OptionInfo{"window", "Attention window: global | local-m | local-p"}, c.window);
    f(OptionInfo{"window_size", "D of the local windows"}, c.window_size);
    f(OptionInfo{"max_source_len", "location score's and tutorial wiring's positions"},
      c.max_source_len);
    f(OptionInfo{"input_feeding", "Do not feed h~ to the next step", "--no-input-feeding"},
      c.input_feeding);
    f(OptionInfo{"teacher_forcing", "Ratio of reference inputs in training"}, c.teacher_forcing);
    f(OptionInfo{"feature_dim", nullptr}, c.feature_dim);
    f(OptionInfo{"frame_stacking", "Speech: frames joined into one listener input"},
      c.frame_stacking);
    f(OptionInfo{"pyramid_levels", "Speech: listener levels that halve the time axis"},
      c.pyramid_levels);
    f(OptionInfo{"location_filters", "location-aware score: filters"}, c.location_filters);
    f(OptionInfo{"location_width", "location-aware score: filter width (odd)"}, c.location_width);
    f(OptionInfo{"sharpening", "location-aware score: scale of the scores before softmax"},
      c.sharpening);
    f(OptionInfo{"image_size", "Captioning: image side in pixels (a multiple of 8)"}, c.image_size);
    f(OptionInfo{"image_channels", "Captioning: 1 (gray) or 3 (RGB)"}, c.image_channels);
    f(OptionInfo{"cnn_channels", "Captioning: the first convolution's channels"}, c.cnn_channels);
    f(OptionInfo{"image_attention", "show-attend-tell: soft | hard | none"}, c.image_attention);
    f(OptionInfo{"attention_penalty", "show-attend-tell: weight of the doubly stochastic penalty"},
      c.attention_penalty);
    f(OptionInfo{"regions", "top-down: region features per image"}, c.regions);
    f(OptionInfo{"proposals",
                 "top-down: the items' true boxes as regions instead of proposals (an upper "
                 "bound: needs the items' boxes, DIR/SPLIT.items.jsonl)",
                 "--true-boxes"},
      c.proposals);
    f(OptionInfo{"d_model", "Transformer model size"}, c.d_model);
    f(OptionInfo{"heads", "Transformer attention heads"}, c.heads);
    f(OptionInfo{"ff_dim", "Transformer feed-forward size"}, c.ff_dim);
    f(OptionInfo{"layers", "Transformer layers per stack"}, c.layers);
    f(OptionInfo{"decoder_depth", "Transformer: decoder layers when not --layers (0)"},
      c.decoder_depth);
    f(OptionInfo{"pre_norm", "Transformer: post-norm (default pre-norm)", "--post-norm"},
      c.pre_norm);
    f(OptionInfo{"share_embeddings", "Transformer: separate embeddings", "--no-share-embeddings"},
      c.share_embeddings);
    f(OptionInfo{"max_positions", "Transformer and pervasive: longest sequence"}, c.max_positions);
    f(OptionInfo{"transparent",
                 "Transformer: transparent attention (each decoder layer reads a learned mix of "
                 "all encoder layers)",
                 "--transparent"},
      c.transparent);
    f(OptionInfo{"dense_layers", "pervasive: DenseNet layers"}, c.dense_layers);
    f(OptionInfo{"growth", "pervasive: channels each layer adds"}, c.growth);
    f(OptionInfo{"kernel", "pervasive: convolution width (odd)"}, c.kernel);
  }

  // Speech: the listener steps a source of `frames` frames leaves to attend over (stacking and
  // every pyramid level round up), and the frames one step covers.
  int64_t ListenerSteps(int64_t frames) const;
  int64_t FramesPerStep() const { return frame_stacking << pyramid_levels; }
  // What the source is: token ids (translation), feature frames (speech) or an image.
  bool image() const { return arch == Arch::kShowAttendTell || arch == Arch::kTopDown; }
  bool speech() const { return feature_dim > 0 && !image(); }
  bool token_source() const { return feature_dim == 0 && !image(); }
  int64_t ImageGrid() const { return image_size / 8; }  // the CNN grid's side

  std::string ToJson() const;
  static ModelConfig FromJson(const std::string& json);  // throws attend::Error naming the key
  void Validate() const;                                 // throws attend::Error
};

// What one decoding step needs to keep per sentence (per beam hypothesis).
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  virtual int64_t rows() const = 0;  // hypotheses currently held
};

// The weights of one attention site over a teacher-forced pass: `name` as "encoder.0.self",
// "decoder.1.cross" or "attention" (the RNN's one site); weights [B, H, T_query, T_key] (H = 1
// for the RNN). Queries and keys: "self" on the encoder, source over source; "self" on the
// decoder, the decoder inputs (bos y) over themselves (causal); "cross" and the RNN's, the
// predicted tokens (y eos) over the source.
struct AttentionMap {
  std::string name;
  std::string kind;  // "self" | "cross"
  std::string side;  // "encoder" | "decoder"
  int64_t layer = 0;
  Tensor weights;
};

class Seq2Seq : public nn::Module {
 public:
  // Teacher-forced training: logits [B, T, V_tgt]. With `attention`, the decoder's attention
  // weights [B, T, S] (Transformer: last layer's cross-attention averaged over heads).
  virtual Tensor Forward(const Batch& batch, Tensor* attention = nullptr) = 0;
  // Forward, and in `weights` head `head` of decoder layer `layer`'s cross-attention [B, T, S]
  // with gradient (what guided alignment trains). Models with one attention site (the RNN's)
  // take layer 0, head 0: their Forward's weights (undefined for a model without attention).
  virtual Tensor ForwardWithHead(const Batch& batch, int64_t layer, int64_t head, Tensor* weights);
  // Encodes src [B, S] (lengths [B]) once and returns the state of B hypotheses.
  virtual std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& src_lengths) = 0;
  // The same from a batch (what the search calls): models that read more than the source (given
  // region boxes) take it from there.
  virtual std::unique_ptr<DecoderState> StartBatch(const Batch& batch) {
    return Start(batch.src, batch.src_lengths);
  }
  // One step: the last tokens i64 [N] of the N hypotheses -> log-probabilities [N, V_tgt];
  // with `attention`, the weights [N, S] this step put on the source.
  virtual Tensor Step(DecoderState& state, const Tensor& tokens, Tensor* attention = nullptr) = 0;
  // Keeps the hypotheses `rows` (i64 [N']; repeats allowed) in that order: beam search expands,
  // reorders and drops hypotheses with it.
  virtual void Select(DecoderState& state, const Tensor& rows) = 0;
  // Every attention site's weights, per head, over a teacher-forced pass of `batch` (no
  // gradients; call in eval mode for what decoding computes). The fixed-context RNN has none.
  // The default runs Forward and returns its weights as the one site "attention".
  virtual std::vector<AttentionMap> AttentionMaps(const Batch& batch);
  // The positions a source of `length` tokens (or frames, or image rows) leaves to attend over.
  virtual int64_t AttendedLength(int64_t length) const;
  // Training: a loss to add to the cross-entropy of the last Forward's logits (a penalty on the
  // attention, a REINFORCE surrogate); undefined when the model has none.
  virtual Tensor AuxiliaryLoss(const Batch& batch, const Tensor& logits);
  // Image models: per image of `src` (as Start reads it), the box (x0, y0, x1, y1 in pixels,
  // exclusive) of every attended position, so that weights can be drawn on the image and
  // measured against boxes. Empty for the other models.
  struct Box {
    float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  };
  virtual std::vector<std::vector<Box>> AttendedBoxes(const Batch& batch);
  std::vector<std::vector<Box>> AttendedBoxes(const Tensor& src);  // a batch of `src` alone
  const ModelConfig& config() const { return config_; }

  // ---- decoding at deployment speed (eval mode, no gradient) ----
  // The arithmetic of the decoder's packed layers (every decoder projection, the recurrent
  // step's, and the output layer): f32 (the default), bf16 or int8 (nn::Precision). Training and
  // teacher-forced passes are always f32. Drops what PrepareDecoding kept.
  void SetDecodePrecision(nn::Precision precision);
  nn::Precision decode_precision() const { return precision_; }
  // Packs (and quantizes) the decoder's layers once, now, for every later Start, instead of once
  // per Start: for a model whose weights no longer change (a translator, a server). Call again,
  // or ReleaseDecoding, after changing the weights. A model that packs nothing ignores it.
  void PrepareDecoding();
  void ReleaseDecoding() { prepared_.reset(); }
  // Vocabulary shortlist: later Steps of `state` score only the target ids `ids` (sorted,
  // unique, eos among them) and return their log-probabilities alone, [N, ids.size()], column j
  // for id ids[j] (every other id is ruled out). The kept ids' logits are what the full layer
  // computes for them; the log-softmax normalises over the kept ids. The default throws: the
  // translation models (rnn, transformer) implement it in eval mode.
  virtual void RestrictOutput(DecoderState& state, const std::vector<int64_t>& ids);

 protected:
  explicit Seq2Seq(ModelConfig config) : config_(std::move(config)) {}
  // The model's decoder layers packed in precision_ (its own struct, type-erased), or null for
  // a model that packs nothing; PrepareDecoding keeps it in prepared_.
  virtual std::shared_ptr<const void> PackDecoder() const { return nullptr; }
  // What Start uses: prepared_ when there is one, else a fresh PackDecoder().
  template <typename T>
  std::shared_ptr<const T> Packed() const {
    return std::static_pointer_cast<const T>(prepared_ ? prepared_ : PackDecoder());
  }
  ModelConfig config_;

 private:
  nn::Precision precision_ = nn::Precision::kF32;
  std::shared_ptr<const void> prepared_;
};

// Throws attend::Error unless ids are sorted, unique, in [0, vocab) and hold eos.
void CheckKeptIds(const std::vector<int64_t>& ids, int64_t vocab);

// Builds the model `config.arch` names, initialised from `gen`.
std::shared_ptr<Seq2Seq> MakeModel(const ModelConfig& config, Generator& gen);
// MakeModel requests (AllocationLimitGuard counts) at most this many bytes per byte of the
// model's tensors: initialisation draws, scales and shifts each one (tested for every
// architecture). nmt::LoadModel caps a checkpoint's model by it and the file's tensor bytes.
inline constexpr uint64_t kModelBuildFactor = 8;
// The constructors MakeModel dispatches to (src/models/rnn_seq2seq.cc, transformer.cc).
std::shared_ptr<Seq2Seq> MakeRnnSeq2Seq(const ModelConfig& config, Generator& gen);
std::shared_ptr<Seq2Seq> MakeTransformer(const ModelConfig& config, Generator& gen);
std::shared_ptr<Seq2Seq> MakeCaptioner(const ModelConfig& config, Generator& gen);
std::shared_ptr<Seq2Seq> MakePervasive(const ModelConfig& config, Generator& gen);
// Top-down's regions for one image of side `size`: `first` (proposals or given boxes; at most
// `regions` of them kept), then the fixed pyramid of tiles (the whole image, 2x2, 3x3, again)
// until there are `regions`.
std::vector<Seq2Seq::Box> FillRegions(std::vector<Seq2Seq::Box> first, int64_t size,
                                      int64_t regions);

}  // namespace attend::models
