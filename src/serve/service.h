// The translation service behind `attend serve`: loaded models, one worker thread that decodes
// requests in batches, and the JSON API's request checking and answers. No HTTP here (see
// serve/http_server.h), so the service is tested by calling it directly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace attend::serve {

struct ServiceOptions {
  int64_t max_lines = 64;         // lines per request
  int64_t max_line_bytes = 4096;  // bytes per line
  int64_t max_beam = 16;          // beam (and n-best) per request
  double batch_window_ms = 5.0;   // requests arriving within this share one decode; 0 = none
  int64_t max_batch_sentences = 64;
  int threads = 0;  // decoding threads; 0 = the machine's cores
  // The decoder's arithmetic for every model: f32, bf16 or int8 (nn::Precision), quantized once
  // at load; empty = each checkpoint's own (int8 for attend quantize's, else f32).
  std::string precision;
};

// An answer: HTTP status and a JSON body ({"error": "..."} for 4xx).
struct Reply {
  int status = 200;
  std::string body;
};

class TranslationService {
 public:
  // models: (name, checkpoint path) pairs (none: every request gets 404, for a server that only
  // watches a run); the names must differ. Loads every model (throws
  // attend::Error naming the file on a bad one) and starts the worker.
  TranslationService(const std::vector<std::pair<std::string, std::string>>& models,
                     const ServiceOptions& options);
  ~TranslationService();  // finishes the queued requests, then stops the worker
  TranslationService(const TranslationService&) = delete;
  TranslationService& operator=(const TranslationService&) = delete;

  // POST /api/translate. Thread-safe; blocks until the request's batch is decoded. Bad requests
  // get a 4xx naming the problem and change nothing; a speech or captioning model is refused
  // with the endpoint it takes.
  Reply Translate(const std::string& request_body);
  // POST /api/transcribe?model=NAME&beam=N with a WAV file as the body: the transcript, its
  // characters, the attention of each over the listener's steps and the log-mel spectrogram
  // (quantised to 0..255). Speech models only; a translation model, or a file that is not a
  // readable WAV, gets a 4xx naming the problem.
  Reply Transcribe(const std::string& wav_bytes, const std::string& model, const std::string& beam);
  // POST /api/caption?model=NAME&beam=N with an image file (PNG, JPEG, or another format
  // vision::DecodeImage reads) as the body: the caption, its words, each word's attention over
  // the attended positions, each position's box in the model's pixels, and the pixels the model
  // read (after resizing). Captioning models only; a file that is not a readable image gets a
  // 400, one over 4096 pixels on a side a 413.
  Reply Caption(const std::string& image_bytes, const std::string& model, const std::string& beam);
  // GET /api/models: every model's name, architecture, sizes, vocabulary and training options.
  std::string ModelsJson() const;
  // GET /api/stats: requests answered and refused, sentences decoded, and the tensor allocator's
  // bytes in use and cached (what a load test watches for leaks).
  std::string StatsJson() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attend::serve
