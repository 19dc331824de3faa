// Speech as examples for the sequence-to-sequence trainer and search: audio files to normalised
// log-mel features, transcripts to ids, and the feature options a checkpoint records.
#include <algorithm>
#include <atomic>
#include <exception>
#include <nlohmann/json.hpp>
#include <thread>

#include "attend/error.h"
#include "attend/nmt.h"
#include "io/untrusted_json.h"

namespace attend::nmt {

Example SpeechExample(const audio::Waveform& wave, const audio::FeatureOptions& options) {
  audio::Features f = audio::LogMel(wave, options);
  audio::NormalizeUtterance(f);
  Example e;
  e.features = std::move(f.data);
  e.feature_dim = options.mel_bins;
  return e;
}

std::vector<Example> LoadSpeechExamples(const std::vector<audio::Utterance>& utterances,
                                        const Vocabulary& vocab,
                                        const audio::FeatureOptions& features, int64_t max_frames,
                                        int64_t max_len, int threads, int64_t* dropped) {
  const size_t n = utterances.size();
  std::vector<Example> all(n);
  // Each utterance is independent: workers take the next index; the first error (in manifest
  // order) is the one reported.
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) {
      try {
        const audio::Utterance& u = utterances[i];
        Example e = SpeechExample(audio::ReadWav(u.path), features);
        e.tgt = vocab.Encode(u.transcript);
        e.index = static_cast<int64_t>(i);
        all[i] = std::move(e);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  unsigned workers = threads > 0 ? static_cast<unsigned>(threads)
                                 : std::max(1u, std::thread::hardware_concurrency());
  workers = static_cast<unsigned>(std::min<size_t>(workers, std::max<size_t>(n, 1)));
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  std::vector<Example> out;
  out.reserve(n);
  int64_t n_dropped = 0;
  for (auto& e : all) {
    if (e.tgt.empty() || e.source_length() == 0 ||
        (max_frames > 0 && e.source_length() > max_frames) ||
        (max_len > 0 && static_cast<int64_t>(e.tgt.size()) > max_len)) {
      ++n_dropped;
      continue;
    }
    out.push_back(std::move(e));
  }
  if (dropped) *dropped = n_dropped;
  return out;
}

std::string FeatureOptionsJson(const audio::FeatureOptions& o) {
  return nlohmann::json{
      {"sample_rate", o.sample_rate}, {"window_ms", o.window_ms}, {"hop_ms", o.hop_ms},
      {"fft_size", o.fft_size},       {"mel_bins", o.mel_bins},   {"low_hz", o.low_hz},
      {"high_hz", o.high_hz},         {"floor", o.floor},         {"normalize", "utterance"}}
      .dump();
}

audio::FeatureOptions FeatureOptionsFromJson(const std::string& json, const std::string& source) {
  const nlohmann::json j = io::ParseUntrustedJson(json, source + ": the feature options");
  audio::FeatureOptions o;
  try {
    o.sample_rate = j.at("sample_rate").get<int>();
    o.window_ms = j.at("window_ms").get<double>();
    o.hop_ms = j.at("hop_ms").get<double>();
    o.fft_size = j.at("fft_size").get<int>();
    o.mel_bins = j.at("mel_bins").get<int>();
    o.low_hz = j.at("low_hz").get<double>();
    o.high_hz = j.at("high_hz").get<double>();
    o.floor = j.at("floor").get<double>();
  } catch (const nlohmann::json::exception&) {
    ATTEND_CHECK(false, source,
                 ": the feature options are incomplete or of the wrong type: ", io::JsonExcerpt(j));
  }
  ATTEND_CHECK(o.sample_rate >= 1000 && o.sample_rate <= 384000 && o.window_ms > 0 &&
                   o.hop_ms > 0 && o.fft_size > 0 && o.fft_size <= (1 << 16) && o.mel_bins > 0 &&
                   o.mel_bins <= 1024 && o.floor > 0,
               source, ": the feature options are out of range: ", io::JsonExcerpt(j));
  return o;
}

}  // namespace attend::nmt
