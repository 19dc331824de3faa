// Speech alignments: a rising band under a diagonal attention decodes to the laid-out size, with
// the path's dots at each token's weighted mean frame, low frequencies at the bottom, the strip
// darkest at each row's argmax and every label drawn; the last step clipped; wide inputs drawn at
// one pixel per frame; bad inputs and a missing font refused with clear messages.
// ATTEND_SPECTROGRAM_EXAMPLE=path.png keeps a copy of the main test's picture, to look at.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attend/viz.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::viz {
namespace {

using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using ::testing::HasSubstr;

struct Decoded {
  int w = 0, h = 0;
  std::vector<unsigned char> rgb;
  const unsigned char* At(int x, int y) const { return &rgb[(static_cast<size_t>(y) * w + x) * 3]; }
  int Brightness(int x, int y) const { return At(x, y)[0] + At(x, y)[1] + At(x, y)[2]; }
};

Decoded Load(const std::string& path) {
  Decoded d;
  int channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &d.w, &d.h, &channels, 3);
  EXPECT_NE(data, nullptr) << stbi_failure_reason();
  if (data != nullptr) {
    d.rgb.assign(data, data + static_cast<size_t>(d.w) * d.h * 3);
    stbi_image_free(data);
  }
  return d;
}

// Non-white pixels in a rectangle.
int Ink(const Decoded& d, int x0, int y0, int x1, int y1) {
  int n = 0;
  for (int y = std::max(0, y0); y < std::min(d.h, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(d.w, x1); ++x) n += d.At(x, y)[0] < 200;
  }
  return n;
}

void ExpectColor(const Decoded& d, int x, int y, int r, int g, int b, int tolerance,
                 const std::string& what) {
  const unsigned char* p = d.At(x, y);
  EXPECT_NEAR(p[0], r, tolerance) << what << " at " << x << "," << y;
  EXPECT_NEAR(p[1], g, tolerance) << what << " at " << x << "," << y;
  EXPECT_NEAR(p[2], b, tolerance) << what << " at " << x << "," << y;
}

// An utterance of 120 frames x 40 bins: a band of energy rising from bin 4 to bin 36, -8 elsewhere.
constexpr int64_t kFrames = 120, kBins = 40, kFramesPerStep = 4, kSteps = 30;
float BandCentre(int64_t f) { return 4.0f + 32.0f * static_cast<float>(f) / (kFrames - 1); }
std::vector<float> RisingBand() {
  std::vector<float> x(kFrames * kBins);
  for (int64_t f = 0; f < kFrames; ++f) {
    for (int64_t b = 0; b < kBins; ++b) {
      const float d = static_cast<float>(b) - BandCentre(f);
      x[f * kBins + b] = -8.0f + 10.0f * std::exp(-d * d / 8.0f);
    }
  }
  return x;
}

// Token t attends around step 1 + 3t, lopsided to the right so that the mean is not the argmax's
// centre.
std::vector<std::vector<float>> Diagonal(int64_t tokens) {
  std::vector<std::vector<float>> w(tokens, std::vector<float>(kSteps, 0.0f));
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t c = 1 + 3 * t;
    w[t][c] = 0.6f;
    if (c + 1 < kSteps) w[t][c + 1] = 0.25f;
    w[t][c - 1] = 0.1f;
    if (c + 2 < kSteps) w[t][c + 2] = 0.05f;
  }
  return w;
}

TEST(Spectrogram, BandPathStripAndLabels) {
  TempDir dir;
  const std::string path = dir / "align.png";
  const std::vector<float> features = RisingBand();
  const std::vector<std::string> labels = {"▁the", "c", "a", "t", " ", "s", "a", "t", "o", "n"};
  const int64_t T = static_cast<int64_t>(labels.size());
  const auto attention = Diagonal(T);
  const SpectrogramOptions o;
  const SpectrogramLayout L = WriteSpectrogramAlignment(path, features, kFrames, kBins, attention,
                                                        kFramesPerStep, labels, o);
  if (const char* keep = std::getenv("ATTEND_SPECTROGRAM_EXAMPLE")) {
    std::filesystem::copy_file(path, keep, std::filesystem::copy_options::overwrite_existing);
  }
  const Decoded d = Load(path);
  ASSERT_EQ(d.w, L.width);
  ASSERT_EQ(d.h, L.height);
  EXPECT_EQ(L.pixels_per_frame, o.pixels_per_frame);
  EXPECT_EQ(L.pixels_per_bin, o.pixels_per_bin);
  EXPECT_EQ(L.spectrogram_width, kFrames * o.pixels_per_frame);
  EXPECT_EQ(L.spectrogram_height, kBins * o.pixels_per_bin);
  EXPECT_EQ(L.strip_x, L.spectrogram_x);
  EXPECT_GT(L.strip_y, L.spectrogram_y + L.spectrogram_height);
  EXPECT_EQ(L.height, L.strip_y + T * L.strip_row_height + o.margin);
  // Room for the labels on the left (strip) and above (path).
  EXPECT_GT(L.spectrogram_x, o.margin + 10);
  EXPECT_GT(L.spectrogram_y, o.margin + 10);
  ASSERT_EQ(L.token_frame.size(), static_cast<size_t>(T));

  // The spectrogram: low frequencies at the bottom. The band is at the bottom on the left and at
  // the top on the right; far from it is the ramp's dark end (68, 1, 84).
  const auto bin_y = [&](int64_t b) {
    return L.spectrogram_y + static_cast<int>((kBins - 1 - b) * L.pixels_per_bin) + 1;
  };
  const auto frame_x = [&](int64_t f) {
    return L.spectrogram_x + static_cast<int>(f * L.pixels_per_frame);
  };
  ExpectColor(d, frame_x(5), bin_y(20), 68, 1, 84, 2, "quiet, left");
  ExpectColor(d, frame_x(115), bin_y(20), 68, 1, 84, 2, "quiet, right");
  const int loud_left = d.Brightness(frame_x(5), bin_y(std::lround(BandCentre(5))));
  const int loud_right = d.Brightness(frame_x(115), bin_y(std::lround(BandCentre(115))));
  EXPECT_GT(loud_left, 400);
  EXPECT_GT(loud_right, 400);
  EXPECT_LT(d.Brightness(frame_x(5), bin_y(36)), 250);   // the top left is quiet
  EXPECT_LT(d.Brightness(frame_x(115), bin_y(4)), 250);  // and the bottom right

  for (int64_t t = 0; t < T; ++t) {
    // The position: the weighted mean of the steps' centres (s + 1/2) * frames_per_step.
    double sum = 0.0, acc = 0.0;
    for (int64_t s = 0; s < kSteps; ++s) {
      sum += attention[t][s];
      acc += attention[t][s] * (s + 0.5) * kFramesPerStep;
    }
    const double frame = acc / sum;
    EXPECT_NEAR(L.token_frame[t], frame, 1e-4) << t;
    const int x = L.spectrogram_x + static_cast<int>(std::floor(frame * o.pixels_per_frame));
    EXPECT_EQ(L.token_x[t], x) << t;
    // The path goes down the spectrogram token by token.
    EXPECT_EQ(L.token_y[t],
              L.spectrogram_y + static_cast<int>((t + 0.5) * L.spectrogram_height / T));
    // A red dot at the position, white line halfway to the next one.
    ExpectColor(d, x, L.token_y[t], 230, 20, 20, 0, "dot " + std::to_string(t));
    ExpectColor(d, x + 1, L.token_y[t] - 1, 230, 20, 20, 0, "dot " + std::to_string(t));
    if (t + 1 < T) {
      ExpectColor(d, (x + L.token_x[t + 1]) / 2, (L.token_y[t] + L.token_y[t + 1]) / 2, 255, 255,
                  255, 0, "line " + std::to_string(t));
    }
    // The label: ink above the spectrogram at the position, and left of the strip's row (" " is
    // drawn as "␣", so it has ink too).
    EXPECT_GT(Ink(d, x - 6, o.margin, x + 7, L.spectrogram_y - 6), 3) << "label above " << t;
    const int row = L.strip_y + static_cast<int>(t) * L.strip_row_height;
    EXPECT_GT(Ink(d, 0, row, L.strip_x - 1, row + L.strip_row_height), 3) << "strip label " << t;
    // The strip: the argmax's cell is the darkest of its row, cells with no weight are white.
    const auto cell = [&](int64_t s) {
      return d.Brightness(
          L.strip_x + static_cast<int>((s * kFramesPerStep + 2) * L.pixels_per_frame),
          row + L.strip_row_height / 2);
    };
    const int64_t argmax = 1 + 3 * t;
    for (int64_t s = 0; s < kSteps; ++s) {
      if (s != argmax) {
        EXPECT_LT(cell(argmax), cell(s)) << t << "," << s;
      }
      if (attention[t][s] == 0.0f) {
        EXPECT_EQ(cell(s), 3 * 255) << t << "," << s;
      }
    }
  }
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Spectrogram, LastStepClipped) {
  // 10 frames at 4 per step: steps of 4, 4 and 2 frames; the last one's centre is frame 9.
  TempDir dir;
  const std::vector<float> features(10 * 3, 1.0f);  // constant: drawn at the ramp's low end
  const SpectrogramLayout L = WriteSpectrogramAlignment(
      dir / "c.png", features, 10, 3, {{0.0f, 0.0f, 1.0f}, {0.5f, 0.5f, 0.0f}}, 4, {"a", "b"});
  EXPECT_DOUBLE_EQ(L.token_frame[0], 9.0);
  EXPECT_DOUBLE_EQ(L.token_frame[1], 4.0);  // (2 + 6) / 2
  const Decoded d = Load(dir / "c.png");
  const int ppf = L.pixels_per_frame, y = L.strip_y + L.strip_row_height / 2;
  EXPECT_LT(d.Brightness(L.strip_x + 10 * ppf - 1, y), 300);      // the clipped cell, weight 1
  EXPECT_GE(d.Brightness(L.strip_x + 10 * ppf + 1, y), 3 * 200);  // past the last frame
  ExpectColor(d, L.spectrogram_x + 1, L.spectrogram_y + 1, 68, 1, 84, 0, "constant");
}

TEST(Spectrogram, OverlappingLabelsAreStaggered) {
  // Four tokens on the same step: their labels take three rows above the spectrogram, not one.
  TempDir dir;
  const std::vector<float> features(8 * 2, 0.0f);
  const std::vector<float> row = {0.0f, 1.0f};
  const SpectrogramLayout one =
      WriteSpectrogramAlignment(dir / "1.png", features, 8, 2, {row}, 4, {"abc"});
  const SpectrogramLayout four = WriteSpectrogramAlignment(
      dir / "4.png", features, 8, 2, {row, row, row, row}, 4, {"abc", "def", "ghi", "jkl"});
  const int line = one.strip_row_height - 2;
  EXPECT_EQ(four.spectrogram_y, one.spectrogram_y + 2 * line);
  const Decoded d = Load(dir / "4.png");
  for (int r = 0; r < 3; ++r) {
    EXPECT_GT(Ink(d, 0, 8 + r * line, d.w, 8 + (r + 1) * line), 5) << "row " << r;
  }
}

TEST(Spectrogram, WideInputAtOnePixelPerFrame) {
  TempDir dir;
  const int64_t frames = 2500, bins = 2;  // 5000 px at the default 2 per frame
  std::vector<float> features(frames * bins);
  for (size_t i = 0; i < features.size(); ++i) features[i] = static_cast<float>(i % 7);
  std::vector<float> row(frames / 10, 0.0f);
  row[0] = 1.0f;
  const SpectrogramLayout L =
      WriteSpectrogramAlignment(dir / "w.png", features, frames, bins, {row}, 10, {"x"});
  EXPECT_EQ(L.pixels_per_frame, 1);
  EXPECT_EQ(L.spectrogram_width, frames);
  EXPECT_LT(L.width, kMaxSpectrogramWidth);
  EXPECT_EQ(Load(dir / "w.png").w, L.width);
}

TEST(Spectrogram, Errors) {
  TempDir dir;
  const std::string path = dir / "e.png";
  // 8 frames x 2 bins, 2 steps of 4 frames, 2 tokens.
  const std::vector<float> x(16, 0.5f);
  const std::vector<std::vector<float>> w = {{0.9f, 0.1f}, {0.2f, 0.8f}};
  const std::vector<std::string> labels = {"a", "b"};
  const auto write = [&](std::span<const float> features, int64_t frames, int64_t bins,
                         const std::vector<std::vector<float>>& attention, int64_t fps,
                         const std::vector<std::string>& l, const SpectrogramOptions& o = {}) {
    return [=] { WriteSpectrogramAlignment(path, features, frames, bins, attention, fps, l, o); };
  };
  EXPECT_THAT(ThrownMessage(write(x, 8, 3, w, 4, labels)),
              HasSubstr("WriteSpectrogramAlignment: features have 16 values but [frames, bins] = "
                        "[8, 3] needs 24"));
  EXPECT_THAT(ThrownMessage(write(x, 0, 2, w, 4, labels)),
              HasSubstr("needs at least one frame and one bin"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 4, {})), HasSubstr("needs at least one token"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 4, {"a", "b", "c"})),
              HasSubstr("attention has 2 rows but there are 3 labels"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, {{0.9f, 0.1f}, {1.0f}}, 4, labels)),
              HasSubstr("attention row 1 has 1 weights but row 0 has 2"));
  // 8 frames at 3 per step need 3 steps; at 8 per step, 1.
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 3, labels)),
              HasSubstr("attention rows have 2 steps but 8 frames at frames_per_step 3 need 3"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 8, labels)), HasSubstr("need 1"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 0, labels)),
              HasSubstr("frames_per_step must be >= 1, got 0"));
  std::vector<float> nan_x = x;
  nan_x[5] = NAN;
  EXPECT_THAT(ThrownMessage(write(nan_x, 8, 2, w, 4, labels)),
              HasSubstr("feature [2, 1] is nan (features must be finite)"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, {{0.9f, 0.1f}, {NAN, 0.8f}}, 4, labels)),
              HasSubstr("attention weight [1, 0] is nan (weights must be finite and >= 0)"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, {{0.9f, -0.1f}, {0.2f, 0.8f}}, 4, labels)),
              HasSubstr("attention weight [0, 1] is -0.1"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, {{0.9f, 0.1f}, {0.0f, 0.0f}}, 4, labels)),
              HasSubstr("attention row 1 is all zeros"));
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 4, {"a", "b\xff"})),
              HasSubstr("WriteSpectrogramAlignment: label 1: invalid UTF-8 at byte 1 (0xff)"));
  SpectrogramOptions bad;
  bad.pixels_per_bin = 0;
  EXPECT_THAT(ThrownMessage(write(x, 8, 2, w, 4, labels, bad)),
              HasSubstr("pixels_per_bin must be in [1, 64], got 0"));
  SpectrogramOptions no_font;
  no_font.font_path = dir / "missing.ttf";
  const std::string m = ThrownMessage(write(x, 8, 2, w, 4, labels, no_font));
  EXPECT_THAT(m, HasSubstr("WriteSpectrogramAlignment: font file '" + no_font.font_path +
                           "' not found (install fonts-dejavu-core or set "
                           "SpectrogramOptions::font_path)"));
  EXPECT_FALSE(std::filesystem::exists(path));
  // The same inputs, well formed, are drawn.
  EXPECT_EQ(ThrownMessage(write(x, 8, 2, w, 4, labels)), "(no exception was thrown)");
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace attend::viz
