// Attention inside larger structures: context-vector self-attention, the Hierarchical Attention
// Network, Sparse Attentive Backtracking, stacked latent attention, transparent attention,
// squeeze-and-excitation and image-captioning attention.
#include <algorithm>
#include <cmath>

#include "attend/attention_models.h"
#include "attend/autograd.h"

namespace attend::attention {

namespace {
Tensor UniformParam(const Shape& s, double bound, Generator& gen, DType dtype) {
  Tensor t = Tensor::Empty(s, dtype);
  nn::init::Uniform(t, -bound, bound, gen);
  return t;
}
}  // namespace

// ---- context-vector self-attention ----
ContextAttention::ContextAttention(int64_t dim, int64_t attn_dim, Generator& gen, DType dtype) {
  proj = RegisterModule("proj", std::make_shared<nn::Linear>(dim, attn_dim, true, gen, dtype));
  context_vector = RegisterParameter(
      "context_vector", UniformParam({attn_dim}, 1.0 / std::sqrt(attn_dim), gen, dtype));
}

Attended ContextAttention::Forward(const Tensor& h, const Tensor& mask) const {
  const int64_t d = proj->weight.size(1);
  ATTEND_CHECK(h.defined() && h.dim() == 3 && h.size(2) == d,
               "ContextAttention: input must be [B, T, ", d, "], got ", h.str());
  Tensor u = Tanh(proj->Forward(h));                       // [B, T, A]
  Tensor scores = Matmul(u, context_vector).Unsqueeze(1);  // [B, 1, T]
  Tensor m;
  if (mask.defined()) {
    ATTEND_CHECK(mask.dtype() == DType::kBool && mask.dim() == 2 && mask.size(0) == h.size(0) &&
                     mask.size(1) == h.size(1),
                 "ContextAttention: mask ", mask.str(), " must be bool [B, T] for input ", h.str());
    m = mask.Unsqueeze(1);
  }
  Attended a;
  a.weights = Softmax(scores, -1, m);  // [B, 1, T]
  a.context = Matmul(a.weights, h);    // [B, 1, D]
  return a;
}

// ---- Hierarchical Attention Network ----
HierarchicalAttentionNetwork::HierarchicalAttentionNetwork(int64_t vocab, int64_t embed_dim,
                                                           int64_t word_hidden,
                                                           int64_t sentence_hidden,
                                                           int64_t attn_dim, Generator& gen,
                                                           int64_t padding_idx, DType dtype) {
  nn::RnnOptions bi;
  bi.bidirectional = true;
  bi.dtype = dtype;
  embed = RegisterModule(
      "embed", std::make_shared<nn::Embedding>(vocab, embed_dim, gen, padding_idx, dtype));
  word_rnn = RegisterModule("word_rnn", std::make_shared<nn::GRU>(embed_dim, word_hidden, gen, bi));
  word_attention = RegisterModule(
      "word_attention", std::make_shared<ContextAttention>(2 * word_hidden, attn_dim, gen, dtype));
  sentence_rnn = RegisterModule(
      "sentence_rnn", std::make_shared<nn::GRU>(2 * word_hidden, sentence_hidden, gen, bi));
  sentence_attention =
      RegisterModule("sentence_attention",
                     std::make_shared<ContextAttention>(2 * sentence_hidden, attn_dim, gen, dtype));
}

HierarchicalAttentionNetwork::Output HierarchicalAttentionNetwork::Forward(
    const Tensor& words, const Tensor& word_lengths, const Tensor& sentence_counts) const {
  ATTEND_CHECK(words.defined() && words.dtype() == DType::kI64 && words.dim() == 3,
               "HierarchicalAttentionNetwork: words must be i64 [B, S, W], got ", words.str());
  const int64_t b = words.size(0), s = words.size(1), w = words.size(2);
  ATTEND_CHECK(word_lengths.defined() && word_lengths.dtype() == DType::kI64 &&
                   word_lengths.dim() == 2 && word_lengths.size(0) == b &&
                   word_lengths.size(1) == s,
               "HierarchicalAttentionNetwork: word_lengths ", word_lengths.str(), " must be i64 [",
               b, ", ", s, "]");
  ATTEND_CHECK(sentence_counts.defined() && sentence_counts.dtype() == DType::kI64 &&
                   sentence_counts.dim() == 1 && sentence_counts.size(0) == b,
               "HierarchicalAttentionNetwork: sentence_counts ", sentence_counts.str(),
               " must be i64 [", b, "]");
  std::vector<int64_t> wl = word_lengths.ToVector<int64_t>(),
                       sc = sentence_counts.ToVector<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    ATTEND_CHECK(sc[i] >= 1 && sc[i] <= s, "HierarchicalAttentionNetwork: document ", i, " has ",
                 sc[i], " sentences, expected 1..", s);
    for (int64_t j = 0; j < s; ++j)
      ATTEND_CHECK(wl[i * s + j] >= (j < sc[i] ? 1 : 0) && wl[i * s + j] <= w,
                   "HierarchicalAttentionNetwork: sentence ", j, " of document ", i, " has length ",
                   wl[i * s + j], ", expected ", (j < sc[i] ? 1 : 0), "..", w);
  }
  // Absent sentences run with length 1 (their vectors are masked out at the sentence level).
  std::vector<int64_t> run_lengths(wl);
  for (auto& l : run_lengths) l = std::max<int64_t>(l, 1);
  Tensor flat_lengths = Tensor::FromVector(run_lengths, {b * s});
  std::vector<bool> word_pad(b * s * w), sent_pad(b * s);
  for (int64_t i = 0; i < b * s; ++i)
    for (int64_t t = 0; t < w; ++t) word_pad[i * w + t] = t >= run_lengths[i];
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < s; ++j) sent_pad[i * s + j] = j >= sc[i];

  Tensor x = embed->Forward(words.Reshape({b * s, w}));   // [B*S, W, E]
  Tensor hw = word_rnn->Forward(x, flat_lengths).output;  // [B*S, W, 2Hw]
  Attended wa = word_attention->Forward(hw, Tensor::FromVector(word_pad, {b * s, w}));
  Tensor sentences = wa.context.Reshape({b, s, hw.size(2)});             // [B, S, 2Hw]
  Tensor hs = sentence_rnn->Forward(sentences, sentence_counts).output;  // [B, S, 2Hs]
  Attended sa = sentence_attention->Forward(hs, Tensor::FromVector(sent_pad, {b, s}));
  Output out;
  out.document = sa.context.Squeeze(1);  // [B, 2Hs]
  // Absent sentences ran as one placeholder word: their word weights are reported as zero.
  std::vector<bool> present(b * s);
  for (int64_t i = 0; i < b * s; ++i) present[i] = !sent_pad[i];
  out.word_weights = Mul(wa.weights.Reshape({b, s, w}),
                         Tensor::FromVector(present, {b, s, 1}).To(wa.weights.dtype()));
  out.sentence_weights = sa.weights.Squeeze(1);
  return out;
}

// ---- Sparse Attentive Backtracking ----
SparseAttentiveBacktracking::SparseAttentiveBacktracking(int64_t input_size, int64_t hidden_size,
                                                         int64_t ktop_in, int64_t katt_in,
                                                         int64_t ktrunc_in, Generator& gen,
                                                         DType dtype)
    : ktop(ktop_in), katt(katt_in), ktrunc(ktrunc_in) {
  ATTEND_CHECK(ktop >= 1 && katt >= 1 && ktrunc >= 1,
               "SparseAttentiveBacktracking: ktop, katt "
               "and ktrunc must be at least 1, got ",
               ktop, ", ", katt, ", ", ktrunc);
  cell = RegisterModule("cell",
                        std::make_shared<nn::LSTMCell>(input_size, hidden_size, gen, true, dtype));
  score = RegisterModule(
      "score", std::make_shared<ConcatScore>(hidden_size, hidden_size, hidden_size, gen, dtype));
}

SparseAttentiveBacktracking::Output SparseAttentiveBacktracking::Forward(const Tensor& x) const {
  ATTEND_CHECK(x.defined() && x.dim() == 3 && x.size(1) >= 1 && x.size(2) == cell->input_size &&
                   x.dtype() == cell->weight_ih.dtype(),
               "SparseAttentiveBacktracking: input must be ", DTypeName(cell->weight_ih.dtype()),
               "[B, T >= 1, ", cell->input_size, "], got ", x.str());
  const int64_t b = x.size(0), t_len = x.size(1), hsz = cell->hidden_size;
  Tensor h = Tensor::Zeros({b, hsz}, x.dtype()), c = Tensor::Zeros({b, hsz}, x.dtype());
  std::vector<Tensor> memories, outputs;
  Output out;
  for (int64_t t = 0; t < t_len; ++t) {
    if (t > 0 && t % ktrunc == 0) {
      // Truncated BPTT: the local recurrent path stops here; memories keep their history.
      h = h.Detach();
      c = c.Detach();
    }
    std::tie(h, c) = cell->Forward(x.Select(1, t), h, c);  // [B, H]
    if (t % katt == 0 && !memories.empty()) {
      Tensor mem = Stack(memories, 1);                       // [B, M, H]
      Tensor q = h.Unsqueeze(1);                             // [B, 1, H]
      Tensor w = TopKWeights(score->Forward(q, mem), ktop);  // [B, 1, M]
      h = Add(h, Matmul(w, mem).Squeeze(1));
      out.weights.push_back(w);
      out.steps.push_back(t);
    }
    if (t % katt == 0) memories.push_back(h);
    outputs.push_back(h);
  }
  out.output = Stack(outputs, 1);  // [B, T, H]
  return out;
}

// ---- stacked latent attention ----
StackedLatentAttention::StackedLatentAttention(int64_t query_dim, int64_t key_dim, int64_t attn_dim,
                                               int num_layers, Generator& gen, DType dtype) {
  ATTEND_CHECK(num_layers >= 1, "StackedLatentAttention: needs at least one layer, got ",
               num_layers);
  for (int l = 0; l < num_layers; ++l) {
    const std::string n = std::to_string(l);
    key_proj.push_back(RegisterModule(
        "key_proj_" + n, std::make_shared<nn::Linear>(key_dim, attn_dim, true, gen, dtype)));
    query_proj.push_back(RegisterModule(
        "query_proj_" + n,
        std::make_shared<nn::Linear>(l == 0 ? query_dim : key_dim, attn_dim, false, gen, dtype)));
    v.push_back(RegisterParameter("v_" + n,
                                  UniformParam({attn_dim}, 1.0 / std::sqrt(attn_dim), gen, dtype)));
  }
}

StackedLatentAttention::Output StackedLatentAttention::Forward(const Tensor& query,
                                                               const Tensor& keys,
                                                               const Tensor& mask) const {
  ATTEND_CHECK(query.defined() && keys.defined() && query.dim() == 3 && keys.dim() == 3 &&
                   query.size(0) == keys.size(0),
               "StackedLatentAttention: expected query [B, Tq, Dq] and keys [B, Tk, Dk], got ",
               query.str(), " and ", keys.str());
  const int64_t dq = query_proj[0]->weight.size(1), dk = key_proj[0]->weight.size(1);
  ATTEND_CHECK(query.size(2) == dq && keys.size(2) == dk,
               "StackedLatentAttention: expected query [B, Tq, ", dq, "] and keys [B, Tk, ", dk,
               "], got ", query.str(), " and ", keys.str());
  if (mask.defined())
    CheckMask(mask, Shape{query.size(0), query.size(1), keys.size(1)}, "StackedLatentAttention");
  Output out;
  Tensor c = query, latent;
  for (size_t l = 0; l < v.size(); ++l) {
    Tensor z = Add(query_proj[l]->Forward(c).Unsqueeze(2),
                   key_proj[l]->Forward(keys).Unsqueeze(1));  // [B, Tq, Tk, A]
    if (latent.defined()) z = Add(z, latent);                 // the skip path
    latent = z;
    Tensor w = Softmax(Matmul(Tanh(z), v[l]), -1, mask);  // [B, Tq, Tk]
    c = Matmul(w, keys);                                  // [B, Tq, Dk]
    out.weights.push_back(w);
  }
  out.context = c;
  return out;
}

// ---- transparent attention ----
TransparentAttention::TransparentAttention(int num_encoder_layers, int num_decoder_layers,
                                           DType dtype) {
  ATTEND_CHECK(num_encoder_layers >= 1 && num_decoder_layers >= 1,
               "TransparentAttention: layer counts must be positive");
  logits =
      RegisterParameter("logits", Tensor::Zeros({num_decoder_layers, num_encoder_layers}, dtype));
}

Tensor TransparentAttention::MixWeights() const { return Softmax(logits, -1); }

std::vector<Tensor> TransparentAttention::Forward(const std::vector<Tensor>& enc) const {
  ATTEND_CHECK(static_cast<int64_t>(enc.size()) == logits.size(1), "TransparentAttention: got ",
               enc.size(), " encoder layers, expected ", logits.size(1));
  for (size_t i = 0; i < enc.size(); ++i)
    ATTEND_CHECK(
        enc[i].defined() && enc[i].shape() == enc[0].shape() && enc[i].dtype() == logits.dtype(),
        "TransparentAttention: encoder layer ", i, " is ", enc[i].str(), " but layer 0 is ",
        enc[0].str(), "; all layers must have one shape and the module's dtype");
  Tensor stacked = Stack(enc, 0);  // [E, B, T, D]
  const int64_t e = stacked.size(0);
  Tensor flat = stacked.Reshape({e, -1});     // [E, B*T*D]
  Tensor mixed = Matmul(MixWeights(), flat);  // [Ld, B*T*D]
  std::vector<Tensor> out;
  for (int64_t i = 0; i < logits.size(0); ++i)
    out.push_back(mixed.Select(0, i).View(enc[0].shape()));
  return out;
}

// ---- squeeze-and-excitation ----
SqueezeExcitation::SqueezeExcitation(int64_t channels, int64_t reduction, Generator& gen,
                                     DType dtype) {
  ATTEND_CHECK(channels > 0 && reduction > 0 && channels / reduction >= 1,
               "SqueezeExcitation: channels ", channels, " and reduction ", reduction,
               " leave no hidden units");
  fc1 = RegisterModule(
      "fc1", std::make_shared<nn::Linear>(channels, channels / reduction, true, gen, dtype));
  fc2 = RegisterModule(
      "fc2", std::make_shared<nn::Linear>(channels / reduction, channels, true, gen, dtype));
}

std::pair<Tensor, Tensor> SqueezeExcitation::ForwardWithWeights(const Tensor& x) const {
  ATTEND_CHECK(x.defined() && x.dim() >= 3 && x.size(1) == fc1->weight.size(1),
               "SqueezeExcitation: input ", x.str(), " must be [B, ", fc1->weight.size(1),
               ", ...]");
  std::vector<int> spatial;
  for (int d = 2; d < x.dim(); ++d) spatial.push_back(d);
  Tensor z = Mean(x, spatial);                              // squeeze: [B, C]
  Tensor s = Sigmoid(fc2->Forward(Relu(fc1->Forward(z))));  // excite: [B, C]
  Shape bs = s.shape();
  for (int d = 2; d < x.dim(); ++d) bs.push_back(1);
  return {Mul(x, s.View(bs)), s};
}

// ---- a small CNN with squeeze-and-excitation ----
SeCnn::SeCnn(int64_t in_channels, int64_t c1, int64_t c2, int64_t num_classes, int64_t reduction,
             Generator& gen, DType dtype) {
  nn::Conv2dOptions pad1;
  pad1.padding = 1;
  conv1 = RegisterModule("conv1",
                         std::make_shared<nn::Conv2dModule>(in_channels, c1, 3, gen, pad1, dtype));
  se1 = RegisterModule("se1", std::make_shared<SqueezeExcitation>(c1, reduction, gen, dtype));
  conv2 = RegisterModule("conv2", std::make_shared<nn::Conv2dModule>(c1, c2, 3, gen, pad1, dtype));
  se2 = RegisterModule("se2", std::make_shared<SqueezeExcitation>(c2, reduction, gen, dtype));
  classifier =
      RegisterModule("classifier", std::make_shared<nn::Linear>(c2, num_classes, true, gen, dtype));
}

SeCnn::Output SeCnn::Forward(const Tensor& x) const {
  ATTEND_CHECK(x.defined() && x.dim() == 4 && x.size(1) == conv1->weight.size(1) &&
                   x.size(2) >= 2 && x.size(3) >= 2,
               "SeCnn: input must be [B, ", conv1->weight.size(1), ", H >= 2, W >= 2], got ",
               x.str());
  Output out;
  auto [h1, s1] = se1->ForwardWithWeights(Relu(conv1->Forward(x)));   // [B, C1, H, W]
  Tensor p1 = MaxPool2d(h1, 2);                                       // [B, C1, H/2, W/2]
  auto [h2, s2] = se2->ForwardWithWeights(Relu(conv2->Forward(p1)));  // [B, C2, H/2, W/2]
  out.logits = classifier->Forward(GlobalAvgPool(h2));                // [B, classes]
  out.channel_weights = {s1, s2};
  return out;
}

// ---- image-captioning attention ----
ImageAttention::ImageAttention(int64_t feature_dim, int64_t hidden_dim, int64_t attn_dim,
                               Generator& gen, bool with_gate, DType dtype) {
  score = RegisterModule(
      "score", std::make_shared<AdditiveScore>(hidden_dim, feature_dim, attn_dim, gen, dtype));
  if (with_gate)
    gate = RegisterModule("gate", std::make_shared<nn::Linear>(hidden_dim, 1, true, gen, dtype));
}

ImageAttention::Prepared ImageAttention::Prepare(const Tensor& features) const {
  const int64_t c = score->key_proj->weight.size(1);
  ATTEND_CHECK(features.defined() && features.dim() == 4 && features.size(1) == c,
               "ImageAttention: features must be [B, ", c, ", H, W], got ", features.str());
  Prepared p;
  p.height = features.size(2);
  p.width = features.size(3);
  p.annotations = features.Flatten(2).Transpose(1, 2);  // [B, H*W, C]
  p.keys = score->PrepareKeys(p.annotations);           // [B, H*W, A]
  return p;
}

Attended ImageAttention::Step(const Prepared& p, const Tensor& h) const {
  const int64_t hidden = score->query_proj->weight.size(1);
  ATTEND_CHECK(
      h.defined() && h.dim() == 2 && h.size(0) == p.annotations.size(0) && h.size(1) == hidden,
      "ImageAttention: decoder state ", h.str(), " must be [", p.annotations.size(0), ", ", hidden,
      "] for features with annotations ", p.annotations.str());
  Attended a;
  a.weights = Softmax(score->Scores(h.Unsqueeze(1), p.keys), -1);  // [B, 1, H*W]
  a.context = Matmul(a.weights, p.annotations);                    // [B, 1, C]
  if (gate) a.context = Mul(a.context, Sigmoid(gate->Forward(h)).Unsqueeze(1));
  return a;
}

}  // namespace attend::attention
