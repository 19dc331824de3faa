// Audio for speech recognition (src/audio/): WAV files read and written with libsndfile,
// resampling with libsamplerate, log-mel filterbank features with FFTW, normalisation and
// SpecAugment-style masking, and manifests of (audio file, transcript) pairs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attend::audio {

// Mono samples in [-1, 1] at `sample_rate` Hz.
struct Waveform {
  std::vector<float> samples;
  int sample_rate = 0;
  double seconds() const {
    return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0;
  }
};

// Limits of ReadWav, WriteWav and Resample: a file longer than this, or with more frames than an
// hour at 48 kHz, is refused before anything is allocated for it, as are rates above kMaxRate.
constexpr double kMaxSeconds = 3600.0;
constexpr int64_t kMaxFrames = int64_t{3600} * 48000;
constexpr int kMaxRate = 384000;

// Reads a WAV file (PCM 8/16/24/32-bit or IEEE float, any rate, any channel count; channels are
// averaged to mono). Missing, unreadable, corrupt or truncated files (fewer frames than the
// header promises) throw attend::Error naming the file and the problem.
// Only RIFF/RIFX "WAVE" files reach libsndfile (its other formats and WAV's compressed encodings
// such as ADPCM or mu-law are refused). Integer PCM is scaled by 1/2^(bits-1); float samples are
// clipped to [-1, 1] and a NaN or infinity is an error. The data chunk's size is checked against
// the bytes present, since libsndfile quietly shortens a file cut off in the middle.
Waveform ReadWav(const std::string& path);
// The same from bytes in memory (an uploaded file); `source` names them in messages.
Waveform ReadWavBytes(const std::string& bytes, const std::string& source);
// Writes 16-bit PCM mono, atomically (a temporary file renamed into place).
// A sample x is stored as round(x * 32768) clipped to [-32768, 32767], so ReadWav gives it back
// within 1/32768 (0.5/32768 below full scale); NaN or infinity is an error.
void WriteWav(const std::string& path, const Waveform& wave);

// Resamples to `rate` Hz (libsamplerate, SRC_SINC_MEDIUM_QUALITY); a no-op copy when the rate
// already matches.
// The result has exactly round(n * rate / wave.sample_rate) samples, clipped to [-1, 1] (the
// sinc filter can overshoot a full-scale input slightly). Rates must be within libsamplerate's
// ratio range (1/256 to 256).
Waveform Resample(const Waveform& wave, int rate);

// Log-mel filterbank features: frames of `window_ms` every `hop_ms` (Hann window, zero-padded
// to `fft_size`, power spectrum), `mel_bins` triangular filters on the HTK mel scale between
// `low_hz` and `high_hz` (0 = Nyquist), natural log of max(energy, floor).
// In detail (tests/audio/logmel_reference.py computes the same with NumPy):
// - window = round(window_ms * rate / 1000) samples, hop = round(hop_ms * rate / 1000); frame t
//   is samples [t * hop, t * hop + window), no centre padding, samples taken as they are in
//   [-1, 1] (no 32768 scaling, no dithering, no pre-emphasis, no DC removal);
// - the periodic Hann window 0.5 - 0.5 cos(2 pi i / window) (torch.hann_window's default), the
//   windowed frame at the start of fft_size zeros (torch.stft instead centres a shorter window
//   in n_fft), power |X_k|^2 of the real FFT, k = 0 .. fft_size / 2;
// - mel(f) = 2595 log10(1 + f / 700); mel_bins + 2 points equally spaced in mel from low_hz to
//   high_hz; filter m rises linearly from point m to m + 1 and falls to m + 2, evaluated at the
//   FFT bins' frequencies k * rate / fft_size, unnormalised (torchaudio's melscale_fbanks with
//   norm=None, mel_scale="htk", for even fft sizes). A filter narrower than the bin spacing may
//   hold no bin and then gives log(floor) in every frame.
// The FFT is FFTW's single-precision r2c with FFTW_ESTIMATE plans (made once per size, under a
// lock; the same plan gives the same bits on every run). Options out of range (window longer
// than fft_size, low_hz >= high_hz, high_hz above Nyquist, floor <= 0, ...) throw attend::Error.
struct FeatureOptions {
  int sample_rate = 16000;
  double window_ms = 25.0, hop_ms = 10.0;
  int fft_size = 512;
  int mel_bins = 80;
  double low_hz = 20.0, high_hz = 0.0;
  // The energy of +-1 LSB noise in a mel band of 16-bit audio is about 2e-7 (log -15.4): below it
  // is quantisation, not sound. A lower floor (torchaudio's 1e-10) puts digital silence, which
  // synthesised and edited audio is full of, at log -23, far below any speech, and per-utterance
  // normalisation then spends most of each bin's range on silence against sound.
  double floor = 1e-7;
};

// Features of one waveform (resampled first when its rate differs): row-major [frames, mel_bins]
// with frames = 1 + (samples - window) / hop (0 when shorter than one window).
struct Features {
  std::vector<float> data;
  int64_t frames = 0, bins = 0;
};
Features LogMel(const Waveform& wave, const FeatureOptions& options);

// Per-bin mean and standard deviation, over one utterance or a whole training set.
// The population standard deviation (divided by the number of frames); a bin with stddev zero
// (a constant bin, such as one at the floor) gets 1, so it is only shifted.
struct Normalizer {
  std::vector<float> mean, stddev;  // [bins]
  static Normalizer Fit(const std::vector<Features>& features);
  void Apply(Features& f) const;  // (x - mean) / stddev
};
void NormalizeUtterance(Features& f);  // each bin to zero mean, unit variance over its frames

// SpecAugment-style masking (Park et al. 2019): `freq_masks` bands of up to `freq_width` bins and
// `time_masks` spans of up to `time_width` frames (at most `max_time_fraction` of the frames)
// set to zero (the mean after normalisation). Deterministic in `seed`.
// Each mask draws its width uniformly from 0 .. the limit (inclusive; the limit is min(freq_width,
// bins), or min(time_width, floor(max_time_fraction * frames)) for each time mask, as the
// paper's p) and then its start uniformly among the positions where it fits; masks may overlap.
// The generator is splitmix64 seeded with `seed`: the masks depend only on the seed, the options
// and the shape, on every platform.
struct MaskOptions {
  int freq_masks = 2, freq_width = 10;
  int time_masks = 2, time_width = 20;
  double max_time_fraction = 0.2;
};
void SpecAugment(Features& f, const MaskOptions& options, uint64_t seed);

// A manifest: one utterance per line, "path<TAB>transcript"; relative paths are relative to the
// manifest's directory. Empty lines are errors; every error names the file and line.
// Also errors: a line without a TAB or with more than one, an empty path, a transcript that is
// empty or all spaces or not valid UTF-8, a line over 1 MiB, a file with no lines. A "\r" before
// "\n" and a UTF-8 byte-order mark are dropped. The audio files themselves are not opened.
struct Utterance {
  std::string path, transcript;
  int64_t line = 0;
};
std::vector<Utterance> ReadManifest(const std::string& path);

}  // namespace attend::audio
