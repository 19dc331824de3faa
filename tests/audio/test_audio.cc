// Tests of the audio front end (src/audio/): WAV reading of every encoding we accept (files built
// byte by byte here, independently of libsndfile) and each error, WriteWav round trips,
// resampling, log-mel features against a NumPy reference (tests/audio/logmel_reference.py),
// normalisation, SpecAugment and manifests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attend/audio.h"
#include "attend/error.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::audio {
namespace {

namespace fs = std::filesystem;
using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::ShellQuote;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using attend::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

// ---- WAV files written by hand ----

void Put16(std::string& s, uint32_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>((v >> 8) & 0xff);
}
void Put32(std::string& s, uint32_t v) {
  Put16(s, v & 0xffff);
  Put16(s, v >> 16);
}

struct WavSpec {
  uint16_t format = 1;  // 1 PCM, 3 IEEE float, anything else unsupported
  int channels = 1, rate = 16000, bits = 16;
  bool extensible = false;  // WAVE_FORMAT_EXTENSIBLE, `format` going into the subformat GUID
};

// A little-endian RIFF/WAVE file: "fmt " (16 bytes, or 40 when extensible), then "data" holding
// `data`, whose size field says `data.size() + extra_claimed`.
std::string MakeWav(const WavSpec& w, const std::string& data, uint32_t extra_claimed = 0) {
  std::string fmt;
  Put16(fmt, w.extensible ? 0xFFFE : w.format);
  Put16(fmt, static_cast<uint32_t>(w.channels));
  Put32(fmt, static_cast<uint32_t>(w.rate));
  const int block = w.channels * w.bits / 8;
  Put32(fmt, static_cast<uint32_t>(w.rate * block));
  Put16(fmt, static_cast<uint32_t>(block));
  Put16(fmt, static_cast<uint32_t>(w.bits));
  if (w.extensible) {
    Put16(fmt, 22);
    Put16(fmt, static_cast<uint32_t>(w.bits));  // valid bits
    Put32(fmt, w.channels == 2 ? 0x3 : 0x4);    // speaker mask
    Put16(fmt, w.format);                       // the GUID: format, then the fixed tail
    fmt += std::string("\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71", 14);
  }
  std::string body = "WAVE";
  body += "fmt ";
  Put32(body, static_cast<uint32_t>(fmt.size()));
  body += fmt;
  body += "data";
  Put32(body, static_cast<uint32_t>(data.size()) + extra_claimed);
  body += data;
  if (data.size() % 2 == 1) body += '\0';
  std::string file = "RIFF";
  Put32(file, static_cast<uint32_t>(body.size()));
  return file + body;
}

std::string Pcm16(const std::vector<int>& values) {
  std::string s;
  for (int v : values) Put16(s, static_cast<uint32_t>(v));
  return s;
}

std::string Floats(const std::vector<float>& values) {
  std::string s(values.size() * 4, '\0');
  std::memcpy(s.data(), values.data(), s.size());
  return s;
}

Waveform Sine(double hz, int rate, double seconds, double amplitude = 0.5) {
  Waveform w;
  w.sample_rate = rate;
  const int64_t n = std::llround(seconds * rate);
  for (int64_t i = 0; i < n; ++i)
    w.samples.push_back(
        static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * hz * i / rate)));
  return w;
}

// ---- WAV ----

TEST(AudioWav, RoundTrip16BitWithinOneStep) {
  TempDir dir;
  Waveform w;
  w.sample_rate = 22050;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  w.samples = {0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 1e-6f, 0.99999f};
  for (int i = 0; i < 5000; ++i) w.samples.push_back(u(rng));
  WriteWav(dir / "a.wav", w);

  const std::string bytes = ReadFile(dir / "a.wav");
  ASSERT_EQ(bytes.size(), 44 + 2 * w.samples.size());  // the canonical header, 16-bit mono
  EXPECT_EQ(bytes.substr(0, 4), "RIFF");
  EXPECT_EQ(bytes[20], 1);  // PCM
  EXPECT_EQ(bytes[22], 1);  // mono
  EXPECT_EQ(bytes[34], 16);
  // Only the file itself: the temporary was renamed into place.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);

  const Waveform r = ReadWav(dir / "a.wav");
  EXPECT_EQ(r.sample_rate, 22050);
  ASSERT_EQ(r.samples.size(), w.samples.size());
  for (size_t i = 0; i < w.samples.size(); ++i)
    ASSERT_NEAR(r.samples[i], w.samples[i], 1.0 / 32768) << "sample " << i;
  EXPECT_EQ(r.samples[1], 32767.0f / 32768);  // full scale clips to the largest code
  EXPECT_EQ(r.samples[2], -1.0f);

  // And from bytes, as an upload.
  const Waveform m = ReadWavBytes(bytes, "upload");
  EXPECT_EQ(m.samples, r.samples);
  EXPECT_EQ(m.sample_rate, r.sample_rate);
  EXPECT_NEAR(m.seconds(), 5007.0 / 22050, 1e-12);
}

TEST(AudioWav, EmptyWaveformRoundTrips) {
  TempDir dir;
  WriteWav(dir / "empty.wav", Waveform{{}, 8000});
  const Waveform r = ReadWav(dir / "empty.wav");
  EXPECT_TRUE(r.samples.empty());
  EXPECT_EQ(r.sample_rate, 8000);
}

TEST(AudioWav, ReadsEveryEncoding) {
  // 8-bit PCM is unsigned, 128 the zero.
  WavSpec u8;
  u8.bits = 8;
  Waveform w = ReadWavBytes(MakeWav(u8, std::string("\x00\x80\xff\x40", 4)), "u8");
  EXPECT_EQ(w.samples, (std::vector<float>{-1.0f, 0.0f, 127.0f / 128, -0.5f}));

  // 24-bit, little-endian two's complement.
  WavSpec s24;
  s24.bits = 24;
  w = ReadWavBytes(MakeWav(s24, std::string("\x00\x00\x40\x00\x00\x80\xff\xff\xff", 9)), "s24");
  EXPECT_EQ(w.samples, (std::vector<float>{0.5f, -1.0f, -1.0f / 8388608}));

  // 32-bit integer.
  WavSpec s32;
  s32.bits = 32;
  std::string d;
  Put32(d, 0x40000000u);
  Put32(d, 0xC0000000u);
  w = ReadWavBytes(MakeWav(s32, d), "s32");
  EXPECT_EQ(w.samples, (std::vector<float>{0.5f, -0.5f}));

  // IEEE float: values as written, beyond full scale clipped.
  WavSpec f32;
  f32.format = 3;
  f32.bits = 32;
  f32.rate = 44100;
  w = ReadWavBytes(MakeWav(f32, Floats({0.25f, -0.125f, 1.5f, -2.0f, 0.3f})), "f32");
  EXPECT_EQ(w.sample_rate, 44100);
  EXPECT_EQ(w.samples, (std::vector<float>{0.25f, -0.125f, 1.0f, -1.0f, 0.3f}));

  // 64-bit float.
  WavSpec f64 = f32;
  f64.bits = 64;
  const double doubles[] = {0.75, -0.0625};
  w = ReadWavBytes(MakeWav(f64, std::string(reinterpret_cast<const char*>(doubles), 16)), "f64");
  EXPECT_EQ(w.samples, (std::vector<float>{0.75f, -0.0625f}));

  // Stereo 16-bit: the channels are averaged.
  WavSpec stereo;
  stereo.channels = 2;
  w = ReadWavBytes(MakeWav(stereo, Pcm16({16384, 0, -8192, -8192, 32767, -32768})), "stereo");
  EXPECT_EQ(w.samples, (std::vector<float>{0.25f, -0.25f, -0.5f / 32768}));

  // WAVE_FORMAT_EXTENSIBLE, 24-bit stereo and float mono.
  WavSpec ext = s24;
  ext.channels = 2;
  ext.extensible = true;
  w = ReadWavBytes(MakeWav(ext, std::string("\x00\x00\x40\x00\x00\x20", 6)), "ext24");
  EXPECT_EQ(w.samples, (std::vector<float>{0.375f}));
  WavSpec extf = f32;
  extf.extensible = true;
  w = ReadWavBytes(MakeWav(extf, Floats({0.5f})), "extf");
  EXPECT_EQ(w.samples, (std::vector<float>{0.5f}));

  // Three channels, from a file.
  TempDir dir;
  WavSpec three;
  three.channels = 3;
  WriteFile(dir / "three.wav", MakeWav(three, Pcm16({3 * 1024, 3 * 2048, 3 * 4096})));
  w = ReadWav(dir / "three.wav");
  EXPECT_EQ(w.samples, (std::vector<float>{7.0f * 1024 / 32768}));
}

// The seeds of fuzz/fuzz_wav.cc (fuzz/make_seeds.sh): chunk layouts beside the canonical one.
TEST(AudioWav, ReadsTheFuzzSeeds) {
  const std::string dir = std::string(ATTEND_SOURCE_DIR) + "/fuzz/corpus/wav/";
  const auto read = [&](const std::string& name) { return ReadWav(dir + name); };
  EXPECT_EQ(read("u8-stereo.wav").samples,
            (std::vector<float>{0.0f, -1.0f / 256, 0.0f, -1.0f / 256}));
  // A fact chunk between fmt and data.
  EXPECT_EQ(read("float-fact.wav").samples, (std::vector<float>{0.0f, 0.5f, -0.5f, 1.0f}));
  // An odd-sized chunk and its pad byte before the data.
  const Waveform ext = read("s24-extensible-junk.wav");
  EXPECT_EQ(ext.sample_rate, 48000);
  EXPECT_EQ(ext.samples, (std::vector<float>{0.0f, 0.0f}));
  // A data size of 0xFFFFFFFF (written to a pipe): the data runs to the end of the file.
  const std::vector<float> pcm = {0.0f, 1000.0f / 32768, -1000.0f / 32768};
  const Waveform streamed = read("s16-streamed.wav");
  EXPECT_EQ(streamed.sample_rate, 22050);
  EXPECT_EQ(streamed.samples, (std::vector<float>{pcm[0], pcm[1], pcm[2], 32767.0f / 32768}));
  // Big-endian RIFX.
  EXPECT_EQ(read("rifx-s16.wav").samples, (std::vector<float>{pcm[0], pcm[1], pcm[2], -1.0f}));
  // make_fuzz_seeds' WriteWav output.
  const Waveform tone = read("pcm16-mono.wav");
  EXPECT_EQ(tone.sample_rate, 16000);
  ASSERT_EQ(tone.samples.size(), 800u);
  EXPECT_NEAR(tone.samples[10], 0.5 * std::sin(2 * std::numbers::pi * 440 * 10 / 16000),
              1.0 / 32768);
}

TEST(AudioWav, ReadErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  const std::string missing = dir / "missing.wav";
  EXPECT_THAT(ThrownMessage([&] { ReadWav(missing); }),
              AllOf(HasSubstr(missing), HasSubstr("No such file")));
  EXPECT_THAT(ThrownMessage([&] { ReadWav(dir.path().string()); }), HasSubstr("is a directory"));

  const std::string garbage = dir / "garbage.wav";
  WriteFile(garbage, "this is not audio at all, just some text that happens to be here");
  EXPECT_THAT(ThrownMessage([&] { ReadWav(garbage); }),
              AllOf(HasSubstr(garbage), HasSubstr("not a WAV file")));
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes("", "empty upload"); }),
              AllOf(HasSubstr("empty upload"), HasSubstr("not a WAV file")));
  // FLAC, AIFF and the rest that libsndfile knows are not WAV.
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes("fLaC" + std::string(40, '\0'), "x"); }),
              HasSubstr("not a WAV file"));

  // A real WAV cut in half: the data chunk promises more than is there.
  Waveform sine = Sine(440, 16000, 0.5);
  WriteWav(dir / "whole.wav", sine);
  const std::string whole = ReadFile(dir / "whole.wav");
  const std::string half = dir / "half.wav";
  WriteFile(half, whole.substr(0, whole.size() / 2));
  EXPECT_THAT(ThrownMessage([&] { ReadWav(half); }),
              AllOf(HasSubstr(half), HasSubstr("truncated"), HasSubstr("promises 16000 bytes")));
  // A header claiming more data than the (complete) samples that follow it.
  const std::string longer = dir / "claims-more.wav";
  WriteFile(longer, MakeWav(WavSpec{}, Pcm16({1, 2, 3, 4}), 1000));
  EXPECT_THAT(ThrownMessage([&] { ReadWav(longer); }),
              AllOf(HasSubstr(longer), HasSubstr("truncated"), HasSubstr("promises 1008 bytes"),
                    HasSubstr("only 8 are present")));
  // Cut inside the header.
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(whole.substr(0, 30), "cut.wav"); }),
              AllOf(HasSubstr("cut.wav"), HasSubstr("corrupt WAV header")));

  WavSpec zero_channels;
  zero_channels.channels = 0;
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(MakeWav(zero_channels, Pcm16({1})), "a.wav"); }),
              AllOf(HasSubstr("a.wav"), HasSubstr("0 channels")));
  WavSpec zero_rate;
  zero_rate.rate = 0;
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(MakeWav(zero_rate, Pcm16({1})), "b.wav"); }),
              AllOf(HasSubstr("b.wav"), HasSubstr("sample rate 0")));
  WavSpec fast;
  fast.rate = 1000000;
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(MakeWav(fast, Pcm16({1})), "c.wav"); }),
              AllOf(HasSubstr("c.wav"), HasSubstr("over the limit of 384000 Hz")));
  WavSpec mulaw;
  mulaw.format = 7;
  mulaw.bits = 8;
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(MakeWav(mulaw, "abcd"), "d.wav"); }),
              AllOf(HasSubstr("d.wav"), HasSubstr("unsupported WAV encoding (format 0x7")));
  WavSpec twelve;
  twelve.bits = 12;
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(MakeWav(twelve, "abcd"), "e.wav"); }),
              HasSubstr("unsupported WAV encoding"));

  // No data chunk at all.
  std::string no_data = MakeWav(WavSpec{}, "");
  no_data.resize(no_data.size() - 8);
  EXPECT_THAT(ThrownMessage([&] { ReadWavBytes(no_data, "f.wav"); }),
              AllOf(HasSubstr("f.wav"), HasSubstr("no 'data' chunk")));

  // Over an hour (one hour and a second at 1 Hz).
  WavSpec slow;
  slow.rate = 1;
  EXPECT_THAT(
      ThrownMessage([&] { ReadWavBytes(MakeWav(slow, Pcm16(std::vector<int>(3601))), "g.wav"); }),
      AllOf(HasSubstr("g.wav"), HasSubstr("3601 frames"), HasSubstr("over the limit of one hour")));
  EXPECT_EQ(ReadWavBytes(MakeWav(slow, Pcm16(std::vector<int>(3600))), "h.wav").samples.size(),
            3600u);

  // Float NaN.
  WavSpec f32;
  f32.format = 3;
  f32.bits = 32;
  EXPECT_THAT(ThrownMessage([&] {
                ReadWavBytes(MakeWav(f32, Floats({0.0f, std::nanf("")})), "i.wav");
              }),
              AllOf(HasSubstr("i.wav"), HasSubstr("sample 1 is not a finite number")));
}

TEST(AudioWav, WriteErrors) {
  TempDir dir;
  EXPECT_THAT(ThrownMessage([&] {
                WriteWav(dir / "a.wav", Waveform{{0.0f}, 0});
              }),
              AllOf(HasSubstr("a.wav"), HasSubstr("sample rate 0")));
  EXPECT_THAT(ThrownMessage([&] {
                WriteWav(dir / "b.wav", Waveform{{0.0f, INFINITY}, 16000});
              }),
              AllOf(HasSubstr("b.wav"), HasSubstr("sample 1 is not a finite number")));
  EXPECT_THAT(ThrownMessage([&] { WriteWav(dir / "no/such/dir/c.wav", Sine(1, 100, 1)); }),
              HasSubstr("no/such/dir/c.wav"));
  EXPECT_FALSE(fs::exists(dir / "a.wav"));
  EXPECT_FALSE(fs::exists(dir / "b.wav"));
}

// ---- resampling ----

// The frequency (in whole Hz between lo and hi) where a plain DFT of `x` peaks.
int PeakHz(const std::vector<float>& x, int rate, int lo, int hi) {
  int best = lo;
  double best_power = -1;
  for (int hz = lo; hz <= hi; ++hz) {
    double re = 0, im = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double phase = 2 * std::numbers::pi * hz * static_cast<double>(i) / rate;
      re += x[i] * std::cos(phase);
      im -= x[i] * std::sin(phase);
    }
    if (re * re + im * im > best_power) {
      best_power = re * re + im * im;
      best = hz;
    }
  }
  return best;
}

TEST(AudioResample, SineKeepsItsFrequencyAndLength) {
  const Waveform in = Sine(440, 22050, 1.0);
  const Waveform out = Resample(in, 16000);
  EXPECT_EQ(out.sample_rate, 16000);
  ASSERT_EQ(out.samples.size(), 16000u);
  EXPECT_EQ(PeakHz(out.samples, 16000, 400, 480), 440);
  // Away from the ends (where the filter sees the signal stop) it is the same sine sampled at
  // 16 kHz.
  const Waveform ideal = Sine(440, 16000, 1.0);
  double worst = 0;
  for (size_t i = 200; i + 200 < out.samples.size(); ++i)
    worst = std::max(worst, std::abs(double{out.samples[i]} - ideal.samples[i]));
  EXPECT_LT(worst, 2e-3);

  // The length follows the ratio: round(n * 16000 / 44100).
  EXPECT_EQ(Resample(Sine(440, 44100, 1000.0 / 44100), 16000).samples.size(), 363u);
  EXPECT_EQ(Resample(Sine(440, 8000, 0.5), 16000).samples.size(), 8000u);
  EXPECT_TRUE(Resample(Waveform{{}, 8000}, 16000).samples.empty());
}

TEST(AudioResample, SameRateIsIdentityAndErrors) {
  const Waveform in = Sine(300, 16000, 0.1);
  const Waveform out = Resample(in, 16000);
  EXPECT_EQ(out.samples, in.samples);
  EXPECT_EQ(out.sample_rate, 16000);
  EXPECT_THAT(ThrownMessage([&] {
                Resample(Waveform{{0.0f}, 0}, 16000);
              }),
              HasSubstr("sample rate 0"));
  EXPECT_THAT(ThrownMessage([&] { Resample(in, 0); }), HasSubstr("target rate 0"));
  EXPECT_THAT(ThrownMessage([&] {
                Resample(Waveform{{0.0f}, 100}, 384000);
              }),
              HasSubstr("ratio of 3840"));
}

// ---- log-mel features ----

// A deterministic test signal: 0.1 s of silence (energies exactly 0, so the floor), then a chirp
// from 100 Hz to 7 kHz plus white noise (every band has energy well above the floor).
Waveform ChirpAndNoise(int rate, double seconds) {
  Waveform w;
  w.sample_rate = rate;
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> noise(-0.02, 0.02);
  const int64_t n = std::llround(seconds * rate), silence = rate / 10;
  const double f0 = 100, f1 = std::min(7000.0, 0.45 * rate), duration = seconds - 0.1;
  for (int64_t i = 0; i < n; ++i) {
    if (i < silence) {
      w.samples.push_back(0.0f);
      continue;
    }
    const double t = static_cast<double>(i - silence) / rate;
    const double phase = 2 * std::numbers::pi * (f0 * t + (f1 - f0) * t * t / (2 * duration));
    w.samples.push_back(static_cast<float>(0.6 * std::sin(phase) + noise(rng)));
  }
  return w;
}

struct Reference {
  int64_t frames = 0, bins = 0;
  std::vector<double> values;
};

// Runs tests/audio/logmel_reference.py on `wav` with `args`.
Reference RunReference(const TempDir& dir, const std::string& wav, const std::string& args) {
  const std::string script = std::string(ATTEND_SOURCE_DIR) + "/tests/audio/logmel_reference.py";
  const std::string out = dir / "reference.bin";
  const auto r = RunCommand("/usr/bin/python3 " + ShellQuote(script) + " --wav " + ShellQuote(wav) +
                            " --out " + ShellQuote(out) + " " + args);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  Reference ref;
  const std::string bytes = ReadFile(out);
  if (bytes.size() < 16) return ref;
  std::memcpy(&ref.frames, bytes.data(), 8);
  std::memcpy(&ref.bins, bytes.data() + 8, 8);
  ref.values.resize((bytes.size() - 16) / 8);
  std::memcpy(ref.values.data(), bytes.data() + 16, ref.values.size() * 8);
  EXPECT_EQ(ref.values.size(), static_cast<size_t>(ref.frames * ref.bins));
  return ref;
}

// Tolerance: our FFT and sums are float32 (FFTW r2c), NumPy's float64. A float32 FFT's error is
// about 1e-7 of the frame's largest coefficients, so a band far weaker than the frame's loudest
// (a low band of noise while the chirp is at 6 kHz) carries a larger relative error: measured
// at most 3.4e-4 in log energy (a band at e^-12 beside a chirp at e^2), 1e-5 elsewhere. 1e-3
// absolute leaves margin and still catches real differences (another window, filter edge or
// framing moves values by 1e-2 or more). Silent frames must be log(floor) on both sides.
void CompareWithReference(const FeatureOptions& o, const std::string& args, int64_t* floor_values,
                          double* worst) {
  TempDir dir;
  const std::string wav = dir / "chirp.wav";
  WriteWav(wav, ChirpAndNoise(o.sample_rate, 1.3));
  const Waveform w = ReadWav(wav);  // the 16-bit samples the script reads
  const Features f = LogMel(w, o);
  const Reference ref = RunReference(dir, wav, args);
  ASSERT_EQ(f.frames, ref.frames);
  ASSERT_EQ(f.bins, ref.bins);
  ASSERT_EQ(f.data.size(), ref.values.size());
  const double log_floor = std::log(o.floor);
  *floor_values = 0;
  *worst = 0;
  for (size_t i = 0; i < f.data.size(); ++i) {
    const double want = ref.values[i];
    if (want <= log_floor + 1e-9) {
      ++*floor_values;
      ASSERT_NEAR(f.data[i], log_floor, 1e-5) << "frame " << i / f.bins << " bin " << i % f.bins;
      continue;
    }
    *worst = std::max(*worst, std::abs(f.data[i] - want));
    ASSERT_NEAR(f.data[i], want, 1e-3) << "frame " << i / f.bins << " bin " << i % f.bins;
  }
}

TEST(AudioLogMel, MatchesNumpyReference) {
  FeatureOptions o;  // 16 kHz, 25/10 ms, fft 512, 80 bins, 20 Hz .. Nyquist
  int64_t at_floor = 0;
  double worst = 0;
  CompareWithReference(o, "", &at_floor, &worst);
  EXPECT_GT(at_floor, 5 * 80);  // the silent frames
  std::printf("log-mel vs NumPy (defaults): worst |difference| %.2e, %lld values at the floor\n",
              worst, static_cast<long long>(at_floor));
}

TEST(AudioLogMel, MatchesNumpyReferenceOtherOptions) {
  // A size that is not a power of two, fewer bins, a band limit and another floor.
  FeatureOptions o;
  o.sample_rate = 8000;
  o.window_ms = 30;  // 240 samples
  o.hop_ms = 12.5;   // 100
  o.fft_size = 300;
  o.mel_bins = 23;
  o.low_hz = 0;
  o.high_hz = 3800;
  o.floor = 1e-6;
  int64_t at_floor = 0;
  double worst = 0;
  CompareWithReference(
      o, "--window-ms 30 --hop-ms 12.5 --fft 300 --mels 23 --low 0 --high 3800 --floor 1e-6",
      &at_floor, &worst);
  EXPECT_GT(at_floor, 0);
  std::printf("log-mel vs NumPy (8 kHz, fft 300): worst |difference| %.2e\n", worst);
}

TEST(AudioLogMel, FrameCountAndShortInput) {
  FeatureOptions o;
  for (int64_t n : {0, 1, 399, 400, 401, 559, 560, 561, 16000}) {
    Waveform w;
    w.sample_rate = 16000;
    w.samples.assign(static_cast<size_t>(n), 0.1f);
    const Features f = LogMel(w, o);
    const int64_t want = n < 400 ? 0 : 1 + (n - 400) / 160;
    EXPECT_EQ(f.frames, want) << n << " samples";
    EXPECT_EQ(f.bins, 80);
    EXPECT_EQ(f.data.size(), static_cast<size_t>(want * 80));
  }
}

TEST(AudioLogMel, SinePeaksInItsBandAndOtherRatesAreResampled) {
  FeatureOptions o;
  const Features f = LogMel(Sine(1000, 16000, 0.5), o);
  ASSERT_EQ(f.frames, 48);
  // The filter whose centre is nearest 1 kHz, from the same mel points.
  const auto mel = [](double hz) { return 2595 * std::log10(1 + hz / 700); };
  int nearest = 0;
  for (int m = 0; m < 80; ++m) {
    const double centre = mel(20) + (mel(8000) - mel(20)) * (m + 1) / 81;
    const double best = mel(20) + (mel(8000) - mel(20)) * (nearest + 1) / 81;
    if (std::abs(centre - mel(1000)) < std::abs(best - mel(1000))) nearest = m;
  }
  for (int64_t t = 0; t < f.frames; ++t) {
    const float* row = f.data.data() + t * 80;
    EXPECT_EQ(std::max_element(row, row + 80) - row, nearest) << "frame " << t;
  }

  // A waveform at 8 kHz is resampled first: the same as resampling it ourselves.
  const Waveform low = Sine(1000, 8000, 0.5);
  const Features a = LogMel(low, o), b = LogMel(Resample(low, 16000), o);
  EXPECT_EQ(a.frames, 48);
  EXPECT_EQ(a.data, b.data);
}

// Plans are made under a lock and shared: threads computing features of several FFT sizes at
// once get exactly what one thread gets.
TEST(AudioLogMel, ThreadsGiveTheSameFeatures) {
  const Waveform w = ChirpAndNoise(16000, 0.5);
  std::vector<FeatureOptions> options(4);
  options[1].fft_size = 1024;
  options[2].fft_size = 480;
  options[3].fft_size = 768;
  std::vector<Features> alone;
  for (const FeatureOptions& o : options) alone.push_back(LogMel(w, o));
  std::vector<std::vector<Features>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      for (int r = 0; r < 3; ++r) got[i].push_back(LogMel(w, options[(i + r) % options.size()]));
    });
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < got.size(); ++i)
    for (int r = 0; r < 3; ++r)
      EXPECT_EQ(got[i][r].data, alone[(i + r) % options.size()].data) << "thread " << i;
}

TEST(AudioLogMel, OptionErrors) {
  const Waveform w = Sine(100, 16000, 0.1);
  const auto error = [&](auto change) {
    FeatureOptions o;
    change(o);
    return ThrownMessage([&] { LogMel(w, o); });
  };
  EXPECT_THAT(error([](FeatureOptions& o) { o.fft_size = 256; }),
              AllOf(HasSubstr("400 samples"), HasSubstr("longer than fft_size 256")));
  EXPECT_THAT(error([](FeatureOptions& o) { o.high_hz = 9000; }), HasSubstr("Nyquist"));
  EXPECT_THAT(error([](FeatureOptions& o) { o.low_hz = 8000; }), HasSubstr("low_hz"));
  EXPECT_THAT(error([](FeatureOptions& o) { o.floor = 0; }), HasSubstr("floor"));
  EXPECT_THAT(error([](FeatureOptions& o) { o.hop_ms = 0; }), HasSubstr("hop_ms"));
  EXPECT_THAT(error([](FeatureOptions& o) { o.hop_ms = 0.01; }), HasSubstr("less than one sample"));
  EXPECT_THAT(error([](FeatureOptions& o) { o.mel_bins = 0; }), HasSubstr("mel_bins"));
  EXPECT_THAT(error([](FeatureOptions& o) { o.sample_rate = 0; }), HasSubstr("sample_rate"));
  Waveform nan = w;
  nan.samples[7] = std::nanf("");
  EXPECT_THAT(ThrownMessage([&] { LogMel(nan, FeatureOptions{}); }),
              HasSubstr("sample 7 is not a finite number"));
}

// ---- normalisation ----

Features RandomFeatures(int64_t frames, int64_t bins, uint32_t seed, float offset, float scale) {
  Features f;
  f.frames = frames;
  f.bins = bins;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int64_t i = 0; i < frames * bins; ++i)
    f.data.push_back(offset + scale * g(rng) + static_cast<float>(i % bins));
  return f;
}

// Mean and population stddev of bin `j` over the frames of every features.
std::pair<double, double> BinStats(const std::vector<Features>& all, int64_t j) {
  double sum = 0, sq = 0;
  int64_t n = 0;
  for (const Features& f : all)
    for (int64_t t = 0; t < f.frames; ++t) {
      sum += f.data[t * f.bins + j];
      ++n;
    }
  const double mean = sum / n;
  for (const Features& f : all)
    for (int64_t t = 0; t < f.frames; ++t) sq += std::pow(f.data[t * f.bins + j] - mean, 2);
  return {mean, std::sqrt(sq / n)};
}

TEST(AudioNormalize, FitOverASetThenApply) {
  std::vector<Features> set = {RandomFeatures(50, 6, 1, -8.0f, 2.0f),
                               RandomFeatures(30, 6, 2, -5.0f, 3.0f), Features{{}, 0, 6}};
  // Bin 5 constant: its stddev is 0 and becomes 1.
  for (Features& f : set)
    for (int64_t t = 0; t < f.frames; ++t) f.data[t * 6 + 5] = -23.0f;
  const Normalizer n = Normalizer::Fit(set);
  ASSERT_EQ(n.mean.size(), 6u);
  EXPECT_FLOAT_EQ(n.mean[5], -23.0f);
  EXPECT_EQ(n.stddev[5], 1.0f);
  for (Features& f : set) n.Apply(f);
  for (int64_t j = 0; j < 5; ++j) {
    const auto [mean, sd] = BinStats(set, j);
    EXPECT_NEAR(mean, 0.0, 1e-5) << "bin " << j;
    EXPECT_NEAR(sd, 1.0, 1e-5) << "bin " << j;
  }
  for (int64_t t = 0; t < set[0].frames; ++t) EXPECT_EQ(set[0].data[t * 6 + 5], 0.0f);

  Features wrong = RandomFeatures(4, 5, 3, 0, 1);
  EXPECT_THAT(ThrownMessage([&] { n.Apply(wrong); }),
              AllOf(HasSubstr("5 bins"), HasSubstr("6 means")));
  EXPECT_THAT(ThrownMessage([&] { Normalizer::Fit({}); }), HasSubstr("no features"));
  EXPECT_THAT(ThrownMessage([&] {
                Normalizer::Fit({set[0], wrong});
              }),
              HasSubstr("features 1 have 5 bins"));
  EXPECT_THAT(ThrownMessage([&] {
                Normalizer::Fit({Features{{}, 0, 6}});
              }),
              HasSubstr("hold no frames"));
  Features bad = set[0];
  bad.data.pop_back();
  EXPECT_THAT(ThrownMessage([&] { n.Apply(bad); }), HasSubstr("50 frames x 6 bins hold 299"));
}

TEST(AudioNormalize, Utterance) {
  Features f = RandomFeatures(80, 10, 4, -12.0f, 4.0f);
  NormalizeUtterance(f);
  for (int64_t j = 0; j < 10; ++j) {
    const auto [mean, sd] = BinStats({f}, j);
    EXPECT_NEAR(mean, 0.0, 1e-5) << "bin " << j;
    EXPECT_NEAR(sd, 1.0, 1e-5) << "bin " << j;
  }
  Features empty{{}, 0, 10};
  NormalizeUtterance(empty);  // nothing to do
  EXPECT_TRUE(empty.data.empty());
}

// ---- SpecAugment ----

Features Ones(int64_t frames, int64_t bins) {
  return Features{std::vector<float>(frames * bins, 1.0f), frames, bins};
}

// Which bins are zero in every frame and which frames are zero in every bin.
std::pair<std::vector<bool>, std::vector<bool>> Masked(const Features& f) {
  std::vector<bool> bins(f.bins, true), frames(f.frames, true);
  for (int64_t t = 0; t < f.frames; ++t)
    for (int64_t j = 0; j < f.bins; ++j) {
      const bool zero = f.data[t * f.bins + j] == 0.0f;
      if (!zero) {
        bins[j] = false;
        frames[t] = false;
      }
    }
  return {bins, frames};
}

// The lengths of the runs of `true`.
std::vector<int64_t> Runs(const std::vector<bool>& v) {
  std::vector<int64_t> runs;
  int64_t run = 0;
  for (bool b : v) {
    if (b) {
      ++run;
    } else if (run > 0) {
      runs.push_back(run);
      run = 0;
    }
  }
  if (run > 0) runs.push_back(run);
  return runs;
}

TEST(AudioSpecAugment, DeterministicBySeedAndDifferentSeedsDiffer) {
  const MaskOptions o;
  Features a = Ones(200, 80), b = Ones(200, 80), c = Ones(200, 80);
  SpecAugment(a, o, 42);
  SpecAugment(b, o, 42);
  SpecAugment(c, o, 43);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NE(a.data, c.data);
  int distinct = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Features d = Ones(200, 80);
    SpecAugment(d, o, seed);
    distinct += d.data != a.data;
  }
  EXPECT_GE(distinct, 19);
}

TEST(AudioSpecAugment, MasksStayWithinTheirLimits) {
  // One mask of each kind at a time: a single run of masked bins or frames, at most the limit.
  int64_t widest_freq = 0, widest_time = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    MaskOptions freq{1, 10, 0, 0, 0.2};
    Features f = Ones(50, 80);
    SpecAugment(f, freq, seed);
    const auto [bins, frames] = Masked(f);
    const auto runs = Runs(bins);
    ASSERT_LE(runs.size(), 1u);
    if (!runs.empty()) {
      ASSERT_LE(runs[0], 10);
      widest_freq = std::max(widest_freq, runs[0]);
    }
    // Every frame keeps its unmasked bins.
    ASSERT_EQ(std::count(f.data.begin(), f.data.end(), 0.0f),
              50 * std::count(bins.begin(), bins.end(), true));

    // 100 frames at max_time_fraction 0.07: at most 7 frames, below time_width 20.
    MaskOptions time{0, 0, 1, 20, 0.07};
    Features g = Ones(100, 8);
    SpecAugment(g, time, seed);
    const auto time_runs = Runs(Masked(g).second);
    ASSERT_LE(time_runs.size(), 1u);
    if (!time_runs.empty()) {
      ASSERT_LE(time_runs[0], 7);
      widest_time = std::max(widest_time, time_runs[0]);
    }
  }
  EXPECT_EQ(widest_freq, 10);  // the limits are reached
  EXPECT_EQ(widest_time, 7);

  // Defaults: at most 2 x 10 bins and 2 x min(20, 0.2 x frames) frames.
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Features f = Ones(60, 40);
    SpecAugment(f, MaskOptions{}, seed);
    const auto [bins, frames] = Masked(f);
    EXPECT_LE(std::count(bins.begin(), bins.end(), true), 20);
    EXPECT_LE(std::count(frames.begin(), frames.end(), true), 24);
  }

  // Wider than the features: clipped. No masks: unchanged. Empty features: nothing to do.
  Features narrow = Ones(10, 4);
  SpecAugment(narrow, MaskOptions{3, 100, 3, 100, 1.0}, 5);
  EXPECT_EQ(narrow.data.size(), 40u);
  Features same = Ones(10, 4);
  SpecAugment(same, MaskOptions{0, 10, 0, 10, 0.2}, 5);
  EXPECT_EQ(same.data, Ones(10, 4).data);
  Features empty{{}, 0, 80};
  SpecAugment(empty, MaskOptions{}, 1);
  EXPECT_THAT(ThrownMessage([&] {
                SpecAugment(same, MaskOptions{-1, 10, 0, 10, 0.2}, 1);
              }),
              HasSubstr("negative"));
  EXPECT_THAT(ThrownMessage([&] {
                SpecAugment(same, MaskOptions{1, 10, 1, 10, 1.5}, 1);
              }),
              HasSubstr("max_time_fraction 1.5"));
}

// ---- manifests ----

TEST(AudioManifest, ResolvesRelativePathsAgainstItsDirectory) {
  TempDir dir;
  const std::string manifest = dir / "data/train.tsv";
  WriteFile(manifest,
            "\xEF\xBB\xBF"
            "a.wav\thello world\n"
            "/abs/b.wav\tgoodbye\r\n"
            "sub/c.wav\tgr\xC3\xBC\xC3\x9F"
            "e  \n"
            "../d.wav\tlast line without newline");
  const std::vector<Utterance> u = ReadManifest(manifest);
  ASSERT_EQ(u.size(), 4u);
  const fs::path data = dir.path() / "data";
  EXPECT_EQ(u[0].path, (data / "a.wav").string());
  EXPECT_EQ(u[0].transcript, "hello world");
  EXPECT_EQ(u[0].line, 1);
  EXPECT_EQ(u[1].path, "/abs/b.wav");
  EXPECT_EQ(u[1].transcript, "goodbye");
  EXPECT_EQ(u[2].path, (data / "sub/c.wav").string());
  EXPECT_EQ(u[2].transcript,
            "gr\xC3\xBC\xC3\x9F"
            "e  ");
  EXPECT_EQ(u[3].path, (data / "../d.wav").string());
  EXPECT_EQ(u[3].line, 4);
}

TEST(AudioManifest, ErrorsNameTheFileAndLine) {
  TempDir dir;
  const std::string m = dir / "m.tsv";
  const auto error = [&](const std::string& second_line) {
    WriteFile(m, "ok.wav\tfine\n" + second_line + "\nok.wav\tfine\n");
    return ThrownMessage([&] { ReadManifest(m); });
  };
  const std::string at = m + ":2: ";
  EXPECT_THAT(error(""), HasSubstr(at + "empty line"));
  EXPECT_THAT(error("no-tab.wav hello"), HasSubstr(at + "no TAB"));
  EXPECT_THAT(error("a.wav\t"), HasSubstr(at + "empty transcript"));
  EXPECT_THAT(error("a.wav\t   "), HasSubstr(at + "empty transcript"));
  EXPECT_THAT(error("a.wav\tbad \xC3\x28 byte"),
              HasSubstr(at + "the transcript is not valid UTF-8 (byte 5"));
  EXPECT_THAT(error("a.wav\tone\ttwo"), HasSubstr(at + "more than one TAB"));
  EXPECT_THAT(error("\tno path"), HasSubstr(at + "empty audio path"));
  WriteFile(m, "a.wav\tx\n" + std::string(2 << 20, 'y') + "\n");
  EXPECT_THAT(ThrownMessage([&] { ReadManifest(m); }), HasSubstr(at + "line longer than"));

  WriteFile(m, "");
  EXPECT_THAT(ThrownMessage([&] { ReadManifest(m); }), HasSubstr(m + ": the manifest holds no"));
  const std::string missing = dir / "missing.tsv";
  EXPECT_THAT(ThrownMessage([&] { ReadManifest(missing); }),
              AllOf(HasSubstr(missing), HasSubstr("No such file")));
}

}  // namespace
}  // namespace attend::audio
