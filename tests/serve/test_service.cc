// The translation service behind `attend serve`, called directly: every kind of bad request gets
// its 4xx and a message naming the problem and leaves the service as it was; batched decoding of
// concurrent requests gives what decoding each alone gives; the attention it returns is what
// decoding computed; transcriptions and captions of uploaded files.
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
#include "attend/vision.h"
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

// ---- captions ----

// An untrained captioner (fixed random weights) over a word vocabulary of kWords, written as a
// checkpoint: show-attend-tell over a 4 x 4 grid of a gray 32 x 32 image, or top-down over 6
// regions of an RGB one.
std::string WriteCaptioner(const testing::TempDir& dir, models::Arch arch,
                           models::ImageAttend attend = models::ImageAttend::kSoft) {
  std::vector<std::string> captions;
  for (int i = 0; i < 40; ++i)
    captions.push_back(std::string(kWords[i % 9]) + " " + kWords[(i * 5 + 1) % 9] + " " +
                       kWords[(i * 7 + 2) % 9]);
  nmt::VocabularyOptions vo;
  vo.model_type = "word";
  vo.size = 20;
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(captions, vo);
  models::ModelConfig cfg;
  cfg.arch = arch;
  cfg.image_attention = attend;
  cfg.src_vocab = 0;
  cfg.tgt_vocab = vocab.size();
  cfg.embed_dim = 8;
  cfg.hidden_dim = 16;
  cfg.attention_dim = 8;
  cfg.image_size = 32;
  cfg.image_channels = arch == models::Arch::kTopDown ? 3 : 1;
  cfg.cnn_channels = 2;
  cfg.regions = 6;
  cfg.dropout = 0.0;
  Generator gen(5);
  const std::shared_ptr<models::Seq2Seq> model = models::MakeModel(cfg, gen);
  const std::string path =
      dir / (std::string(models::NameOf(arch)) + "-" + models::NameOf(attend) + ".ckpt");
  testing::SaveTranslationCheckpoint(path, *model, vocab, cfg.ToJson());
  return path;
}

// A width x height RGB picture: a bright square and a dark bar on a gradient.
vision::Image Picture(int64_t width, int64_t height, int64_t channels = 3) {
  vision::Image img;
  img.width = width;
  img.height = height;
  img.channels = channels;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < channels; ++c) {
        int v = static_cast<int>((x * 120) / width + (y * 60) / height + c * 20);
        if (x > width / 5 && x < width / 2 && y > height / 4 && y < height * 3 / 5)
          v = 240 - c * 30;
        if (y > height * 3 / 4 && y < height * 4 / 5) v = 10;
        img.pixels.push_back(static_cast<uint8_t>(v));
      }
  return img;
}

std::string Png(int64_t width, int64_t height) { return vision::EncodePng(Picture(width, height)); }

// The bytes of a 24-bit BMP of width x height black pixels (a format whose size the service
// learns only by decoding).
std::string Bmp(int64_t width, int64_t height) {
  const int64_t row = (width * 3 + 3) / 4 * 4, size = 54 + row * height;
  std::string b(static_cast<size_t>(size), '\0');
  auto put = [&](size_t at, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  b[0] = 'B';
  b[1] = 'M';
  put(2, static_cast<uint32_t>(size), 4);
  put(10, 54, 4);
  put(14, 40, 4);
  put(18, static_cast<uint32_t>(width), 4);
  put(22, static_cast<uint32_t>(height), 4);
  put(26, 1, 2);
  put(28, 24, 2);
  put(34, static_cast<uint32_t>(row * height), 4);
  return b;
}

std::string Word(const std::string& piece) {
  return piece.rfind("\xe2\x96\x81", 0) == 0 ? piece.substr(3) : piece;
}

json AskCaption(TranslationService& s, const std::string& bytes, const std::string& model,
                const std::string& beam, int want_status = 200) {
  const Reply r = s.Caption(bytes, model, beam);
  EXPECT_EQ(r.status, want_status) << model << " beam " << beam << " -> " << r.body.substr(0, 300);
  return json::parse(r.body);
}

// A caption's answer is what nmt::TranslateExamples gives for the same image, searched as
// `attend caption` searches: the text, the words (one per generated token, without the
// word-start mark), each word's attention (to the 4 decimals sent) over the positions whose
// boxes AttendedBoxes gives, and the pixels the model read.
TEST(TranslationService, CaptionEqualsTranslateExamples) {
  testing::TempDir dir;
  const std::string png = Png(57, 41);  // resized to 32 x 32
  for (models::Arch arch : {models::Arch::kShowAttendTell, models::Arch::kTopDown}) {
    const std::string ckpt = WriteCaptioner(dir, arch);
    ServiceOptions opts;
    opts.batch_window_ms = 0;
    TranslationService s({{"cap", ckpt}}, opts);
    nmt::LoadedModel m = nmt::LoadModel(ckpt);
    m.model->Eval();
    const models::ModelConfig& c = m.model->config();
    const nmt::Example e = nmt::ImageExample(vision::DecodeImage(png, "test"), c);
    const Tensor src = Tensor::FromVector(e.values(), {1, c.image_channels * 32, 32});
    const std::vector<models::Seq2Seq::Box> boxes = m.model->AttendedBoxes(src)[0];
    ASSERT_EQ(boxes.size(), arch == models::Arch::kTopDown ? 6u : 16u);
    for (const std::string beam : {"1", "3", ""}) {
      const std::string what = std::string(models::NameOf(arch)) + " beam '" + beam + "'";
      const json a = AskCaption(s, png, "", beam);
      nmt::SearchOptions so;
      so.beam = beam.empty() ? 4 : std::stoi(beam);
      so.max_len_ratio = 0.0;
      so.max_len_extra = nmt::kCaptionMaxWords;
      so.keep_attention = true;
      const nmt::Hypothesis want = nmt::TranslateExamples(*m.model, {e}, so)[0][0];
      EXPECT_EQ(a["model"], "cap");
      EXPECT_EQ(a["text"], m.vocab.Decode(want.tokens)) << what;
      std::vector<std::string> words;
      for (const std::string& p : m.vocab.Pieces(want.tokens)) words.push_back(Word(p));
      EXPECT_EQ(a["words"], json(words)) << what;
      ASSERT_EQ(a["attention"].size(), words.size()) << what;
      for (size_t t = 0; t < words.size(); ++t) {
        ASSERT_EQ(a["attention"][t].size(), boxes.size());
        double sum = 0;
        for (size_t j = 0; j < boxes.size(); ++j) {
          const double w = a["attention"][t][j].get<double>();
          EXPECT_NEAR(w, want.attention[t][j], 5.01e-5) << what << " word " << t;
          sum += w;
        }
        EXPECT_NEAR(sum, 1.0, 1e-3);
      }
      ASSERT_EQ(a["boxes"].size(), boxes.size());
      for (size_t j = 0; j < boxes.size(); ++j) {
        const json& b = a["boxes"][j];
        EXPECT_NEAR(b[0].get<double>(), boxes[j].x0, 1e-3);
        EXPECT_NEAR(b[1].get<double>(), boxes[j].y0, 1e-3);
        EXPECT_NEAR(b[2].get<double>(), boxes[j].x1, 1e-3);
        EXPECT_NEAR(b[3].get<double>(), boxes[j].y1, 1e-3);
      }
      const json& img = a["image"];
      EXPECT_EQ(img["size"], 32);
      EXPECT_EQ(img["channels"], c.image_channels);
      ASSERT_EQ(img["data"].size(), e.values().size());
      for (size_t i = 0; i < e.values().size(); ++i)
        ASSERT_EQ(img["data"][i].get<int>(), std::lround(e.values()[i] * 255.0f)) << i;
      for (const char* t : {"queue_ms", "decode_ms", "total_ms"})
        EXPECT_TRUE(a["timings"][t].is_number()) << t;
    }
  }
  // A captioner that does not attend (the grid's mean): its caption, and no weights or boxes.
  const std::string plain =
      WriteCaptioner(dir, models::Arch::kShowAttendTell, models::ImageAttend::kNone);
  TranslationService s({{"plain", plain}}, {});
  const json a = AskCaption(s, png, "plain", "2");
  EXPECT_TRUE(a["attention"].empty());
  EXPECT_TRUE(a["boxes"].empty());
  EXPECT_EQ(json::parse(s.ModelsJson())["models"][0]["has_attention"], false);
}

// Bad uploads get their 4xx and a message naming the problem; the service keeps captioning; each
// endpoint refuses the other kinds of model, naming the endpoint they take.
TEST(TranslationService, CaptionRefusesBadRequestsAndChangesNothing) {
  testing::TempDir dir;
  const std::string cap = WriteCaptioner(dir, models::Arch::kShowAttendTell);
  const std::string text = WriteModel(dir, models::Arch::kRnnAttention);
  const std::string speech = WriteSpeechModel(dir);
  ServiceOptions opts;
  opts.batch_window_ms = 0;
  TranslationService s({{"cap", cap}, {"mt", text}, {"asr", speech}}, opts);
  const std::string png = Png(40, 30);
  const json before = AskCaption(s, png, "cap", "2");
  // A JPEG header declaring 5000 x 6000 pixels (start of image, start of frame), nothing more.
  const std::string huge_jpeg("\xFF\xD8\xFF\xC0\x00\x11\x08\x17\x70\x13\x88\x03\x01\x22\x00", 15);
  // A PNG signature and header declaring 100000 x 100000 pixels.
  std::string huge_png = Png(2, 2);
  huge_png[16] = huge_png[20] = 0;
  huge_png[17] = huge_png[21] = 1;
  huge_png[18] = huge_png[22] = static_cast<char>(0x86);
  huge_png[19] = huge_png[23] = static_cast<char>(0xA0);
  struct Case {
    std::string body, model, beam;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "cap", "", 400, "no image: POST a PNG or JPEG file"},
      {"definitely not an image", "cap", "", 400, "the uploaded file: not an image"},
      {png.substr(0, png.size() / 2), "cap", "", 400, "corrupt or truncated"},
      {png.substr(0, 30), "cap", "", 400, "the uploaded file"},
      {Png(4100, 3), "cap", "", 413, "4100 x 3 pixels, over the limit of 4096"},
      {huge_png, "cap", "", 413, "100000 x 100000 pixels, over the limit of 4096"},
      {huge_jpeg, "cap", "", 413, "5000 x 6000 pixels"},
      {Bmp(4097, 1), "cap", "", 413, "4097 x 1 pixels"},
      {png, "mt", "", 400, "model 'mt' cannot caption images: it translates text"},
      {png, "asr", "", 400, "model 'asr' cannot caption images: it transcribes speech"},
      {png, "cap", "0", 400, "beam must be an integer in [1, 16], got '0'"},
      {png, "cap", "17", 400, "got '17'"},
      {png, "cap", "x", 400, "got 'x'"},
      {png, "vision", "", 404, "unknown model 'vision'"},
      {png, "", "", 400, "(/api/caption?model=NAME)"},
  };
  for (const Case& c : cases) {
    const Reply r = s.Caption(c.body, c.model, c.beam);
    EXPECT_EQ(r.status, c.status) << c.model << " " << c.beam << " " << c.message;
    EXPECT_THAT(json::parse(r.body).value("error", ""), HasSubstr(c.message));
  }
  // The other endpoints send the captioner here, and do not call it a translation model.
  const json refused = Ask(s, {{"text", "open the file"}, {"model", "cap"}}, 400);
  EXPECT_THAT(refused.value("error", ""),
              HasSubstr("'cap' is a captioning model, not a translation model"));
  EXPECT_THAT(refused.value("error", ""), HasSubstr("/api/caption"));
  const Reply heard = s.Transcribe(WavBytes(dir, 8000), "cap", "");
  EXPECT_EQ(heard.status, 400);
  EXPECT_THAT(json::parse(heard.body).value("error", ""),
              HasSubstr("'cap' cannot transcribe audio: it captions images"));
  EXPECT_EQ(json::parse(s.ModelsJson())["models"][0]["task"], "caption");
  json after = AskCaption(s, png, "cap", "2"), b = before;
  after.erase("timings");
  b.erase("timings");
  EXPECT_EQ(after, b);
  const json stats = json::parse(s.StatsJson());
  EXPECT_EQ(stats["answered"], 2);
  EXPECT_EQ(stats["refused"], static_cast<int64_t>(cases.size()) + 2);
}

}  // namespace
}  // namespace attend::serve
