// The translation service behind `attend serve`, called directly: every kind of bad request gets
// its 4xx and a message naming the problem and leaves the service as it was; batched decoding of
// concurrent requests gives what decoding each alone gives; the attention it returns is what
// decoding computed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/attend.h"
#include "attend/audio.h"
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

// An untrained Listen, Attend and Spell model (a pyramidal listener over 80 log-mel bins, an LSTM
// speller, the location-aware score) and a character vocabulary, written as nmt::Train writes it.
// Each listener step covers 3 stacked frames x 2 (one pyramid level) = 6 frames.
std::string WriteSpeechModel(const testing::TempDir& dir) {
  std::vector<std::string> transcripts;
  for (int i = 0; i < 20; ++i)
    transcripts.push_back(std::string(kWords[i % 9]) + " " + kWords[(i * 5 + 1) % 9]);
  nmt::VocabularyOptions vo;
  vo.model_type = "char";
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(transcripts, vo);
  const audio::FeatureOptions features;  // 80 mel bins, 10 ms hop, 16 kHz
  models::ModelConfig cfg;
  cfg.arch = models::Arch::kRnnAttention;
  cfg.cell = models::Cell::kLstm;
  cfg.score = models::Score::kLocationAware;
  cfg.feature_dim = features.mel_bins;
  cfg.src_vocab = 0;
  cfg.tgt_vocab = vocab.size();
  cfg.embed_dim = cfg.attention_dim = 8;
  cfg.hidden_dim = 16;
  cfg.location_filters = 2;
  cfg.location_width = 5;
  cfg.frame_stacking = 3;
  cfg.pyramid_levels = 1;
  Generator gen(11);
  const std::shared_ptr<models::Seq2Seq> model = models::MakeModel(cfg, gen);
  const std::string path = dir / "speech.ckpt";
  testing::SaveSpeechCheckpoint(path, *model, vocab, cfg.ToJson(), features);
  return path;
}

// The bytes of a 16 kHz WAV file of `samples` samples: two gliding tones and a little noise.
std::string WavBytes(const testing::TempDir& dir, int64_t samples) {
  audio::Waveform w;
  w.sample_rate = 16000;
  uint32_t noise = 12345;
  for (int64_t i = 0; i < samples; ++i) {
    const double t = static_cast<double>(i) / w.sample_rate;
    noise = noise * 1664525u + 1013904223u;
    w.samples.push_back(static_cast<float>(0.3 * std::sin(2 * M_PI * (300 + 400 * t) * t) +
                                           0.2 * std::sin(2 * M_PI * (2500 - 900 * t) * t) +
                                           0.02 * (noise / 4294967296.0 - 0.5)));
  }
  const std::string path = dir / ("tone" + std::to_string(samples) + ".wav");
  audio::WriteWav(path, w);
  return testing::ReadFile(path);
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

// A transcription's answer holds, consistently: the pieces (ending in </s>) and one attention
// row over the listener's steps per piece, each row a distribution; the steps cover the frames
// (frames_per_step each, the last possibly in part); the spectrogram's frames x bins bytes.
TEST(TranslationService, TranscribeAnswersEveryFieldConsistently) {
  testing::TempDir dir;
  const std::string speech = WriteSpeechModel(dir);
  ServiceOptions opts;
  opts.batch_window_ms = 0;
  TranslationService s({{"asr", speech}}, opts);
  // 13280 samples: 1 + (13280 - 400) / 160 = 81 frames of 25 ms every 10 ms, and 81 / 3 = 27
  // stacked frames halved (rounding up) to 14 listener steps, the last covering 3 frames.
  const std::string wav = WavBytes(dir, 13280);
  for (const std::string beam : {"", "1", "3"}) {
    const Reply r = s.Transcribe(wav, "", beam);
    ASSERT_EQ(r.status, 200) << r.body;
    const json a = json::parse(r.body);
    EXPECT_EQ(a["model"], "asr");
    EXPECT_TRUE(a["text"].is_string());
    const json& pieces = a["pieces"];
    ASSERT_GE(pieces.size(), 1u);
    EXPECT_EQ(pieces.back(), "</s>");
    ASSERT_EQ(a["attention"].size(), pieces.size()) << "one attention row per piece";
    const int64_t fps = a["frames_per_step"].get<int64_t>();
    EXPECT_EQ(fps, 6);
    const json& spec = a["spectrogram"];
    const int64_t frames = spec["frames"].get<int64_t>(), bins = spec["bins"].get<int64_t>();
    EXPECT_EQ(frames, 81);
    EXPECT_EQ(bins, 80);
    const size_t steps = a["attention"][0].size();
    EXPECT_EQ(steps, 14u);
    EXPECT_GE(static_cast<int64_t>(steps) * fps, frames);
    EXPECT_GT(frames, static_cast<int64_t>(steps - 1) * fps);
    for (const json& row : a["attention"]) {
      ASSERT_EQ(row.size(), steps);
      double sum = 0;
      for (const json& w : row) {
        EXPECT_GE(w.get<double>(), 0.0);
        sum += w.get<double>();
      }
      EXPECT_NEAR(sum, 1.0, 1e-3);  // 14 weights, each rounded to 4 decimals
    }
    const json& data = spec["data"];
    ASSERT_EQ(static_cast<int64_t>(data.size()), frames * bins);
    int lo = 255, hi = 0;
    for (const json& v : data) {
      ASSERT_TRUE(v.is_number_integer());
      lo = std::min(lo, v.get<int>());
      hi = std::max(hi, v.get<int>());
    }
    EXPECT_EQ(lo, 0);  // quantised between the features' minimum and maximum
    EXPECT_EQ(hi, 255);
    EXPECT_NEAR(a["seconds"].get<double>(), 0.81, 1e-9);
    for (const char* t : {"queue_ms", "decode_ms", "total_ms"})
      EXPECT_TRUE(a["timings"][t].is_number()) << t;
  }
}

TEST(TranslationService, TranscribeRefusesBadRequestsAndChangesNothing) {
  testing::TempDir dir;
  const std::string speech = WriteSpeechModel(dir);
  const std::string text = WriteModel(dir, models::Arch::kRnnAttention);
  ServiceOptions opts;
  opts.batch_window_ms = 0;
  TranslationService s({{"asr", speech}, {"mt", text}}, opts);
  const std::string wav = WavBytes(dir, 8000);
  const Reply before = s.Transcribe(wav, "asr", "2");
  ASSERT_EQ(before.status, 200) << before.body;
  struct Case {
    std::string body, model, beam;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"definitely not a wav file", "asr", "", 400, "not a WAV file"},
      {std::string("RIFF\x00\x00\x00\x00WAVE", 12) + std::string(40, '\xff'), "asr", "", 400,
       "the uploaded file"},
      {wav.substr(0, wav.size() / 2), "asr", "", 400, "truncated"},
      {"", "asr", "", 400, "no audio"},
      {WavBytes(dir, 100), "asr", "", 400, "shorter than one feature window"},
      {wav, "mt", "", 400, "translates text"},
      {wav, "asr", "0", 400, "beam must be an integer in [1, 16], got '0'"},
      {wav, "asr", "x", 400, "got 'x'"},
      {wav, "asr", "2x", 400, "got '2x'"},
      {wav, "asr", "17", 400, "got '17'"},
      {wav, "tts", "", 404, "unknown model 'tts'"},
      {wav, "", "", 400, "several models"},
  };
  for (const Case& c : cases) {
    const Reply r = s.Transcribe(c.body, c.model, c.beam);
    EXPECT_EQ(r.status, c.status) << c.model << " " << c.beam << " " << c.message;
    EXPECT_THAT(json::parse(r.body).value("error", ""), HasSubstr(c.message));
  }
  // Text goes to the translation model only.
  const json refused = Ask(s, {{"text", "open the file"}, {"model", "asr"}}, 400);
  EXPECT_THAT(refused.value("error", ""), HasSubstr("'asr' is a speech model"));
  Ask(s, {{"text", "open the file"}, {"model", "mt"}});
  const json models = json::parse(s.ModelsJson())["models"];
  EXPECT_EQ(models[0]["task"], "speech");
  EXPECT_EQ(models[1]["task"], "translation");
  const Reply after = s.Transcribe(wav, "asr", "2");
  ASSERT_EQ(after.status, 200);
  json b = json::parse(before.body), a = json::parse(after.body);
  b.erase("timings");
  a.erase("timings");
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace attend::serve
