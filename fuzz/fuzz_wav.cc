// The WAV reader on arbitrary bytes: ReadWavBytes (an upload) and ReadWav (the same bytes as a
// file) must agree, and an accepted waveform is sane: a rate within the limits, at most an hour,
// every sample finite and in [-1, 1]. It then goes on as the speech pipeline takes it: log-mel
// features of its start (finite, the documented frame count) and a 16-bit round trip through
// WriteWav.
#include <cmath>

#include "attend/audio.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("wav");
  static fuzz::ScratchFile written("wav-out");
  const std::string bytes(fuzz::AsView(data, size));
  const std::string& path = file.Write(bytes);

  audio::Waveform from_memory, from_file;
  const bool memory_ok = fuzz::Accepts([&] { from_memory = audio::ReadWavBytes(bytes, "upload"); });
  const bool file_ok = fuzz::Accepts([&] { from_file = audio::ReadWav(path); });
  FUZZ_CHECK(memory_ok == file_ok, "ReadWavBytes %s the bytes, ReadWav %s the file",
             memory_ok ? "accepts" : "refuses", file_ok ? "accepts" : "refuses");
  if (!memory_ok) return 0;
  FUZZ_CHECK(from_memory.sample_rate == from_file.sample_rate &&
             from_memory.samples == from_file.samples);

  const audio::Waveform& w = from_memory;
  FUZZ_CHECK(w.sample_rate > 0 && w.sample_rate <= audio::kMaxRate, "rate %d", w.sample_rate);
  FUZZ_CHECK(w.seconds() <= audio::kMaxSeconds &&
             static_cast<int64_t>(w.samples.size()) <= audio::kMaxFrames);
  // Nothing outside the bytes: every frame takes at least one byte.
  FUZZ_CHECK(w.samples.size() <= size, "%zu samples from %zu bytes", w.samples.size(), size);
  for (float x : w.samples) FUZZ_CHECK(std::isfinite(x) && x >= -1.0f && x <= 1.0f, "sample %g", x);

  // Features at the file's own rate (no resampling: that is libsamplerate's business, not the
  // reader's), over at most a second.
  if (w.sample_rate >= 8000 && w.sample_rate <= 48000) {
    audio::Waveform start = w;
    if (start.samples.size() > static_cast<size_t>(w.sample_rate))
      start.samples.resize(static_cast<size_t>(w.sample_rate));
    audio::FeatureOptions o;
    o.sample_rate = w.sample_rate;
    o.fft_size = 2048;
    o.mel_bins = 40;
    const audio::Features f = audio::LogMel(start, o);
    const int64_t win = std::llround(o.window_ms * o.sample_rate / 1000.0);
    const int64_t hop = std::llround(o.hop_ms * o.sample_rate / 1000.0);
    const int64_t n = static_cast<int64_t>(start.samples.size());
    FUZZ_CHECK(f.frames == (n < win ? 0 : 1 + (n - win) / hop), "%lld frames from %lld samples",
               static_cast<long long>(f.frames), static_cast<long long>(n));
    FUZZ_CHECK(f.data.size() == static_cast<size_t>(f.frames * f.bins));
    for (float v : f.data) FUZZ_CHECK(std::isfinite(v) && v >= std::log(o.floor) - 1e-3f);
  }

  // Written as 16-bit and read back: the same samples within one step.
  if (w.samples.size() <= 1 << 16) {
    audio::WriteWav(written.path(), w);
    const audio::Waveform back = audio::ReadWav(written.path());
    FUZZ_CHECK(back.sample_rate == w.sample_rate && back.samples.size() == w.samples.size());
    for (size_t i = 0; i < w.samples.size(); ++i)
      FUZZ_CHECK(std::fabs(back.samples[i] - w.samples[i]) <= 1.0f / 32768, "sample %zu", i);
  }
  return 0;
}
