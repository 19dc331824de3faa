// The translation service: request checking, the batching worker, and the JSON answers with
// every attention site of every hypothesis.
#include "serve/service.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <chrono>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <malloc.h>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "attend/attend.h"
#include "attend/audio.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/text.h"
#include "attend/vision.h"
#include "io/untrusted_json.h"
#include "serve/answer.h"

namespace attend::serve {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A user's mistake: answered with `status` and a message naming it.
struct BadRequest {
  int status;
  std::string message;
};

[[noreturn]] void Reject(int status, std::string message) {
  throw BadRequest{status, std::move(message)};
}

// Messages may quote the request's bytes (the parser's "last read: ..."): invalid UTF-8 in them
// is replaced, never thrown on.
std::string ErrorBody(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The search settings that decide whether two requests can share one decode.
struct SearchKey {
  int64_t beam = 5, nbest = 1;
  double length_penalty = 1.0;
  bool operator==(const SearchKey& o) const {
    return beam == o.beam && nbest == o.nbest && length_penalty == o.length_penalty;
  }
};

struct Job {
  size_t model = 0;
  SearchKey key;
  bool attention = true;
  std::vector<std::vector<int64_t>> sources;
  // An upload (a transcription or a caption): one example, decoded alone.
  std::vector<nmt::Example> examples;
  Clock::time_point arrived;
  // Filled by the worker.
  std::vector<std::vector<nmt::Hypothesis>> hypotheses;
  std::vector<std::vector<std::vector<models::AttentionMap>>> maps;  // [line][hyp] sites
  double queue_ms = 0, decode_ms = 0, attention_ms = 0;
  int64_t batch_sentences = 0;
  std::string error;  // an attend::Error from the model (a 500: not the user's fault)
  std::promise<void> done;
};

struct Model {
  std::string name, path;
  nmt::LoadedModel loaded;
};

// What a model reads: text, speech (a WAV upload) or an image (a PNG or JPEG upload).
enum class Task { kTranslation, kSpeech, kCaption };

Task TaskOf(const models::ModelConfig& c) {
  return c.speech() ? Task::kSpeech : c.image() ? Task::kCaption : Task::kTranslation;
}

const char* TaskName(Task t) {
  return t == Task::kSpeech ? "speech" : t == Task::kCaption ? "caption" : "translation";
}

// Where a model of task `t` takes its requests, as the end of a refusal.
std::string WhereToSend(Task t) {
  switch (t) {
    case Task::kSpeech: return "it transcribes speech: POST a WAV file to /api/transcribe";
    case Task::kCaption: return "it captions images: POST a PNG or JPEG file to /api/caption";
    case Task::kTranslation: break;
  }
  return "it translates text: POST JSON to /api/translate";
}

// Whether a captioner's search gives attention weights (show-attend-tell without attention
// looks at the mean of the grid).
bool CaptionerAttends(const models::ModelConfig& c) {
  return !(c.arch == models::Arch::kShowAttendTell &&
           c.image_attention == models::ImageAttend::kNone);
}

// The largest side of an uploaded image (413 beyond).
constexpr int64_t kMaxUploadSide = 4096;

uint32_t BigEndian(const std::string& b, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(b[at + i]);
  return v;
}

// The width and height a PNG or JPEG header declares (nothing for another format, or a header
// too short to say): read before decoding, so that a small file declaring a huge image is
// refused before its pixels are allocated.
std::optional<std::pair<int64_t, int64_t>> DeclaredSize(const std::string& b) {
  if (b.size() >= 24 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && b.compare(12, 4, "IHDR") == 0)
    return std::pair<int64_t, int64_t>(BigEndian(b, 16, 4), BigEndian(b, 20, 4));
  if (b.size() < 4 || static_cast<uint8_t>(b[0]) != 0xFF || static_cast<uint8_t>(b[1]) != 0xD8)
    return std::nullopt;
  // JPEG: walk the segments up to the first start of frame (SOF0-15 but DHT, JPG and DAC).
  size_t at = 2;
  while (at + 4 <= b.size()) {
    if (static_cast<uint8_t>(b[at]) != 0xFF) return std::nullopt;
    const uint8_t marker = static_cast<uint8_t>(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    const size_t length = BigEndian(b, at + 2, 2);
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (at + 9 > b.size()) return std::nullopt;
      return std::pair<int64_t, int64_t>(BigEndian(b, at + 7, 2), BigEndian(b, at + 5, 2));
    }
    if (marker == 0xD9 || marker == 0xDA || length < 2) return std::nullopt;
    at += 2 + length;
  }
  return std::nullopt;
}

// A piece of a word vocabulary without SentencePiece's word-start mark (U+2581).
std::string Word(const std::string& piece) {
  const std::string mark = "\xe2\x96\x81";
  return piece.rfind(mark, 0) == 0 ? piece.substr(mark.size()) : piece;
}

double Round3(float v) { return std::round(static_cast<double>(v) * 1e3) / 1e3; }

// Attention rows rounded to the 4 decimals the answers carry.
json RoundedRows(const std::vector<std::vector<float>>& rows, size_t count) {
  json out = json::array();
  for (size_t t = 0; t < std::min(count, rows.size()); ++t) {
    json r = json::array();
    for (float v : rows[t]) r.push_back(std::round(v * 1e4) / 1e4);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

struct TranslationService::Impl {
  ServiceOptions options;
  std::vector<Model> models;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job*> queue;
  bool stopping = false;
  std::thread worker;
  std::atomic<int64_t> answered{0}, refused{0}, failed{0}, sentences{0}, batches{0};

  size_t FindModel(const json& request) const {
    if (models.empty()) Reject(404, "this server holds no model to translate with");
    if (!request.contains("model")) {
      if (models.size() == 1) return 0;
      Reject(400, "field 'model' is required when the server holds several models");
    }
    if (!request["model"].is_string()) Reject(400, "field 'model' must be a string");
    const std::string name = request["model"].get<std::string>();
    for (size_t i = 0; i < models.size(); ++i)
      if (models[i].name == name) return i;
    std::string names;
    for (const Model& m : models) names += (names.empty() ? "" : ", ") + m.name;
    Reject(404, "unknown model '" + io::Excerpt(name) + "' (this server holds " + names + ")");
  }

  // Parses and checks a request into a job; nothing is queued on any error.
  void Parse(const std::string& body, Job& job) {
    if (io::JsonNesting(body, io::kMaxJsonDepth) > io::kMaxJsonDepth)
      Reject(400, "the request is nested deeper than " + std::to_string(io::kMaxJsonDepth));
    json r;
    try {
      r = json::parse(body);
    } catch (const json::parse_error& e) {
      Reject(400, std::string("malformed JSON: ") + e.what());
    }
    if (!r.is_object()) Reject(400, "the request must be a JSON object");
    static const std::string kFields[] = {"model", "text",  "lines",          "beam",
                                          "nbest", "alpha", "length_penalty", "attention"};
    for (const auto& item : r.items()) {
      const std::string& key = item.key();
      if (std::find(std::begin(kFields), std::end(kFields), key) == std::end(kFields))
        Reject(400, "unknown field '" + io::Excerpt(key) +
                        "' (expected model, text or lines, beam, nbest, length_penalty, "
                        "attention)");
    }
    job.model = FindModel(r);
    if (const Task t = TaskOf(job.model); t != Task::kTranslation)
      Reject(400, "model '" + models[job.model].name + "' is a " +
                      (t == Task::kSpeech ? "speech" : "captioning") +
                      " model, not a translation model: " + WhereToSend(t));
    auto integer = [&](const char* name, int64_t def, int64_t lo, int64_t hi) {
      if (!r.contains(name)) return def;
      if (!r[name].is_number_integer())
        Reject(400, std::string("field '") + name + "' must be an integer");
      const int64_t v = r[name].get<int64_t>();
      if (v < lo || v > hi)
        Reject(400, std::string("field '") + name + "' must be in [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "], got " + std::to_string(v));
      return v;
    };
    job.key.beam = integer("beam", 5, 1, options.max_beam);
    job.key.nbest = integer("nbest", 1, 1, job.key.beam);
    for (const char* name : {"length_penalty", "alpha"}) {
      if (!r.contains(name)) continue;
      if (!r[name].is_number()) Reject(400, std::string("field '") + name + "' must be a number");
      const double a = r[name].get<double>();
      if (!(a >= 0 && a <= 10)) Reject(400, std::string("field '") + name + "' must be in [0, 10]");
      job.key.length_penalty = a;
    }
    if (r.contains("attention")) {
      if (!r["attention"].is_boolean()) Reject(400, "field 'attention' must be true or false");
      job.attention = r["attention"].get<bool>();
    }
    std::vector<std::string> lines;
    if (r.contains("text") == r.contains("lines"))
      Reject(400, "give the sentences as 'text' (one per line) or as 'lines' (an array), not both");
    if (r.contains("text")) {
      if (!r["text"].is_string()) Reject(400, "field 'text' must be a string");
      const std::string t = r["text"].get<std::string>();
      size_t start = 0;
      while (start <= t.size()) {
        size_t end = t.find('\n', start);
        if (end == std::string::npos) end = t.size();
        std::string line = t.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
        if (static_cast<int64_t>(lines.size()) > options.max_lines) break;
        start = end + 1;
      }
      while (!lines.empty() && lines.back().empty()) lines.pop_back();  // trailing newlines
    } else {
      if (!r["lines"].is_array()) Reject(400, "field 'lines' must be an array of strings");
      for (const json& l : r["lines"]) {
        if (!l.is_string()) Reject(400, "field 'lines' must be an array of strings");
        lines.push_back(l.get<std::string>());
        if (static_cast<int64_t>(lines.size()) > options.max_lines) break;
      }
    }
    if (lines.empty()) Reject(400, "no text to translate");
    if (static_cast<int64_t>(lines.size()) > options.max_lines)
      Reject(413, "too many lines: at most " + std::to_string(options.max_lines) + " per request");
    const nmt::Vocabulary& vocab = models[job.model].loaded.vocab;
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string where = "line " + std::to_string(i + 1);
      if (static_cast<int64_t>(lines[i].size()) > options.max_line_bytes)
        Reject(413, where + " is " + std::to_string(lines[i].size()) +
                        " bytes, over the limit of " + std::to_string(options.max_line_bytes));
      // nlohmann's parser already refuses ill-formed UTF-8 in strings; this also refuses NULs.
      if (!text::IsValidUtf8(lines[i]) || lines[i].find('\0') != std::string::npos)
        Reject(400, where + " is not valid UTF-8 text");
      job.sources.push_back(vocab.Encode(lines[i]));
      if (job.sources.back().empty()) Reject(400, where + " is empty");
    }
  }

  Task TaskOf(size_t model) const { return serve::TaskOf(models[model].loaded.model->config()); }

  // An upload to /api/transcribe or /api/caption (`task`): the model the query names (or the one
  // model of the server), the beam, a body; `read` turns the body into the job's example (throwing
  // BadRequest, or attend::Error for an unreadable file: a 400), the worker decodes it alone, and
  // `answer` builds the reply's JSON from the decoded job.
  Reply Upload(Task task, const std::string& body, const std::string& model,
               const std::string& beam,
               const std::function<void(const Model&, const std::string&, Job&)>& read,
               const std::function<json(const Model&, const Job&)>& answer) {
    const auto received = Clock::now();
    const std::string path = task == Task::kSpeech ? "/api/transcribe" : "/api/caption";
    Job job;
    const Model* m = nullptr;
    try {
      if (model.empty() && models.size() > 1)
        Reject(400,
               "the query parameter 'model' is required when the server holds several "
               "models (" +
                   path + "?model=NAME)");
      json r = json::object();
      if (!model.empty()) r["model"] = model;
      job.model = FindModel(r);
      m = &models[job.model];
      if (const Task t = TaskOf(job.model); t != task)
        Reject(400, "model '" + m->name + "' cannot " +
                        (task == Task::kSpeech ? "transcribe audio" : "caption images") + ": " +
                        WhereToSend(t));
      job.key.beam = 4;
      if (!beam.empty()) {
        char* end = nullptr;
        const long b = std::strtol(beam.c_str(), &end, 10);
        if (end == beam.c_str() || *end != '\0' || b < 1 || b > options.max_beam)
          Reject(400, "beam must be an integer in [1, " + std::to_string(options.max_beam) +
                          "], got '" + io::Excerpt(beam) + "'");
        job.key.beam = b;
      }
      read(*m, body, job);
    } catch (const BadRequest& e) {
      refused++;
      return {e.status, ErrorBody(e.message)};
    } catch (const Error& e) {  // an unreadable, corrupt or truncated file
      refused++;
      return {400, ErrorBody(e.what())};
    }
    if (std::optional<Reply> failed = Submit(job)) return *failed;
    answered++;
    sentences += 1;
    json out = answer(*m, job);
    out["timings"] = {{"queue_ms", job.queue_ms},
                      {"decode_ms", job.decode_ms},
                      {"total_ms", Ms(Clock::now() - received)}};
    return {200, out.dump()};
  }

  // Decodes `batch` (jobs of one model and one search key) and fills in their answers.
  void Decode(const std::vector<Job*>& batch) {
    Model& m = models[batch[0]->model];
    const auto start = Clock::now();
    if (!batch[0]->examples.empty()) {
      Job& j = *batch[0];
      j.queue_ms = Ms(start - j.arrived);
      const models::ModelConfig& c = m.loaded.model->config();
      nmt::SearchOptions so;
      so.beam = j.key.beam;
      if (c.image()) {  // as `attend caption` searches
        so.max_len_ratio = 0.0;
        so.max_len_extra = nmt::kCaptionMaxWords;
        so.keep_attention = CaptionerAttends(c);
      } else {
        so.max_len_ratio = nmt::kSpeechLengthRatio;
        so.keep_attention = true;
      }
      j.hypotheses = nmt::TranslateExamples(*m.loaded.model, j.examples, so);
      j.batch_sentences = 1;
      j.decode_ms = Ms(Clock::now() - start);
      return;
    }
    std::vector<std::vector<int64_t>> sources;
    for (Job* j : batch) {
      j->queue_ms = Ms(start - j->arrived);
      sources.insert(sources.end(), j->sources.begin(), j->sources.end());
    }
    nmt::SearchOptions so;
    so.beam = batch[0]->key.beam;
    so.nbest = batch[0]->key.nbest;
    so.length_penalty = batch[0]->key.length_penalty;
    so.batch_size = std::max<int64_t>(1, static_cast<int64_t>(sources.size()));
    std::vector<std::vector<nmt::Hypothesis>> results =
        nmt::Translate(*m.loaded.model, sources, so);
    const auto decoded = Clock::now();
    size_t next = 0;
    for (Job* j : batch) {
      j->batch_sentences = static_cast<int64_t>(sources.size());
      j->decode_ms = Ms(decoded - start);
      for (size_t i = 0; i < j->sources.size(); ++i) j->hypotheses.push_back(results[next++]);
      if (j->attention) Attend(m, *j);
    }
  }

  // Every attention site of every hypothesis of `job`, from one teacher-forced pass per line.
  void Attend(Model& m, Job& job) {
    const auto start = Clock::now();
    job.maps.clear();
    for (size_t i = 0; i < job.sources.size(); ++i)
      job.maps.push_back(HypothesisMaps(*m.loaded.model, job.sources[i], job.hypotheses[i]));
    job.attention_ms = Ms(Clock::now() - start);
  }

  void Run() {
    auto last_trim = Clock::now();
    for (;;) {
      std::vector<Job*> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        // Idle: hand the heap's free pages back to the system at most once a second. The
        // answers are built and freed on many connection threads, and glibc keeps what they
        // freed in per-thread arenas, so without this the resident size creeps up under load
        // while the heap itself stays flat (docs/server.md, "Memory").
        if (queue.empty() && Clock::now() - last_trim > std::chrono::seconds(1)) {
          lock.unlock();
          malloc_trim(0);
          last_trim = Clock::now();
          lock.lock();
        }
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping, and every request answered
        if (options.batch_window_ms > 0) {
          // Wait out the window from the first request's arrival, or until the batch is full.
          const auto until =
              queue.front()->arrived +
              std::chrono::microseconds(static_cast<int64_t>(options.batch_window_ms * 1000));
          cv.wait_until(lock, until, [&] {
            return stopping || QueuedSentences() >= options.max_batch_sentences;
          });
        }
        Job* first = queue.front();
        int64_t sentences = 0;
        for (auto it = queue.begin(); it != queue.end();) {
          Job* j = *it;
          const bool fits =
              batch.empty() ||
              (options.batch_window_ms > 0 && j->model == first->model && j->key == first->key &&
               j->examples.empty() && first->examples.empty() &&
               sentences + static_cast<int64_t>(j->sources.size()) <= options.max_batch_sentences);
          if (fits) {
            batch.push_back(j);
            sentences += static_cast<int64_t>(j->sources.size());
            it = queue.erase(it);
          } else {
            ++it;
          }
          if (options.batch_window_ms <= 0) break;
        }
      }
      batches++;
      try {
        Decode(batch);
      } catch (const std::exception& e) {
        for (Job* j : batch) j->error = e.what();
      }
      for (Job* j : batch) j->done.set_value();
    }
  }

  int64_t QueuedSentences() const {
    int64_t n = 0;
    for (const Job* j : queue) n += static_cast<int64_t>(j->sources.size());
    return n;
  }

  // Queues a checked job and waits until the worker has decoded it: nothing when it was, the
  // reply to send when it was not (503 while shutting down, 500 when decoding failed).
  std::optional<Reply> Submit(Job& job) {
    std::future<void> done = job.done.get_future();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return Reply{503, ErrorBody("the server is shutting down")};
      job.arrived = Clock::now();
      queue.push_back(&job);
    }
    cv.notify_all();
    done.wait();
    if (job.error.empty()) return std::nullopt;
    failed++;
    return Reply{500, ErrorBody("decoding failed: " + job.error)};
  }

  json Answer(const Job& job, const Clock::time_point& received) const {
    const Model& m = models[job.model];
    const nmt::Vocabulary& vocab = m.loaded.vocab;
    json results = json::array();
    for (size_t i = 0; i < job.sources.size(); ++i)
      results.push_back(LineJson(vocab, job.sources[i], job.hypotheses[i],
                                 job.attention ? &job.maps[i] : nullptr));
    return {{"model", m.name},
            {"results", std::move(results)},
            {"timings",
             {{"queue_ms", job.queue_ms},
              {"decode_ms", job.decode_ms},
              {"attention_ms", job.attention_ms},
              {"total_ms", Ms(Clock::now() - received)},
              {"batch_sentences", job.batch_sentences}}}};
  }
};

TranslationService::TranslationService(
    const std::vector<std::pair<std::string, std::string>>& models, const ServiceOptions& options)
    : impl_(std::make_unique<Impl>()) {
  ATTEND_CHECK(options.max_lines >= 1 && options.max_line_bytes >= 1 && options.max_beam >= 1 &&
                   options.max_batch_sentences >= 1 && options.batch_window_ms >= 0,
               "serve: limits must be positive");
  impl_->options = options;
  // Two malloc arenas, not one per connection thread (glibc's default allows 8 per core): the
  // connection threads only parse requests and write answers, and each arena they would own keeps
  // its freed pages, so the resident size would grow with the thread count (docs/server.md).
  mallopt(M_ARENA_MAX, 2);
  if (options.threads > 0) SetNumThreads(options.threads);
  for (const auto& [name, path] : models) {
    for (const Model& m : impl_->models)
      ATTEND_CHECK(m.name != name, "serve: two models are named '", name, "'");
    Model m;
    m.name = name;
    m.path = path;
    m.loaded = nmt::LoadModel(path);
    m.loaded.model->Eval();
    if (!options.precision.empty())
      m.loaded.model->SetDecodePrecision(nn::ParsePrecision(options.precision));
    m.loaded.model->PrepareDecoding();  // the served weights never change
    impl_->models.push_back(std::move(m));
  }
  impl_->worker = std::thread([this] { impl_->Run(); });
}

TranslationService::~TranslationService() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->worker.join();
}

Reply TranslationService::Translate(const std::string& request_body) {
  const auto received = Clock::now();
  Job job;
  try {
    impl_->Parse(request_body, job);
  } catch (const BadRequest& e) {
    impl_->refused++;
    return {e.status, ErrorBody(e.message)};
  } catch (const Error& e) {  // e.g. the vocabulary refusing a line
    impl_->refused++;
    return {400, ErrorBody(e.what())};
  }
  if (std::optional<Reply> failed = impl_->Submit(job)) return *failed;
  impl_->answered++;
  impl_->sentences += static_cast<int64_t>(job.sources.size());
  return {200, impl_->Answer(job, received).dump()};
}

Reply TranslationService::Transcribe(const std::string& wav_bytes, const std::string& model,
                                     const std::string& beam) {
  auto read = [](const Model& m, const std::string& body, Job& job) {
    if (body.empty()) Reject(400, "no audio: POST a WAV file as the request body");
    const audio::Waveform w = audio::ReadWavBytes(body, "the uploaded file");
    if (w.seconds() > 120.0)
      Reject(413, "the audio is " + std::to_string(static_cast<int>(w.seconds())) +
                      " s long, over the limit of 120 s");
    job.examples.push_back(nmt::SpeechExample(w, m.loaded.features));
    if (job.examples[0].source_length() == 0)
      Reject(400, "the audio is shorter than one feature window");
  };
  auto answer = [](const Model& m, const Job& job) -> json {
    const nmt::Example& e = job.examples[0];
    const nmt::Hypothesis h = job.hypotheses[0].empty() ? nmt::Hypothesis{} : job.hypotheses[0][0];
    std::vector<std::string> pieces = m.loaded.vocab.Pieces(h.tokens);
    pieces.push_back("</s>");
    // The spectrogram as bytes 0..255 between its minimum and maximum, frame by frame.
    const auto [lo, hi] = std::minmax_element(e.features.begin(), e.features.end());
    const float range = *hi > *lo ? *hi - *lo : 1.0f;
    std::vector<int> q(e.features.size());
    for (size_t i = 0; i < q.size(); ++i)
      q[i] = static_cast<int>(std::lround((e.features[i] - *lo) / range * 255.0f));
    return {
        {"model", m.name},
        {"text", m.loaded.vocab.Decode(h.tokens)},
        {"pieces", pieces},
        {"attention", RoundedRows(h.attention, h.attention.size())},
        {"frames_per_step", m.loaded.model->config().FramesPerStep()},
        {"spectrogram", {{"frames", e.source_length()}, {"bins", e.feature_dim}, {"data", q}}},
        {"seconds", static_cast<double>(e.source_length()) * m.loaded.features.hop_ms / 1000.0}};
  };
  return impl_->Upload(Task::kSpeech, wav_bytes, model, beam, read, answer);
}

Reply TranslationService::Caption(const std::string& image_bytes, const std::string& model,
                                  const std::string& beam) {
  auto read = [](const Model& m, const std::string& body, Job& job) {
    const models::ModelConfig& c = m.loaded.model->config();
    if (c.arch == models::Arch::kTopDown && !c.proposals)
      Reject(400, "model '" + m.name +
                      "' reads the items' true boxes (--true-boxes), which an uploaded image "
                      "does not have: it captions only with `attend caption --tsv` and its "
                      "items");
    if (body.empty()) Reject(400, "no image: POST a PNG or JPEG file as the request body");
    auto too_large = [](int64_t w, int64_t h) {
      if (w > kMaxUploadSide || h > kMaxUploadSide)
        Reject(413, "the image is " + std::to_string(w) + " x " + std::to_string(h) +
                        " pixels, over the limit of " + std::to_string(kMaxUploadSide) +
                        " on a side");
    };
    if (const auto size = DeclaredSize(body)) too_large(size->first, size->second);
    const vision::Image img = vision::DecodeImage(body, "the uploaded file");
    too_large(img.width, img.height);  // a format whose header DeclaredSize does not read
    job.examples.push_back(nmt::ImageExample(img, c));
  };
  auto answer = [](const Model& m, const Job& job) -> json {
    const models::ModelConfig& c = m.loaded.model->config();
    const nmt::Example& e = job.examples[0];
    const nmt::Hypothesis h = job.hypotheses[0].empty() ? nmt::Hypothesis{} : job.hypotheses[0][0];
    json words = json::array();
    for (const std::string& piece : m.loaded.vocab.Pieces(h.tokens)) words.push_back(Word(piece));
    // The attended positions' boxes, as the search saw the image.
    const int64_t s = c.image_size, ch = c.image_channels;
    json boxes = json::array();
    if (CaptionerAttends(c)) {
      const Tensor src = Tensor::FromVector(e.values(), {1, ch * s, s});
      const std::vector<std::vector<models::Seq2Seq::Box>> all = m.loaded.model->AttendedBoxes(src);
      for (const models::Seq2Seq::Box& b : all.at(0))
        boxes.push_back({Round3(b.x0), Round3(b.y0), Round3(b.x1), Round3(b.y1)});
    }
    std::vector<int> pixels(e.values().size());
    for (size_t i = 0; i < pixels.size(); ++i)
      pixels[i] = static_cast<int>(std::lround(std::clamp(e.values()[i], 0.0f, 1.0f) * 255.0f));
    return {{"model", m.name},
            {"text", m.loaded.vocab.Decode(h.tokens)},
            {"words", words},
            // One row per word (the end of sentence's is left out); none when the model does
            // not attend.
            {"attention", RoundedRows(h.attention, words.size())},
            {"boxes", std::move(boxes)},
            {"image", {{"size", s}, {"channels", ch}, {"data", std::move(pixels)}}}};
  };
  return impl_->Upload(Task::kCaption, image_bytes, model, beam, read, answer);
}

std::string TranslationService::ModelsJson() const {
  json out = json::array();
  for (const Model& m : impl_->models) {
    const models::ModelConfig& c = m.loaded.model->config();
    out.push_back({{"name", m.name},
                   {"checkpoint", m.path},
                   {"arch", models::NameOf(c.arch)},
                   {"parameters", m.loaded.model->NumParameters()},
                   {"vocabulary", m.loaded.vocab.size()},
                   {"config", json::parse(c.ToJson())},
                   {"train", json::parse(m.loaded.train_json)},
                   {"task", TaskName(TaskOf(c))},
                   {"has_attention", c.arch != models::Arch::kRnn && CaptionerAttends(c)}});
  }
  return json{{"models", std::move(out)}}.dump();
}

std::string TranslationService::StatsJson() const {
  const AllocatorStats a = GetAllocatorStats();
  return json{
      {"answered", impl_->answered.load()},    {"refused", impl_->refused.load()},
      {"failed", impl_->failed.load()},        {"sentences", impl_->sentences.load()},
      {"batches", impl_->batches.load()},      {"tensor_bytes_in_use", a.bytes_in_use},
      {"tensor_bytes_cached", a.bytes_cached}, {"tensor_peak_bytes_in_use", a.peak_bytes_in_use}}
      .dump();
}

}  // namespace attend::serve
