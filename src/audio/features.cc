// Log-mel features with FFTW, normalisation and SpecAugment masking (attend/audio.h).
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

#include "attend/audio.h"
#include "attend/error.h"

namespace attend::audio {
namespace {

constexpr int kMaxFftSize = 1 << 16;
constexpr int kMaxMelBins = 4096;

struct FftwFree {
  void operator()(void* p) const { fftwf_free(p); }
};
template <typename T>
using FftwBuffer = std::unique_ptr<T[], FftwFree>;

template <typename T>
FftwBuffer<T> FftwAlloc(size_t n) {
  FftwBuffer<T> p(static_cast<T*>(fftwf_malloc(n * sizeof(T))));
  ATTEND_CHECK(p != nullptr, "LogMel: out of memory for an FFT of ", n, " values");
  return p;
}

// FFTW's planner is not thread-safe, its new-array execute functions are: plans are made once per
// size under a lock and kept for the life of the process. FFTW_ESTIMATE chooses without timing
// runs, so a size always gets the same plan (and the same bits), and planning does not touch the
// arrays. Buffers from fftwf_malloc have the alignment the plan was made for.
fftwf_plan PlanFor(int fft_size) {
  static std::mutex mu;
  // Never destroyed: a thread may still be computing features while the process exits, and the
  // plans stay reachable for the leak checker.
  static auto* plans = new std::map<int, fftwf_plan>;
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans->find(fft_size);
  if (it != plans->end()) return it->second;
  FftwBuffer<float> in = FftwAlloc<float>(static_cast<size_t>(fft_size));
  FftwBuffer<fftwf_complex> out = FftwAlloc<fftwf_complex>(static_cast<size_t>(fft_size / 2 + 1));
  fftwf_plan plan = fftwf_plan_dft_r2c_1d(fft_size, in.get(), out.get(), FFTW_ESTIMATE);
  ATTEND_ASSERT(plan != nullptr, "FFTW could not plan a real FFT of size ", fft_size);
  plans->emplace(fft_size, plan);
  return plan;
}

double HzToMel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double MelToHz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

// One triangular filter: weights for FFT bins first .. first + weights.size() - 1.
struct MelFilter {
  int first = 0;
  std::vector<float> weights;
};

std::vector<MelFilter> MelFilters(int fft_size, int rate, int bins, double low, double high) {
  const int freqs = fft_size / 2 + 1;
  const double mel_low = HzToMel(low), mel_high = HzToMel(high);
  std::vector<double> edge(static_cast<size_t>(bins) + 2);
  for (size_t i = 0; i < edge.size(); ++i)
    edge[i] = MelToHz(mel_low + (mel_high - mel_low) * static_cast<double>(i) / (bins + 1));
  std::vector<MelFilter> filters(static_cast<size_t>(bins));
  for (int m = 0; m < bins; ++m) {
    const double left = edge[m], centre = edge[m + 1], right = edge[m + 2];
    MelFilter& f = filters[static_cast<size_t>(m)];
    for (int k = 0; k < freqs; ++k) {
      const double hz = static_cast<double>(k) * rate / fft_size;
      const double w =
          std::max(0.0, std::min((hz - left) / (centre - left), (right - hz) / (right - centre)));
      if (w <= 0.0) {
        if (!f.weights.empty()) break;  // past the triangle
        continue;
      }
      if (f.weights.empty()) f.first = k;
      f.weights.push_back(static_cast<float>(w));
    }
  }
  return filters;
}

// Samples of a duration in milliseconds, refused when it rounds to none or is absurd.
int64_t SamplesOf(double ms, int rate, const char* what) {
  ATTEND_CHECK(std::isfinite(ms) && ms > 0 && ms <= 1e6, "LogMel: ", what, " of ", ms,
               " ms; expected a positive duration");
  const int64_t n = std::llround(ms * rate / 1000.0);
  ATTEND_CHECK(n >= 1, "LogMel: ", what, " of ", ms, " ms is less than one sample at ", rate,
               " Hz");
  return n;
}

// splitmix64 (Steele, Lea and Flood 2014): a full-period generator whose output depends on the
// seed alone, the same on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n], without the bias of a plain modulo.
  int64_t UpTo(int64_t n) {
    const uint64_t range = static_cast<uint64_t>(n) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do x = Next();
    while (x >= limit);
    return static_cast<int64_t>(x % range);
  }

 private:
  uint64_t state_;
};

void CheckShape(const Features& f, const char* op) {
  ATTEND_CHECK(f.frames >= 0 && f.bins >= 0 &&
                   f.data.size() == static_cast<size_t>(f.frames) * static_cast<size_t>(f.bins),
               op, ": features of ", f.frames, " frames x ", f.bins, " bins hold ", f.data.size(),
               " values");
}

// Per-bin mean and population standard deviation (zero becomes 1) over every frame of `all`.
Normalizer Statistics(const std::vector<const Features*>& all, int64_t bins) {
  const size_t b = static_cast<size_t>(bins);
  std::vector<double> sum(b, 0.0), sq(b, 0.0);
  int64_t frames = 0;
  for (const Features* f : all) {
    for (int64_t t = 0; t < f->frames; ++t)
      for (size_t j = 0; j < b; ++j) sum[j] += f->data[static_cast<size_t>(t) * b + j];
    frames += f->frames;
  }
  Normalizer n;
  n.mean.assign(b, 0.0f);
  n.stddev.assign(b, 1.0f);
  if (frames == 0) return n;
  std::vector<double> mean(b);
  for (size_t j = 0; j < b; ++j) mean[j] = sum[j] / static_cast<double>(frames);
  // Two passes: the variance from squared deviations, not E[x^2] - mean^2 (which cancels badly
  // for log energies far from zero).
  for (const Features* f : all)
    for (int64_t t = 0; t < f->frames; ++t)
      for (size_t j = 0; j < b; ++j) {
        const double d = f->data[static_cast<size_t>(t) * b + j] - mean[j];
        sq[j] += d * d;
      }
  for (size_t j = 0; j < b; ++j) {
    n.mean[j] = static_cast<float>(mean[j]);
    const double sd = std::sqrt(sq[j] / static_cast<double>(frames));
    n.stddev[j] = sd > 0.0 ? static_cast<float>(sd) : 1.0f;
  }
  return n;
}

}  // namespace

Features LogMel(const Waveform& wave, const FeatureOptions& options) {
  const FeatureOptions& o = options;
  const int rate = o.sample_rate;
  ATTEND_CHECK(rate > 0 && rate <= kMaxRate, "LogMel: sample_rate ", rate, " Hz is outside 1 .. ",
               kMaxRate);
  ATTEND_CHECK(o.fft_size >= 2 && o.fft_size <= kMaxFftSize, "LogMel: fft_size ", o.fft_size,
               " is outside 2 .. ", kMaxFftSize);
  ATTEND_CHECK(o.mel_bins >= 1 && o.mel_bins <= kMaxMelBins, "LogMel: mel_bins ", o.mel_bins,
               " is outside 1 .. ", kMaxMelBins);
  const int64_t win = SamplesOf(o.window_ms, rate, "window_ms");
  const int64_t hop = SamplesOf(o.hop_ms, rate, "hop_ms");
  ATTEND_CHECK(win <= o.fft_size, "LogMel: the window of ", o.window_ms, " ms is ", win,
               " samples at ", rate, " Hz, longer than fft_size ", o.fft_size);
  const double nyquist = rate / 2.0;
  const double high = o.high_hz == 0.0 ? nyquist : o.high_hz;
  ATTEND_CHECK(std::isfinite(o.low_hz) && std::isfinite(high) && o.low_hz >= 0 && o.low_hz < high &&
                   high <= nyquist,
               "LogMel: the mel filters span low_hz ", o.low_hz, " to high_hz ", high,
               "; expected 0 <= low_hz < high_hz <= ", nyquist, " (Nyquist at ", rate, " Hz)");
  ATTEND_CHECK(std::isfinite(o.floor) && o.floor > 0, "LogMel: floor ", o.floor,
               " must be positive");

  const Waveform* in = &wave;
  Waveform resampled;
  if (wave.sample_rate != rate) {
    resampled = Resample(wave, rate);
    in = &resampled;
  }
  const std::vector<float>& x = in->samples;
  for (size_t i = 0; i < x.size(); ++i)
    ATTEND_CHECK(std::isfinite(x[i]), "LogMel: sample ", i, " is not a finite number");

  Features out;
  out.bins = o.mel_bins;
  const int64_t n = static_cast<int64_t>(x.size());
  out.frames = n < win ? 0 : 1 + (n - win) / hop;
  if (out.frames == 0) return out;
  out.data.resize(static_cast<size_t>(out.frames * out.bins));

  std::vector<float> window(static_cast<size_t>(win));
  for (int64_t i = 0; i < win; ++i)
    window[static_cast<size_t>(i)] = static_cast<float>(
        0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) / win));
  const std::vector<MelFilter> filters = MelFilters(o.fft_size, rate, o.mel_bins, o.low_hz, high);
  const int freqs = o.fft_size / 2 + 1;
  const fftwf_plan plan = PlanFor(o.fft_size);
  FftwBuffer<float> frame = FftwAlloc<float>(static_cast<size_t>(o.fft_size));
  FftwBuffer<fftwf_complex> spectrum = FftwAlloc<fftwf_complex>(static_cast<size_t>(freqs));
  std::fill(frame.get(), frame.get() + o.fft_size, 0.0f);  // the padding stays zero
  std::vector<float> power(static_cast<size_t>(freqs));
  const float log_floor = static_cast<float>(std::log(o.floor));

  for (int64_t t = 0; t < out.frames; ++t) {
    const float* s = x.data() + t * hop;
    for (int64_t i = 0; i < win; ++i) frame[i] = s[i] * window[static_cast<size_t>(i)];
    fftwf_execute_dft_r2c(plan, frame.get(), spectrum.get());
    for (int k = 0; k < freqs; ++k)
      power[static_cast<size_t>(k)] =
          spectrum[k][0] * spectrum[k][0] + spectrum[k][1] * spectrum[k][1];
    float* row = out.data.data() + t * out.bins;
    for (size_t m = 0; m < filters.size(); ++m) {
      const MelFilter& f = filters[m];
      float e = 0.0f;
      for (size_t j = 0; j < f.weights.size(); ++j)
        e += f.weights[j] * power[static_cast<size_t>(f.first) + j];
      row[m] = e > o.floor ? std::log(e) : log_floor;
    }
  }
  return out;
}

Normalizer Normalizer::Fit(const std::vector<Features>& features) {
  ATTEND_CHECK(!features.empty(), "Normalizer::Fit: no features");
  std::vector<const Features*> all;
  int64_t frames = 0;
  for (size_t i = 0; i < features.size(); ++i) {
    const Features& f = features[i];
    CheckShape(f, "Normalizer::Fit");
    ATTEND_CHECK(f.bins == features[0].bins, "Normalizer::Fit: features ", i, " have ", f.bins,
                 " bins, features 0 have ", features[0].bins);
    frames += f.frames;
    all.push_back(&f);
  }
  ATTEND_CHECK(frames > 0, "Normalizer::Fit: the ", features.size(), " features hold no frames");
  return Statistics(all, features[0].bins);
}

void Normalizer::Apply(Features& f) const {
  CheckShape(f, "Normalizer::Apply");
  ATTEND_CHECK(mean.size() == stddev.size() && static_cast<int64_t>(mean.size()) == f.bins,
               "Normalizer::Apply: features of ", f.bins, " bins, a normalizer of ", mean.size(),
               " means and ", stddev.size(), " standard deviations");
  const size_t b = mean.size();
  for (size_t j = 0; j < b; ++j)
    ATTEND_CHECK(stddev[j] > 0 && std::isfinite(stddev[j]) && std::isfinite(mean[j]),
                 "Normalizer::Apply: bin ", j, " has mean ", mean[j], " and stddev ", stddev[j]);
  for (size_t i = 0; i < f.data.size(); ++i) f.data[i] = (f.data[i] - mean[i % b]) / stddev[i % b];
}

void NormalizeUtterance(Features& f) {
  CheckShape(f, "NormalizeUtterance");
  if (f.frames == 0) return;
  Statistics({&f}, f.bins).Apply(f);
}

void SpecAugment(Features& f, const MaskOptions& options, uint64_t seed) {
  const MaskOptions& o = options;
  CheckShape(f, "SpecAugment");
  ATTEND_CHECK(o.freq_masks >= 0 && o.freq_width >= 0 && o.time_masks >= 0 && o.time_width >= 0,
               "SpecAugment: negative mask count or width (freq ", o.freq_masks, " x ",
               o.freq_width, ", time ", o.time_masks, " x ", o.time_width, ")");
  ATTEND_CHECK(o.max_time_fraction >= 0.0 && o.max_time_fraction <= 1.0,
               "SpecAugment: max_time_fraction ", o.max_time_fraction, " is outside 0 .. 1");
  if (f.frames == 0 || f.bins == 0) return;
  SplitMix64 rng(seed);
  const int64_t fmax = std::min<int64_t>(o.freq_width, f.bins);
  for (int i = 0; i < o.freq_masks; ++i) {
    const int64_t width = rng.UpTo(fmax);
    const int64_t start = rng.UpTo(f.bins - width);
    for (int64_t t = 0; t < f.frames; ++t)
      std::fill_n(f.data.begin() + t * f.bins + start, width, 0.0f);
  }
  const int64_t tmax = std::min<int64_t>(
      o.time_width, static_cast<int64_t>(std::floor(o.max_time_fraction * f.frames)));
  for (int i = 0; i < o.time_masks; ++i) {
    const int64_t width = rng.UpTo(tmax);
    const int64_t start = rng.UpTo(f.frames - width);
    std::fill_n(f.data.begin() + start * f.bins, width * f.bins, 0.0f);
  }
}

}  // namespace attend::audio
