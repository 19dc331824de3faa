// Speech alignments as PNG: a log-mel spectrogram on a viridis-like ramp, the transcript's
// attention path over it with the tokens' labels above, and the weights in a strip below.
#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "attend/error.h"
#include "attend/viz.h"
#include "text/unicode.h"
#include "viz/internal.h"

namespace attend::viz {
namespace {

using detail::Coverage;
using detail::Font;
using detail::Image;

constexpr const char* kFn = "WriteSpectrogramAlignment";
constexpr int kLabelGap = 6;        // pixels between labels and what they name
constexpr int kStripGap = 10;       // between the spectrogram and the strip
constexpr int kLabelRows = 3;       // rows above the spectrogram that labels are staggered over
constexpr int kMaxLabelChars = 24;  // longer labels end in "…"
constexpr int64_t kMaxSide = 30000;

// The path is a white line with a black edge (visible on every part of the ramp) and red dots
// (a hue viridis never takes).
constexpr uint8_t kLine[3] = {255, 255, 255};
constexpr uint8_t kEdge[3] = {0, 0, 0};
constexpr uint8_t kDot[3] = {230, 20, 20};
constexpr uint8_t kTick[3] = {128, 128, 128};
constexpr uint8_t kFrame[3] = {200, 200, 200};

// Matplotlib's viridis at 0, 1/4, 1/2, 3/4 and 1, linear in between: brightness rises steadily
// from dark violet (quiet) to yellow (loud), and it reads in grey scale and to colour-blind eyes.
void Ramp(double x, uint8_t rgb[3]) {
  static constexpr double kStops[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  x = std::clamp(x, 0.0, 1.0) * 4.0;
  const int i = std::min(static_cast<int>(x), 3);
  const double f = x - i;
  for (int c = 0; c < 3; ++c)
    rgb[c] =
        static_cast<uint8_t>(std::lround(kStops[i][c] + f * (kStops[i + 1][c] - kStops[i][c])));
}

void CheckInputs(std::span<const float> features, int64_t frames, int64_t bins,
                 const std::vector<std::vector<float>>& attention, int64_t frames_per_step,
                 const std::vector<std::string>& labels, const SpectrogramOptions& o) {
  ATTEND_CHECK(frames >= 1 && bins >= 1, kFn,
               ": needs at least one frame and one bin, got [frames, bins] = [", frames, ", ", bins,
               "]");
  // Unsigned: no overflow on absurd sizes; the division rules out a product that wrapped.
  const uint64_t needed = static_cast<uint64_t>(frames) * static_cast<uint64_t>(bins);
  ATTEND_CHECK(features.size() == needed &&
                   features.size() / static_cast<uint64_t>(bins) == static_cast<uint64_t>(frames),
               kFn, ": features have ", features.size(), " values but [frames, bins] = [", frames,
               ", ", bins, "] needs ", needed);
  ATTEND_CHECK(!labels.empty(), kFn, ": needs at least one token, got no labels");
  ATTEND_CHECK(attention.size() == labels.size(), kFn, ": attention has ", attention.size(),
               " rows but there are ", labels.size(), " labels (one row per token)");
  ATTEND_CHECK(frames_per_step >= 1, kFn, ": frames_per_step must be >= 1, got ", frames_per_step);
  const size_t steps = attention[0].size();
  for (size_t t = 1; t < attention.size(); ++t) {
    ATTEND_CHECK(attention[t].size() == steps, kFn, ": attention row ", t, " has ",
                 attention[t].size(), " weights but row 0 has ", steps,
                 " (every row is over the same listener steps)");
  }
  // The listener rounds up: the last step may cover fewer than frames_per_step frames.
  const int64_t expected = frames / frames_per_step + (frames % frames_per_step != 0 ? 1 : 0);
  ATTEND_CHECK(static_cast<int64_t>(steps) == expected, kFn, ": attention rows have ", steps,
               " steps but ", frames, " frames at frames_per_step ", frames_per_step, " need ",
               expected, " (frames / frames_per_step, rounded up)");
  ATTEND_CHECK(o.pixels_per_frame >= 1 && o.pixels_per_frame <= 64, kFn,
               ": pixels_per_frame must be in [1, 64], got ", o.pixels_per_frame);
  ATTEND_CHECK(o.pixels_per_bin >= 1 && o.pixels_per_bin <= 64, kFn,
               ": pixels_per_bin must be in [1, 64], got ", o.pixels_per_bin);
  ATTEND_CHECK(o.font_size >= 4 && o.font_size <= 256, kFn, ": font_size must be in [4, 256], got ",
               o.font_size);
  ATTEND_CHECK(o.margin >= 0 && o.margin <= 4096, kFn, ": margin must be in [0, 4096], got ",
               o.margin);
  for (size_t i = 0; i < features.size(); ++i) {
    ATTEND_CHECK(std::isfinite(features[i]), kFn, ": feature [", i / bins, ", ", i % bins, "] is ",
                 features[i], " (features must be finite)");
  }
  for (size_t t = 0; t < attention.size(); ++t) {
    double sum = 0.0;
    for (size_t s = 0; s < steps; ++s) {
      const float w = attention[t][s];
      ATTEND_CHECK(std::isfinite(w) && w >= 0.0f, kFn, ": attention weight [", t, ", ", s, "] is ",
                   w, " (weights must be finite and >= 0)");
      sum += w;
    }
    ATTEND_CHECK(sum > 0.0, kFn, ": attention row ", t, " is all zeros (no position to draw)");
  }
}

// The label as drawn: word-boundary marks and spaces made visible, long ones cut.
std::u32string Label(const std::string& token, size_t t) {
  std::u32string text = text::Decode(token, std::string(kFn) + ": label " + std::to_string(t));
  for (char32_t& c : text) {
    if (c == U' ' || c == U'\u2581') c = U'\u2423';
  }
  if (text.size() > static_cast<size_t>(kMaxLabelChars)) {
    text.resize(kMaxLabelChars - 1);
    text.push_back(U'\u2026');
  }
  return text;
}

struct Rect {
  int x0, y0, x1, y1;  // [x0, x1) x [y0, y1)
};

void Disk(Image& image, const Rect& clip, double cx, double cy, double r, const uint8_t color[3]) {
  const int y0 = std::max(clip.y0, static_cast<int>(std::floor(cy - r)));
  const int y1 = std::min(clip.y1 - 1, static_cast<int>(std::ceil(cy + r)));
  const int x0 = std::max(clip.x0, static_cast<int>(std::floor(cx - r)));
  const int x1 = std::min(clip.x1 - 1, static_cast<int>(std::ceil(cx + r)));
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) std::memcpy(image.At(x, y), color, 3);
    }
  }
}

// A thick line: disks stamped every half pixel along it.
void Segment(Image& image, const Rect& clip, int xa, int ya, int xb, int yb, double r,
             const uint8_t color[3]) {
  const double length = std::hypot(xb - xa, yb - ya);
  const int n = std::max(1, static_cast<int>(std::ceil(2.0 * length)));
  for (int i = 0; i <= n; ++i) {
    const double f = static_cast<double>(i) / n;
    Disk(image, clip, xa + f * (xb - xa), ya + f * (yb - ya), r, color);
  }
}

}  // namespace

SpectrogramLayout WriteSpectrogramAlignment(
    const std::string& path, std::span<const float> features, int64_t frames, int64_t bins,
    const std::vector<std::vector<float>>& attention, int64_t frames_per_step,
    const std::vector<std::string>& labels, const SpectrogramOptions& options) {
  CheckInputs(features, frames, bins, attention, frames_per_step, labels, options);
  std::vector<std::u32string> texts;
  for (size_t t = 0; t < labels.size(); ++t) texts.push_back(Label(labels[t], t));
  const Font font(options.font_path, options.font_size, kFn, "SpectrogramOptions");

  const int64_t T = static_cast<int64_t>(labels.size());
  const int64_t S = static_cast<int64_t>(attention[0].size());
  const int64_t fps = frames_per_step;
  SpectrogramLayout L;
  L.pixels_per_frame =
      frames * options.pixels_per_frame > kMaxSpectrogramWidth ? 1 : options.pixels_per_frame;
  L.pixels_per_bin = options.pixels_per_bin;
  const int64_t spec_w = frames * L.pixels_per_frame, spec_h = bins * L.pixels_per_bin;
  ATTEND_CHECK(spec_w <= kMaxSide && spec_h <= kMaxSide, kFn, ": the spectrogram would be ", spec_w,
               "x", spec_h, " pixels for [frames, bins] = [", frames, ", ", bins,
               "] (at most 30000 per side)");
  L.spectrogram_width = static_cast<int>(spec_w);
  L.spectrogram_height = static_cast<int>(spec_h);

  std::vector<Coverage> rendered;
  int label_w = 0;
  for (const std::u32string& text : texts) {
    rendered.push_back(font.Render(text));
    label_w = std::max(label_w, rendered.back().w);
  }
  const int line_h = font.height();
  L.spectrogram_x = options.margin + label_w + kLabelGap;

  // Each token's position: the weighted mean of its steps' centres, in frames.
  L.token_frame.resize(T);
  L.token_x.resize(T);
  L.token_y.resize(T);
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0.0, acc = 0.0;
    for (int64_t s = 0; s < S; ++s) {
      const double start = static_cast<double>(s * fps);
      const double end = static_cast<double>(std::min((s + 1) * fps, frames));
      sum += attention[t][s];
      acc += attention[t][s] * 0.5 * (start + end);
    }
    L.token_frame[t] = acc / sum;
    const int64_t x = static_cast<int64_t>(std::floor(L.token_frame[t] * L.pixels_per_frame));
    L.token_x[t] = L.spectrogram_x + static_cast<int>(std::clamp<int64_t>(x, 0, spec_w - 1));
  }

  // Labels above the spectrogram, centred on their positions; overlapping ones go to the next
  // row (interval scheduling in x order), or to the row that frees up first when all are taken.
  std::vector<int64_t> order(T);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return L.token_x[a] < L.token_x[b]; });
  struct Place {
    int row = 0, left = 0;  // the label's row above the spectrogram and its left edge
  };
  std::vector<Place> places(T);
  std::array<int, kLabelRows> row_end;  // where each row's last label ends, plus 2 pixels
  row_end.fill(INT_MIN);
  int rows_used = 1, right = L.spectrogram_x + L.spectrogram_width;
  for (int64_t t : order) {
    const int left = L.token_x[t] - rendered[t].w / 2;
    int row = 0;
    while (row < kLabelRows && row_end[row] > left) ++row;
    if (row == kLabelRows)
      row = static_cast<int>(std::min_element(row_end.begin(), row_end.end()) - row_end.begin());
    row_end[row] = std::max(row_end[row], left + rendered[t].w + 2);
    places[t] = {row, left};
    rows_used = std::max(rows_used, row + 1);
    right = std::max(right, left + rendered[t].w);
  }
  L.spectrogram_y = options.margin + rows_used * line_h + kLabelGap;
  L.strip_x = L.spectrogram_x;
  L.strip_y = L.spectrogram_y + L.spectrogram_height + kStripGap;
  L.strip_row_height = line_h + 2;
  const int64_t width = static_cast<int64_t>(right) + options.margin;
  const int64_t height = L.strip_y + T * L.strip_row_height + options.margin;
  ATTEND_CHECK(width <= kMaxSide && height <= kMaxSide, kFn, ": the image would be ", width, "x",
               height, " pixels for ", frames, " frames, ", bins, " bins and ", T,
               " tokens (at most 30000 per side)");
  L.width = static_cast<int>(width);
  L.height = static_cast<int>(height);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t y = static_cast<int64_t>(std::floor((t + 0.5) * spec_h / T));
    L.token_y[t] = L.spectrogram_y + static_cast<int>(std::clamp<int64_t>(y, 0, spec_h - 1));
  }

  Image image(L.width, L.height);
  // The spectrogram from its min to its max; a constant one at the ramp's low end.
  const auto [lo_it, hi_it] = std::minmax_element(features.begin(), features.end());
  const double lo = *lo_it, range = static_cast<double>(*hi_it) - *lo_it;
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t b = 0; b < bins; ++b) {
      uint8_t rgb[3];
      Ramp(range > 0.0 ? (features[f * bins + b] - lo) / range : 0.0, rgb);
      const int x = L.spectrogram_x + static_cast<int>(f * L.pixels_per_frame);
      const int y = L.spectrogram_y + static_cast<int>((bins - 1 - b) * L.pixels_per_bin);
      image.Fill(x, y, x + L.pixels_per_frame, y + L.pixels_per_bin, rgb);
    }
  }
  // The path: all edges, then all lines, then the dots, so no segment covers another's line.
  const Rect spec{L.spectrogram_x, L.spectrogram_y, L.spectrogram_x + L.spectrogram_width,
                  L.spectrogram_y + L.spectrogram_height};
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t t = 1; t < T; ++t) {
      Segment(image, spec, L.token_x[t - 1], L.token_y[t - 1], L.token_x[t], L.token_y[t],
              pass == 0 ? 2.5 : 1.2, pass == 0 ? kEdge : kLine);
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    Disk(image, spec, L.token_x[t], L.token_y[t], 4.5, kLine);
    Disk(image, spec, L.token_x[t], L.token_y[t], 3.2, kDot);
  }
  // Labels, each with a tick down to the spectrogram at its position.
  for (int64_t t = 0; t < T; ++t) {
    image.Draw(rendered[t], places[t].left, options.margin + places[t].row * line_h, false);
    image.Fill(L.token_x[t], L.spectrogram_y - kLabelGap + 1, L.token_x[t] + 1, L.spectrogram_y,
               kTick);
  }
  // The strip: a light frame, then one row per token, cells shaded by their share of the row.
  const int strip_h = static_cast<int>(T) * L.strip_row_height;
  const int sx0 = L.strip_x - 1, sy0 = L.strip_y - 1;
  const int sx1 = L.strip_x + L.spectrogram_width, sy1 = L.strip_y + strip_h;
  image.Fill(sx0, sy0, sx1 + 1, sy0 + 1, kFrame);
  image.Fill(sx0, sy1, sx1 + 1, sy1 + 1, kFrame);
  image.Fill(sx0, sy0, sx0 + 1, sy1 + 1, kFrame);
  image.Fill(sx1, sy0, sx1 + 1, sy1 + 1, kFrame);
  for (int64_t t = 0; t < T; ++t) {
    const double sum = std::accumulate(attention[t].begin(), attention[t].end(), 0.0);
    const int y0 = L.strip_y + static_cast<int>(t) * L.strip_row_height;
    // The row's last pixel stays white: a thin gap between tokens.
    const int y1 = y0 + L.strip_row_height - 1;
    for (int64_t s = 0; s < S; ++s) {
      uint8_t rgb[3];
      detail::CellColor(attention[t][s] / sum, true, rgb);
      const int x0 = L.strip_x + static_cast<int>(s * fps * L.pixels_per_frame);
      const int x1 =
          L.strip_x + static_cast<int>(std::min((s + 1) * fps, frames) * L.pixels_per_frame);
      image.Fill(x0, y0, x1, y1, rgb);
    }
    const Coverage& c = rendered[t];
    image.Draw(c, L.strip_x - kLabelGap - c.w, y0 + (L.strip_row_height - 1 - c.h) / 2, false);
  }
  detail::WritePngAtomic(kFn, path, image);
  return L;
}

}  // namespace attend::viz
