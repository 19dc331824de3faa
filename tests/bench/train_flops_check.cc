// bench/train_flops.h (the FLOPs of a training step, which bench_nmt and bench_flops report)
// against the GEMMs a real step calls. This binary is linked with
// -Wl,--wrap=<attend::cpu::Gemm<float>'s symbol> (tests/CMakeLists.txt): every call the library
// makes to the f32 GEMM entry point passes through the wrapper below, which adds up m n k. The
// formula's GEMM FLOPs must equal 2 m n k summed, forward and backward separately, for each
// model and batch here; a change to the models' GEMMs that the formula does not follow fails.
// (Kept out of attend_tests so that the wrapping touches no other test.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "train_flops.h"

// The mangled name of
//   template <> void attend::cpu::Gemm<float>(bool, bool, int64_t m, int64_t n, int64_t k, float,
//                                             const float*, int64_t, const float*, int64_t,
//                                             float, float*, int64_t, const float* bias,
//                                             float* sum_a);
// --wrap sends the library's calls to __wrap_<name> and makes __real_<name> the original.
#define ATTEND_GEMM_F32 _ZN6attend3cpu4GemmIfEEvbblllT_PKS2_lS4_lS2_PS2_lS4_S5_
#define ATTEND_CAT2(a, b) a##b
#define ATTEND_CAT(a, b) ATTEND_CAT2(a, b)

namespace {
std::atomic<bool> counting{false};
std::atomic<uint64_t> multiply_adds{0};  // sum of m n k over the counted calls
}  // namespace

extern "C" {
void ATTEND_CAT(__real_, ATTEND_GEMM_F32)(bool, bool, int64_t, int64_t, int64_t, float,
                                          const float*, int64_t, const float*, int64_t, float,
                                          float*, int64_t, const float*, float*);
void ATTEND_CAT(__wrap_, ATTEND_GEMM_F32)(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                          float alpha, const float* a, int64_t lda, const float* b,
                                          int64_t ldb, float beta, float* c, int64_t ldc,
                                          const float* bias, float* sum_a) {
  if (counting.load(std::memory_order_relaxed))
    multiply_adds.fetch_add(static_cast<uint64_t>(m * n * k), std::memory_order_relaxed);
  ATTEND_CAT(__real_, ATTEND_GEMM_F32)
  (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, sum_a);
}
}

namespace attend {
namespace {

constexpr int64_t kVocab = 40;

// Sentences of uneven lengths: two sources of the longest length (the reverse encoder direction
// skips exactly those rows' first recurrent product), one target of a single token.
std::vector<nmt::Example> Examples() {
  const std::vector<int64_t> src_len{3, 7, 5, 7, 2}, tgt_len{4, 6, 1, 3, 5};
  std::vector<nmt::Example> ex(src_len.size());
  int64_t id = 0;
  for (size_t i = 0; i < ex.size(); ++i) {
    for (int64_t j = 0; j < src_len[i]; ++j) ex[i].src.push_back(4 + (id++ % (kVocab - 4)));
    for (int64_t j = 0; j < tgt_len[i]; ++j) ex[i].tgt.push_back(4 + (id++ % (kVocab - 4)));
  }
  return ex;
}

struct Counted {
  double forward = 0, backward = 0;
};

// One training step's forward (logits and the loss) and backward, counting GEMM FLOPs.
Counted CountStep(const models::ModelConfig& config, const models::Batch& batch) {
  Generator gen(3);
  auto model = models::MakeModel(config, gen);
  multiply_adds = 0;
  counting = true;
  Tensor logits = model->Forward(batch);
  Tensor loss =
      CrossEntropy(logits.Reshape({-1, config.tgt_vocab}), batch.tgt_out.Reshape({-1}), 0, 0.1);
  const uint64_t forward = multiply_adds.exchange(0);
  loss.Backward();
  const uint64_t backward = multiply_adds.exchange(0);
  counting = false;
  return {2.0 * static_cast<double>(forward), 2.0 * static_cast<double>(backward)};
}

models::ModelConfig Rnn(const std::string& arch) {
  models::ModelConfig c;
  c.arch = models::ParseEnum<models::Arch>(arch, "arch");
  c.src_vocab = c.tgt_vocab = kVocab;
  c.embed_dim = 12;
  c.hidden_dim = 16;
  c.attention_dim = 10;
  return c;
}

models::ModelConfig Transformer() {
  models::ModelConfig c;
  c.arch = models::Arch::kTransformer;
  c.src_vocab = c.tgt_vocab = kVocab;
  c.d_model = 16;
  c.heads = 2;
  c.ff_dim = 24;
  c.layers = 2;
  return c;
}

struct Case {
  std::string name;
  models::ModelConfig config;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  cases.push_back({"rnn_attention_default", Rnn("rnn-attention")});  // GRU, additive, feeding
  {
    Case c{"rnn_attention_lstm_dot_2x2", Rnn("rnn-attention")};
    c.config.cell = models::Cell::kLstm;
    c.config.score = models::Score::kDot;
    c.config.encoder_layers = c.config.decoder_layers = 2;
    cases.push_back(c);
  }
  {
    // Without input feeding the decoder runs the whole target in one recurrent call.
    Case c{"rnn_attention_general_no_feeding", Rnn("rnn-attention")};
    c.config.score = models::Score::kGeneral;
    c.config.input_feeding = false;
    cases.push_back(c);
  }
  cases.push_back({"rnn_fixed_context", Rnn("rnn")});
  cases.push_back({"transformer_default", Transformer()});
  {
    Case c{"transformer_post_norm_unshared_deeper_decoder", Transformer()};
    c.config.pre_norm = false;
    c.config.share_embeddings = false;
    c.config.layers = 1;
    c.config.decoder_depth = 3;
    cases.push_back(c);
  }
  return cases;
}

class TrainFlops : public ::testing::TestWithParam<int> {};

TEST_P(TrainFlops, FormulaEqualsTheGemmsOfAStep) {
  const int threads = GetParam();
  const int before = GetNumThreads();
  SetNumThreads(threads);
  const auto ex = Examples();
  std::vector<int64_t> order(ex.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const models::Batch batch = nmt::MakeBatch(ex, order);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name + ", " + std::to_string(threads) + " threads");
    const Counted counted = CountStep(c.config, batch);
    const bench::StepFlops f = bench::TrainStepFlops(c.config, bench::ShapeOf(batch));
    ASSERT_GT(counted.forward, 0) << "the GEMM wrapper counted nothing: is --wrap applied?";
    EXPECT_EQ(f.gemm_forward, counted.forward);
    EXPECT_EQ(f.gemm_backward, counted.backward);
    // The output layer: (B T) x V x hidden, forward and twice that backward.
    const double width =
        c.config.arch == models::Arch::kTransformer ? c.config.d_model : c.config.hidden_dim;
    EXPECT_EQ(f.output.forward, 2.0 * 5 * batch.tgt_in.size(1) * kVocab * width);
    EXPECT_EQ(f.output.backward, 2 * f.output.forward);
  }
  SetNumThreads(before);
}

INSTANTIATE_TEST_SUITE_P(Threads, TrainFlops, ::testing::Values(1, 2));

TEST(TrainFlopsFormula, RefusesWhatItDoesNotCount) {
  models::ModelConfig c = Rnn("rnn-attention");
  c.wiring = models::Wiring::kBahdanau;
  EXPECT_THROW(bench::TrainStepFlops(c, bench::UniformShape(2, 3, 4)), Error);
  c = Transformer();
  c.transparent = true;
  EXPECT_THROW(bench::TrainStepFlops(c, bench::UniformShape(2, 3, 4)), Error);
}

// A hand count on the smallest transformer: B = 1, S = T = 1, d = 2, one head, ff 3, one layer
// each side, vocabulary 5. Forward GEMMs (2 m n k each): encoder qkv 2*1*6*2 = 24, scores and
// context 4 + 4, out_proj 8, ff 12 + 12; decoder qkv 24, self scores/context 8, out_proj 8, cross
// keys/values 16, cross queries 8, cross scores/context 8, out_proj 8, ff 24; output 2*1*5*2 = 20.
TEST(TrainFlopsFormula, HandCountOfATinyTransformer) {
  models::ModelConfig c;
  c.arch = models::Arch::kTransformer;
  c.src_vocab = c.tgt_vocab = 5;
  c.d_model = 2;
  c.heads = 1;
  c.ff_dim = 3;
  c.layers = 1;
  const bench::StepFlops f = bench::TrainStepFlops(c, bench::UniformShape(1, 1, 1));
  EXPECT_EQ(f.encoder.forward, 24 + 8 + 24);
  EXPECT_EQ(f.decoder.forward, 24 + 8 + 16 + 8 + 8 + 24);
  EXPECT_EQ(f.attention.forward, 8 + 8 + 8);
  EXPECT_EQ(f.output.forward, 20);
  EXPECT_EQ(f.backward(), 2 * f.forward());
}

}  // namespace
}  // namespace attend
