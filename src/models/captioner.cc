// Image captioners behind the Seq2Seq interface, so that the trainer, greedy and beam search and
// the alignments serve them as they serve translation:
// - show-attend-tell (Xu et al. 2015): a CNN turns the image into a grid of annotation vectors
//   a_i; an LSTM decoder whose initial state comes from the mean annotation attends at every
//   word with its previous state (additive score), z_t = beta_t * sum_i alpha_ti a_i with the
//   gate beta_t = sigmoid(f_beta(h_{t-1})), reads [E y_{t-1}; z_t] and predicts with the deep
//   output L_o(E y_{t-1} + L_h h_t + L_z z_t). Soft attention adds the doubly stochastic
//   penalty lambda * sum_i (1 - sum_t alpha_ti)^2; hard attention samples one cell per word
//   (attention::HardAttention, REINFORCE with a moving-average baseline, the reward being the
//   caption's mean token log-likelihood); "none" reads the mean annotation at every word.
// - top-down (Anderson et al. 2018): region features v_i pooled from the same grid over
//   candidate boxes; an attention LSTM reads [h2_{t-1}; mean v; E y_{t-1}], its state h1_t
//   attends over the regions, and a language LSTM reads [v^_t; h1_t] and predicts.
// The candidate boxes (the "bottom-up" step; the article uses Faster R-CNN, which needs labelled
// boxes to train) come from the image itself: the connected components of the pixels brighter
// than kProposalThreshold (8-connected, at least kMinComponent pixels), largest first, then a
// fixed pyramid of boxes (the whole image, its 2x2 and 3x3 tiles) until there are `regions`.
// With proposals off (--true-boxes) the boxes come with the batch (Batch::regions): the items'
// true boxes, completed by the same pyramid, an upper bound for the proposals.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nn/conv.h"
#include "attend/nn/rnn.h"
#include "attend/ops.h"
#include "attend/ops/conv.h"

namespace attend::models {
namespace {

constexpr float kProposalThreshold = 0.2f;
constexpr int64_t kMinComponent = 12;

using Box = Seq2Seq::Box;

class CaptionState : public DecoderState {
 public:
  int64_t rows() const override { return h.size(0); }
  Tensor annotations;  // [N, L, D]: grid cells or regions
  Tensor keys;         // [N, L, A] the score's projected keys
  Tensor mean;         // [N, D]
  Tensor h, c;         // [N, H] show-attend-tell's LSTM; top-down's language LSTM
  Tensor h1, c1;       // [N, H] top-down's attention LSTM
};

// Boxes of the bright connected components of a [H, W] image (channel mean), largest first.
std::vector<Box> Components(const float* pixels, int64_t channels, int64_t size) {
  const int64_t n = size * size;
  std::vector<uint8_t> on(n);
  for (int64_t i = 0; i < n; ++i) {
    float v = 0;
    for (int64_t ch = 0; ch < channels; ++ch) v += pixels[ch * n + i];
    on[i] = v / static_cast<float>(channels) > kProposalThreshold;
  }
  std::vector<int32_t> label(n, -1), stack;
  struct Found {
    int64_t area;
    Box box;
  };
  std::vector<Found> found;
  for (int64_t start = 0; start < n; ++start) {
    if (!on[start] || label[start] >= 0) continue;
    const int32_t id = static_cast<int32_t>(found.size());
    int64_t area = 0, x0 = size, y0 = size, x1 = 0, y1 = 0;
    stack.assign(1, static_cast<int32_t>(start));
    label[start] = id;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      const int64_t y = p / size, x = p % size;
      ++area;
      x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x + 1),
      y1 = std::max(y1, y + 1);
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
          const int64_t q = yy * size + xx;
          if (on[q] && label[q] < 0) {
            label[q] = id;
            stack.push_back(static_cast<int32_t>(q));
          }
        }
    }
    found.push_back({area,
                     {static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1),
                      static_cast<float>(y1)}});
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const Found& a, const Found& b) { return a.area > b.area; });
  std::vector<Box> out;
  for (const Found& f : found)
    if (f.area >= kMinComponent) out.push_back(f.box);
  return out;
}

class Captioner : public Seq2Seq {
 public:
  Captioner(const ModelConfig& c, Generator& gen) : Seq2Seq(c) {
    top_down_ = c.arch == Arch::kTopDown;
    const int64_t k = c.cnn_channels, h = c.hidden_dim, e = c.embed_dim;
    d_ = 8 * k;
    const int64_t widths[5] = {c.image_channels, k, 2 * k, 4 * k, 8 * k};
    for (int i = 0; i < 4; ++i)
      conv_[i] =
          RegisterModule("cnn." + std::to_string(i),
                         std::make_shared<nn::Conv2dModule>(widths[i], widths[i + 1], Size2{3, 3},
                                                            gen, nn::Conv2dOptions{.padding = 1}));
    embed_ = RegisterModule("embed",
                            std::make_shared<nn::Embedding>(c.tgt_vocab, e, gen, SpecialIds::kPad));
    attend_ = top_down_ ? ImageAttend::kSoft : c.image_attention;
    if (attend_ != ImageAttend::kNone)
      score_ = RegisterModule(
          "score", std::make_shared<attention::AdditiveScore>(h, d_, c.attention_dim, gen));
    dropout_ =
        RegisterModule("dropout", std::make_shared<nn::DropoutModule>(c.dropout, gen.Reserve(1)));
    if (top_down_) {
      attention_lstm_ =
          RegisterModule("attention_lstm", std::make_shared<nn::LSTMCell>(h + d_ + e, h, gen));
      language_lstm_ =
          RegisterModule("language_lstm", std::make_shared<nn::LSTMCell>(d_ + h, h, gen));
      out_ = RegisterModule("out", std::make_shared<nn::Linear>(h, c.tgt_vocab, true, gen));
      return;
    }
    init_h_ = RegisterModule("init_h", std::make_shared<nn::Linear>(d_, h, true, gen));
    init_c_ = RegisterModule("init_c", std::make_shared<nn::Linear>(d_, h, true, gen));
    if (attend_ != ImageAttend::kNone)
      gate_ = RegisterModule("gate", std::make_shared<nn::Linear>(h, 1, true, gen));
    lstm_ = RegisterModule("lstm", std::make_shared<nn::LSTMCell>(e + d_, h, gen));
    out_h_ = RegisterModule("out_h", std::make_shared<nn::Linear>(h, e, false, gen));
    out_z_ = RegisterModule("out_z", std::make_shared<nn::Linear>(d_, e, false, gen));
    out_ = RegisterModule("out", std::make_shared<nn::Linear>(e, c.tgt_vocab, true, gen));
    if (attend_ == ImageAttend::kHard) {
      // The sampler's counter stream and the REINFORCE baseline, kept as a buffer so that a
      // resumed run draws the same cells: {seed, next counter, baseline bits, initialised}.
      const uint64_t seed = gen.Reserve(1);
      hard_state_ = RegisterBuffer(
          "hard_state",
          Tensor::FromVector(std::vector<int64_t>{static_cast<int64_t>(seed), 0, 0, 0}, {4}));
    }
  }

  int64_t AttendedLength(int64_t) const override {
    return top_down_ ? config_.regions : config_.ImageGrid() * config_.ImageGrid();
  }

  std::vector<std::vector<Box>> AttendedBoxes(const Batch& batch) override {
    const Tensor images = Images(batch.src).Contiguous();
    const int64_t b = images.size(0), ch = config_.image_channels, s = config_.image_size;
    const int64_t k = config_.regions;
    std::vector<std::vector<Box>> out(b);
    const bool given = top_down_ && !config_.proposals;
    Tensor regions;
    if (given) {
      ATTEND_CHECK(batch.regions.defined() && batch.regions.dtype() == DType::kF32 &&
                       batch.regions.shape() == (Shape{b, k, 4}),
                   "captioner: this top-down model reads the images' true boxes (it was trained "
                   "with --true-boxes): the batch must carry regions f32 [",
                   b, ", ", k, ", 4], got ",
                   batch.regions.defined() ? batch.regions.str() : "none (give the items' boxes)");
      regions = batch.regions.Contiguous();
    }
    for (int64_t i = 0; i < b; ++i) {
      if (given) {
        const float* r = regions.data<float>() + i * k * 4;
        for (int64_t j = 0; j < k; ++j)
          out[i].push_back({r[4 * j], r[4 * j + 1], r[4 * j + 2], r[4 * j + 3]});
        continue;
      }
      if (top_down_) {
        out[i] = FillRegions(Components(images.data<float>() + i * ch * s * s, ch, s), s, k);
        continue;
      }
      const int64_t g = config_.ImageGrid();
      const float cell = static_cast<float>(s) / static_cast<float>(g);
      for (int64_t r = 0; r < g; ++r)
        for (int64_t q = 0; q < g; ++q)
          out[i].push_back({q * cell, r * cell, (q + 1) * cell, (r + 1) * cell});
    }
    return out;
  }

  Tensor Forward(const Batch& batch, Tensor* attention) override {
    CheckTokens(batch.tgt_in);
    CaptionState st = Encode(batch);
    const int64_t t_len = batch.tgt_in.size(1);
    Tensor emb = embed_->Forward(batch.tgt_in);  // [B, T, E]
    std::vector<Tensor> logits, weights;
    for (int64_t t = 0; t < t_len; ++t) {
      Tensor w;
      logits.push_back(DecodeStep(st, emb.Select(1, t), &w));
      weights.push_back(w);
    }
    Tensor all = attend_ == ImageAttend::kNone ? Tensor() : Stack(weights, 1);  // [B, T, L]
    // Kept (with its graph) for AuxiliaryLoss only while training.
    last_weights_ = training() ? all : Tensor();
    if (attention) *attention = all;
    return Stack(logits, 1);  // [B, T, V]
  }

  Tensor AuxiliaryLoss(const Batch& batch, const Tensor& logits) override {
    const Tensor weights = std::move(last_weights_);
    last_weights_ = Tensor();
    if (top_down_ || attend_ == ImageAttend::kNone || !training()) return Tensor();
    const Tensor real = Ne(batch.tgt_out, Tensor::Scalar(SpecialIds::kPad, DType::kI64));
    const int64_t b = batch.tgt_out.size(0);
    if (attend_ == ImageAttend::kSoft) {
      if (config_.attention_penalty == 0.0 || !weights.defined()) return Tensor();
      // The paper's loss is -log p(caption) + lambda * sum_i (1 - sum_t alpha_ti)^2 per image;
      // the trainer's cross-entropy is the mean over target tokens, so the penalty is divided
      // by the same count: lambda * sum_b sum_i (1 - sum_t alpha_bti)^2 / tokens, the sums over
      // each caption's real words (eos included).
      const Tensor m = real.To(weights.dtype());                    // [B, T]
      const Tensor total = Sum(Mul(weights, m.Unsqueeze(2)), {1});  // [B, L]
      const Tensor gap = AddScalar(Neg(total), 1.0);                // 1 - sum_t alpha
      const double tokens = Sum(m).item();
      return MulScalar(Sum(Mul(gap, gap)), config_.attention_penalty / std::max(1.0, tokens));
    }
    // Hard: the reward is each caption's mean token log-likelihood (no gradient).
    Tensor reward;
    {
      NoGradGuard no_grad;
      const Tensor logp = LogSoftmax(logits.Detach(), 2);                            // [B, T, V]
      const Tensor picked = Gather(logp, 2, batch.tgt_out.Unsqueeze(2)).Squeeze(2);  // [B, T]
      const Tensor mask = real.To(picked.dtype());
      reward = Div(Sum(Mul(picked, mask), {1}), Sum(mask, {1}));  // [B]
    }
    ATTEND_CHECK(reward.size(0) == b, "captioner: reward ", reward.str());
    Tensor loss = sampler_.ReinforceLoss(reward);
    SaveSampler();
    return loss;
  }

  std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& lengths) override {
    Batch b;
    b.src = src;
    b.src_lengths = lengths;
    return StartBatch(b);
  }
  std::unique_ptr<DecoderState> StartBatch(const Batch& batch) override {
    return std::make_unique<CaptionState>(Encode(batch));
  }

  Tensor Step(DecoderState& state, const Tensor& tokens, Tensor* attention) override {
    auto& st = static_cast<CaptionState&>(state);
    CheckTokens(tokens);
    ATTEND_CHECK(tokens.dim() == 1 && tokens.size(0) == st.rows(), "Step: tokens ", tokens.str(),
                 " must be i64 [", st.rows(), "]");
    Tensor w;
    Tensor logits = DecodeStep(st, embed_->Forward(tokens), &w);
    if (attention) *attention = w;
    return LogSoftmax(logits, 1);
  }

  void Select(DecoderState& state, const Tensor& rows) override {
    auto& st = static_cast<CaptionState&>(state);
    for (Tensor* t : {&st.annotations, &st.keys, &st.mean, &st.h, &st.c, &st.h1, &st.c1})
      if (t->defined()) *t = IndexSelect(*t, 0, rows);
  }

 private:
  void CheckTokens(const Tensor& ids) const {
    ATTEND_CHECK(ids.defined() && ids.dtype() == DType::kI64,
                 "captioner: target tokens must be i64, got ", ids.defined() ? ids.str() : "none");
    const Tensor flat = ids.Contiguous();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const int64_t id = flat.data<int64_t>()[i];
      ATTEND_CHECK(id >= 0 && id < config_.tgt_vocab, "captioner: token id ", id,
                   " is outside the vocabulary of ", config_.tgt_vocab);
    }
  }

  // The source as images [B, C, H, W]: f32 [B, C * H, W] rows, as batches carry them.
  Tensor Images(const Tensor& src) const {
    const int64_t ch = config_.image_channels, s = config_.image_size;
    ATTEND_CHECK(src.defined() && src.dtype() == DType::kF32 && src.dim() == 3 &&
                     src.size(1) == ch * s && src.size(2) == s,
                 "captioner: the source must be f32 images [B, ", ch * s, ", ", s,
                 "] (channels x rows, columns), got ", src.defined() ? src.str() : "none");
    return src.Contiguous().View({src.size(0), ch, s, s});
  }

  // The CNN's grid [B, L, D].
  Tensor Grid(const Tensor& images) const {
    Tensor x = images;
    for (int i = 0; i < 4; ++i) {
      x = Relu(conv_[i]->Forward(x));
      if (i < 3) x = MaxPool2d(x, {2, 2});
    }
    return x.Flatten(2).Transpose(1, 2).Contiguous();  // [B, G*G, D]
  }

  // Region features [B, K, D]: the mean of the grid cells whose centres lie in each box (the
  // cell under the box's centre when none does).
  Tensor Regions(const Batch& batch, const Tensor& grid) {
    const std::vector<std::vector<Box>> boxes = AttendedBoxes(batch);
    const int64_t b = grid.size(0), k = config_.regions, g = config_.ImageGrid();
    const float cell = static_cast<float>(config_.image_size) / static_cast<float>(g);
    Tensor pool = Tensor::Zeros({b, k, g * g}, DType::kF32);
    float* p = pool.data<float>();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t r = 0; r < k; ++r) {
        const Box& bx = boxes[i][r];
        float* row = p + (i * k + r) * g * g;
        int64_t n = 0;
        for (int64_t y = 0; y < g; ++y)
          for (int64_t x = 0; x < g; ++x) {
            const float cx = (x + 0.5f) * cell, cy = (y + 0.5f) * cell;
            if (cx >= bx.x0 && cx < bx.x1 && cy >= bx.y0 && cy < bx.y1) {
              row[y * g + x] = 1.0f;
              ++n;
            }
          }
        if (n == 0) {
          const int64_t x =
              std::min<int64_t>(g - 1, static_cast<int64_t>((bx.x0 + bx.x1) / 2 / cell));
          const int64_t y =
              std::min<int64_t>(g - 1, static_cast<int64_t>((bx.y0 + bx.y1) / 2 / cell));
          row[y * g + x] = 1.0f;
          n = 1;
        }
        for (int64_t j = 0; j < g * g; ++j) row[j] /= static_cast<float>(n);
      }
    return Matmul(pool, grid);  // [B, K, D]
  }

  CaptionState Encode(const Batch& batch) {
    const Tensor images = Images(batch.src);
    CaptionState st;
    const Tensor grid = Grid(images);
    st.annotations = top_down_ ? Regions(batch, grid) : grid;
    st.mean = Mean(st.annotations, {1});  // [B, D]
    const int64_t b = images.size(0), h = config_.hidden_dim;
    if (score_) st.keys = score_->PrepareKeys(st.annotations);
    if (top_down_) {
      st.h = st.c = st.h1 = st.c1 = Tensor::Zeros({b, h}, DType::kF32);
    } else {
      st.h = Tanh(init_h_->Forward(st.mean));
      st.c = Tanh(init_c_->Forward(st.mean));
    }
    if (attend_ == ImageAttend::kHard && training()) LoadSampler();
    return st;
  }

  // Attention of `query` [N, H] over the state's annotations: the weights [N, L] and the
  // context [N, D].
  std::pair<Tensor, Tensor> Attend(CaptionState& st, const Tensor& query) {
    Tensor scores = score_->Scores(query.Unsqueeze(1), st.keys);  // [N, 1, L]
    Tensor w;
    if (attend_ == ImageAttend::kHard) w = (training() ? sampler_ : argmax_).Weights(scores);
    else w = Softmax(scores, -1);
    Tensor context = Matmul(w, st.annotations).Squeeze(1);  // [N, D]
    return {w.Squeeze(1), context};
  }

  // One word: input embeddings [N, E] -> logits [N, V]; *weights [N, L] (undefined for none).
  Tensor DecodeStep(CaptionState& st, const Tensor& emb, Tensor* weights) {
    if (top_down_) {
      Tensor x = Concat({st.h, st.mean, emb}, 1);
      std::tie(st.h1, st.c1) = attention_lstm_->Forward(x, st.h1, st.c1);
      auto [w, v] = Attend(st, st.h1);
      std::tie(st.h, st.c) = language_lstm_->Forward(Concat({v, st.h1}, 1), st.h, st.c);
      *weights = w;
      return out_->Forward(dropout_->Forward(st.h));
    }
    Tensor z;
    if (attend_ == ImageAttend::kNone) {
      z = st.mean;
      *weights = Tensor();
    } else {
      auto [w, context] = Attend(st, st.h);
      z = Mul(context, Sigmoid(gate_->Forward(st.h)));  // beta_t gates the context
      *weights = w;
    }
    std::tie(st.h, st.c) = lstm_->Forward(Concat({emb, z}, 1), st.h, st.c);
    Tensor deep = Add(Add(emb, out_h_->Forward(st.h)), out_z_->Forward(z));
    return out_->Forward(dropout_->Forward(deep));
  }

  void LoadSampler() {
    const int64_t* s = hard_state_.data<int64_t>();
    sampler_.gen.set_state(static_cast<uint64_t>(s[0]), static_cast<uint64_t>(s[1]));
    std::memcpy(&sampler_.baseline, &s[2], sizeof(double));
    sampler_.baseline_initialized = s[3] != 0;
  }
  void SaveSampler() {
    int64_t* s = hard_state_.data<int64_t>();
    s[1] = static_cast<int64_t>(sampler_.gen.offset());
    std::memcpy(&s[2], &sampler_.baseline, sizeof(double));
    s[3] = sampler_.baseline_initialized ? 1 : 0;
  }

  bool top_down_ = false;
  ImageAttend attend_ = ImageAttend::kSoft;
  int64_t d_ = 0;
  std::array<std::shared_ptr<nn::Conv2dModule>, 4> conv_;
  std::shared_ptr<nn::Embedding> embed_;
  std::shared_ptr<attention::AdditiveScore> score_;
  std::shared_ptr<nn::DropoutModule> dropout_;
  std::shared_ptr<nn::Linear> init_h_, init_c_, gate_, out_h_, out_z_, out_;
  std::shared_ptr<nn::LSTMCell> lstm_, attention_lstm_, language_lstm_;
  attention::HardAttention sampler_{attention::HardAttention::Mode::kReinforce};
  attention::HardAttention argmax_{attention::HardAttention::Mode::kArgmax};
  Tensor hard_state_;
  Tensor last_weights_;  // [B, T, L] of the last Forward
};

}  // namespace

std::vector<Box> FillRegions(std::vector<Box> first, int64_t size, int64_t regions) {
  if (static_cast<int64_t>(first.size()) > regions) first.resize(regions);
  const float s = static_cast<float>(size);
  for (int tiles = 1; static_cast<int64_t>(first.size()) < regions; tiles = tiles % 3 + 1) {
    for (int i = 0; i < tiles * tiles && static_cast<int64_t>(first.size()) < regions; ++i) {
      const float w = s / static_cast<float>(tiles);
      const float x = static_cast<float>(i % tiles) * w, y = static_cast<float>(i / tiles) * w;
      first.push_back({x, y, x + w, y + w});
    }
  }
  return first;
}

std::shared_ptr<Seq2Seq> MakeCaptioner(const ModelConfig& config, Generator& gen) {
  return std::make_shared<Captioner>(config, gen);
}

}  // namespace attend::models
