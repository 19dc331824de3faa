// Speech front end speed (src/audio/): log-mel features, resampling and WAV decoding over 60 s of
// audio on one thread, as seconds of audio per second (the "audio_s/s" counter; 100 means a
// minute of speech in 0.6 s).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>

#include "attend/audio.h"

namespace {

using attend::audio::FeatureOptions;
using attend::audio::Waveform;

constexpr double kSeconds = 60.0;

// A chirp plus noise: every band has energy, as in speech.
Waveform Audio(int rate) {
  Waveform w;
  w.sample_rate = rate;
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> noise(-0.05, 0.05);
  const int64_t n = std::llround(kSeconds * rate);
  w.samples.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    const double phase = 2 * std::numbers::pi * (100 * t + 3000 * t * t / (2 * kSeconds));
    w.samples[static_cast<size_t>(i)] = static_cast<float>(0.5 * std::sin(phase) + noise(rng));
  }
  return w;
}

void SetRate(benchmark::State& st) {
  st.counters["audio_s/s"] =
      benchmark::Counter(kSeconds, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: fft size, mel bins (the defaults: 25 ms windows every 10 ms at 16 kHz).
void BM_LogMel(benchmark::State& st) {
  const Waveform w = Audio(16000);
  FeatureOptions o;
  o.fft_size = static_cast<int>(st.range(0));
  o.mel_bins = static_cast<int>(st.range(1));
  for (auto _ : st) benchmark::DoNotOptimize(attend::audio::LogMel(w, o).data.data());
  SetRate(st);
}
BENCHMARK(BM_LogMel)->Args({512, 80})->Args({400, 80})->Args({512, 40})->Unit(
    benchmark::kMillisecond);

// Features of 22.05 kHz audio: resampled to 16 kHz first.
void BM_LogMelResampled(benchmark::State& st) {
  const Waveform w = Audio(22050);
  for (auto _ : st)
    benchmark::DoNotOptimize(attend::audio::LogMel(w, FeatureOptions{}).data.data());
  SetRate(st);
}
BENCHMARK(BM_LogMelResampled)->Unit(benchmark::kMillisecond);

void BM_Resample(benchmark::State& st) {
  const Waveform w = Audio(static_cast<int>(st.range(0)));
  for (auto _ : st) benchmark::DoNotOptimize(attend::audio::Resample(w, 16000).samples.data());
  SetRate(st);
}
BENCHMARK(BM_Resample)->Arg(22050)->Arg(44100)->Arg(8000)->Unit(benchmark::kMillisecond);

void BM_ReadWavBytes(benchmark::State& st) {
  const std::string path = "/tmp/attend-bench-audio-" + std::to_string(::getpid()) + ".wav";
  attend::audio::WriteWav(path, Audio(16000));
  std::string bytes;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    char buf[1 << 16];
    size_t n;
    while (f != nullptr && (n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
    if (f != nullptr) std::fclose(f);
  }
  std::remove(path.c_str());
  for (auto _ : st)
    benchmark::DoNotOptimize(attend::audio::ReadWavBytes(bytes, "bench").samples.data());
  SetRate(st);
}
BENCHMARK(BM_ReadWavBytes)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
