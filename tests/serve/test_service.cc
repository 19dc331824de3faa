// The translation service behind `attend serve`, called directly: every kind of bad request gets
// its 4xx and a message naming the problem and leaves the service as it was; batched decoding of
// concurrent requests gives what decoding each alone gives; the attention it returns is what
// decoding computed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/attend.h"
#include "attend/checkpoint.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "serve/service.h"
#include "support/checkpoints.h"
#include "support/files.h"

namespace attend::serve {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const char* kWords[] = {"open", "the", "file", "save", "close", "window", "new", "folder", "copy"};

// A random (untrained) model and a vocabulary over kWords, written as a checkpoint.
std::string WriteModel(const testing::TempDir& dir, models::Arch arch) {
  std::vector<std::string> sentences;
  for (int i = 0; i < 60; ++i)
    sentences.push_back(std::string(kWords[i % 9]) + " " + kWords[(i * 5 + 1) % 9] + " " +
                        kWords[(i * 7 + 2) % 9]);
  nmt::VocabularyOptions vo;
  vo.size = 40;
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(sentences, vo);
  models::ModelConfig cfg;
  cfg.arch = arch;
  cfg.src_vocab = cfg.tgt_vocab = vocab.size();
  cfg.embed_dim = cfg.hidden_dim = cfg.attention_dim = 16;
  cfg.d_model = 16;
  cfg.heads = 2;
  cfg.ff_dim = 32;
  cfg.layers = 2;
  Generator gen(7);
  const std::shared_ptr<models::Seq2Seq> model = models::MakeModel(cfg, gen);
  const std::string path = dir / (std::string(models::NameOf(arch)) + ".ckpt");
  testing::SaveTranslationCheckpoint(path, *model, vocab, cfg.ToJson());
  return path;
}

std::string Line(int i) {
  return std::string(kWords[i % 9]) + " " + kWords[(i * 4 + 3) % 9] +
         (i % 3 ? std::string(" ") + kWords[(i * 2 + 5) % 9] : "");
}

json Ask(TranslationService& s, const json& request, int want_status = 200) {
  const Reply r = s.Translate(request.dump());
  EXPECT_EQ(r.status, want_status) << request.dump() << " -> " << r.body;
  return json::parse(r.body);
}

TEST(TranslationService, BadRequestsGetTheirStatusAndChangeNothing) {
  testing::TempDir dir;
  const std::string ckpt = WriteModel(dir, models::Arch::kRnnAttention);
  ServiceOptions opts;
  opts.max_lines = 4;
  opts.max_line_bytes = 100;
  opts.batch_window_ms = 0;
  TranslationService s({{"a", ckpt}}, opts);
  const json good = {{"text", "open the file"}, {"beam", 3}};
  const json before = Ask(s, good);
  struct Case {
    std::string body;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{bad", 400, "malformed JSON"},
      {"", 400, "malformed JSON"},
      {"[1,2]", 400, "must be a JSON object"},
      {std::string(100, '[') + std::string(100, ']'), 400, "nested deeper than 64"},
      {R"({"text": 5})", 400, "'text' must be a string"},
      {R"({"lines": "open"})", 400, "'lines' must be an array"},
      {R"({"lines": ["open", 3]})", 400, "'lines' must be an array of strings"},
      {R"({"text": "a", "lines": ["b"]})", 400, "not both"},
      {R"({})", 400, "not both"},
      {R"({"text": ""})", 400, "no text"},
      {R"({"text": "\n\n"})", 400, "no text"},
      {R"({"text": "open\n\nfile"})", 400, "line 2 is empty"},
      {R"({"text": "open", "model": "b"})", 404, "unknown model 'b'"},
      {R"({"text": "open", "model": 1})", 400, "'model' must be a string"},
      {R"({"text": "open", "beam": 0})", 400, "'beam' must be in [1, 16], got 0"},
      {R"({"text": "open", "beam": 2.5})", 400, "'beam' must be an integer"},
      {R"({"text": "open", "beam": 2, "nbest": 3})", 400, "'nbest' must be in [1, 2]"},
      {R"({"text": "open", "length_penalty": -1})", 400, "'length_penalty' must be in [0, 10]"},
      {R"({"text": "open", "attention": "yes"})", 400, "'attention' must be true or false"},
      {R"({"text": "open", "colour": 1})", 400, "unknown field 'colour'"},
      {R"({"text": "a\nb\nc\nd\ne"})", 413, "too many lines: at most 4"},
      {json{{"text", std::string(101, 'a')}}.dump(), 413, "line 1 is 101 bytes"},
      {"{\"text\": \"op\xff\xfe\"}", 400, "malformed JSON"},
      {R"({"text": "open\u0000file"})", 400, "not valid UTF-8 text"},
  };
  for (const Case& c : cases) {
    const Reply r = s.Translate(c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 60);
    const json body = json::parse(r.body);  // always JSON, even when the request quoted bad bytes
    EXPECT_THAT(body.value("error", ""), HasSubstr(c.message)) << c.body.substr(0, 60);
  }
  EXPECT_EQ(Ask(s, good)["results"], before["results"]);
}

// Requests decoded together (one batch, padded to the longest source) give the same hypotheses as
// each decoded alone, for greedy and beam search, and the service did batch them.
TEST(TranslationService, BatchedRequestsEqualEachAlone) {
  testing::TempDir dir;
  for (models::Arch arch : {models::Arch::kRnnAttention, models::Arch::kTransformer}) {
    const std::string ckpt = WriteModel(dir, arch);
    ServiceOptions batched;
    batched.batch_window_ms = 200;  // long enough that the 12 threads below always share batches
    ServiceOptions alone = batched;
    alone.batch_window_ms = 0;
    TranslationService sb({{"m", ckpt}}, batched), sa({{"m", ckpt}}, alone);
    for (int beam : {1, 3}) {
      const int n = 12;
      std::vector<json> got(n);
      std::vector<std::thread> threads;
      for (int i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
          got[i] = Ask(sb, {{"text", Line(i)}, {"beam", beam}, {"attention", false}});
        });
      for (auto& t : threads) t.join();
      int64_t largest = 0;
      for (int i = 0; i < n; ++i) {
        const json want = Ask(sa, {{"text", Line(i)}, {"beam", beam}, {"attention", false}});
        const json& g = got[i]["results"][0]["hypotheses"][0];
        const json& w = want["results"][0]["hypotheses"][0];
        EXPECT_EQ(g["tokens"], w["tokens"]) << models::NameOf(arch) << " beam " << beam << " " << i;
        EXPECT_NEAR(g["score"].get<double>(), w["score"].get<double>(), 1e-4);
        EXPECT_EQ(want["timings"]["batch_sentences"], 1);
        largest = std::max(largest, got[i]["timings"]["batch_sentences"].get<int64_t>());
      }
      EXPECT_GT(largest, 1) << "the concurrent requests were never batched";
    }
  }
}

// The attention returned for a greedy translation is what decoding put on the source: the last
// layer's cross-attention averaged over heads (the weights nmt::Translate keeps), to the 4
// decimals the service sends.
TEST(TranslationService, AttentionIsWhatDecodingComputed) {
  testing::TempDir dir;
  for (models::Arch arch : {models::Arch::kRnnAttention, models::Arch::kTransformer}) {
    const std::string ckpt = WriteModel(dir, arch);
    ServiceOptions opts;
    opts.batch_window_ms = 0;
    TranslationService s({{"m", ckpt}}, opts);
    nmt::LoadedModel m = nmt::LoadModel(ckpt);
    m.model->Eval();
    for (int i = 0; i < 6; ++i) {
      const json r = Ask(s, {{"text", Line(i)}, {"beam", 1}});
      const json& hyp = r["results"][0]["hypotheses"][0];
      nmt::SearchOptions so;
      so.beam = 1;
      so.keep_attention = true;
      const nmt::Hypothesis want = nmt::Translate(*m.model, {m.vocab.Encode(Line(i))}, so)[0][0];
      const json& site = hyp["attention"].back();
      ASSERT_EQ(site["kind"], "cross");
      const size_t heads = site["heads"].size();
      ASSERT_EQ(site["heads"][0].size(), want.attention.size());
      for (size_t t = 0; t < want.attention.size(); ++t)
        for (size_t j = 0; j < want.attention[t].size(); ++j) {
          double mean = 0;
          for (size_t h = 0; h < heads; ++h) mean += site["heads"][h][t][j].get<double>() / heads;
          // Each sent weight is within 5e-5 of its float (4 decimals), so their mean is too.
          EXPECT_NEAR(mean, want.attention[t][j], 6e-5) << models::NameOf(arch) << " " << t;
        }
      if (arch == models::Arch::kTransformer) {
        EXPECT_EQ(hyp["attention"].size(), 6u);  // 2 layers x (encoder self, decoder self, cross)
      }
    }
  }
}

TEST(TranslationService, ModelsAreDescribedAndNamedUniquely) {
  testing::TempDir dir;
  const std::string a = WriteModel(dir, models::Arch::kRnn);
  const std::string b = WriteModel(dir, models::Arch::kTransformer);
  TranslationService s({{"plain", a}, {"tf", b}}, {});
  const json models = json::parse(s.ModelsJson())["models"];
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0]["arch"], "rnn");
  EXPECT_EQ(models[0]["has_attention"], false);
  EXPECT_EQ(models[1]["arch"], "transformer");
  EXPECT_GT(models[1]["parameters"].get<int64_t>(), 1000);
  // The fixed-context model translates and returns no attention; a request must name a model.
  const json r = Ask(s, {{"text", "open the file"}, {"model", "plain"}});
  EXPECT_TRUE(r["results"][0]["hypotheses"][0]["attention"].empty());
  Ask(s, {{"text", "open"}}, 400);
  EXPECT_THROW(TranslationService({{"x", a}, {"x", b}}, {}), Error);
  EXPECT_THROW(TranslationService({{"x", dir / "missing.ckpt"}}, {}), Error);
}

}  // namespace
}  // namespace attend::serve
