// Where a captioner looked: one panel per generated word, the image with that word's attention
// weights drawn over it (the picture of Show, Attend and Tell), the word written below.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/viz.h"
#include "text/unicode.h"
#include "viz/internal.h"

namespace attend::viz {
namespace {

constexpr const char* kFn = "WriteImageAttention";
constexpr uint8_t kHeat[3] = {255, 40, 0};

}  // namespace

void WriteImageAttention(const std::string& path, std::span<const float> image, int64_t channels,
                         int64_t size, const std::vector<std::string>& words,
                         const std::vector<std::vector<float>>& weights,
                         const std::vector<std::array<float, 4>>& positions,
                         const ImageAttentionOptions& options) {
  ATTEND_CHECK((channels == 1 || channels == 3) && size > 0 && size <= 4096 &&
                   static_cast<int64_t>(image.size()) == channels * size * size,
               kFn, ": the image must be f32 [", channels, ", ", size, ", ", size, "], got ",
               image.size(), " values");
  ATTEND_CHECK(!words.empty() && words.size() == weights.size(), kFn, ": ", words.size(),
               " words for ", weights.size(), " rows of weights");
  ATTEND_CHECK(options.scale >= 1 && options.scale <= 8 && options.columns >= 1, kFn,
               ": scale must be in 1..8 and columns positive");
  for (size_t t = 0; t < weights.size(); ++t) {
    ATTEND_CHECK(weights[t].size() == positions.size(), kFn, ": word ", t, " has ",
                 weights[t].size(), " weights for ", positions.size(), " positions");
    for (float w : weights[t])
      ATTEND_CHECK(std::isfinite(w) && w >= 0.0f, kFn, ": word ", t, " has a weight ", w);
  }
  const int s = static_cast<int>(size), k = options.scale, side = s * k;
  const detail::Font font(options.font_path, options.font_size, kFn, "ImageAttentionOptions");
  // Panel 0 is the image alone; panel t + 1 shows word t.
  const int panels = static_cast<int>(words.size()) + 1;
  const int cols = std::min(panels, options.columns), rows = (panels + cols - 1) / cols;
  const int m = options.margin, label_h = font.height() + 4;
  const int cell_w = side + m, cell_h = side + label_h + m;
  detail::Image out(m + cols * cell_w, m + rows * cell_h);
  const int64_t plane = size * size;
  std::vector<double> heat(plane);
  for (int p = 0; p < panels; ++p) {
    const int x0 = m + (p % cols) * cell_w, y0 = m + (p / cols) * cell_h;
    std::fill(heat.begin(), heat.end(), 0.0);
    double peak = 0.0;
    if (p > 0) {
      // Each position's weight spread evenly over its box, in image pixels.
      const auto& w = weights[p - 1];
      for (size_t i = 0; i < positions.size(); ++i) {
        const auto& b = positions[i];
        const int bx0 = std::clamp(static_cast<int>(std::floor(b[0])), 0, s);
        const int by0 = std::clamp(static_cast<int>(std::floor(b[1])), 0, s);
        const int bx1 = std::clamp(static_cast<int>(std::ceil(b[2])), 0, s);
        const int by1 = std::clamp(static_cast<int>(std::ceil(b[3])), 0, s);
        const double area = std::max(1, (bx1 - bx0) * (by1 - by0));
        for (int y = by0; y < by1; ++y)
          for (int x = bx0; x < bx1; ++x) heat[y * size + x] += w[i] / area;
      }
      peak = *std::max_element(heat.begin(), heat.end());
    }
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) {
        const int64_t q = (y / k) * size + x / k;
        double rgb[3];
        for (int c = 0; c < 3; ++c)
          rgb[c] = 255.0 * std::clamp<double>(image[(channels == 3 ? c : 0) * plane + q], 0, 1);
        if (p > 0) {
          // Dim what the word does not look at, tint what it does.
          const double a = peak > 0 ? heat[q] / peak : 0.0;
          for (int c = 0; c < 3; ++c)
            rgb[c] = (0.35 + 0.3 * a) * rgb[c] + 0.65 * a * kHeat[c] * 0.8;
        }
        uint8_t* px = out.At(x0 + x, y0 + y);
        for (int c = 0; c < 3; ++c)
          px[c] = static_cast<uint8_t>(std::lround(std::clamp(rgb[c], 0.0, 255.0)));
      }
    const std::string label = p == 0 ? "image" : words[p - 1];
    const detail::Coverage cov =
        font.Render(text::Decode(label, std::string(kFn) + ": word " + std::to_string(p - 1)));
    out.Draw(cov, x0 + std::max(0, (side - cov.w) / 2), y0 + side + 2, false);
  }
  detail::WritePngAtomic(kFn, path, out);
}

}  // namespace attend::viz
