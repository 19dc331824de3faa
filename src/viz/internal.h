// Drawing pieces shared by the viz module's PNG writers (heatmaps, spectrogram alignments): a
// TrueType font rendered with stb_truetype, an RGB canvas with text, the heatmaps' white-to-colour
// cell ramp, and PNG encoding written atomically.
#pragma once

#include <stb_truetype.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attend::viz::detail {

// A coverage bitmap (0..255) of rendered text.
struct Coverage {
  int w = 0, h = 0;
  std::vector<uint8_t> a;  // [h, w]
};

class Font {
 public:
  // Throws attend::Error naming `fn` (the public function) and `options_type` (whose font_path
  // to set) when the file is missing or not a TrueType font.
  Font(const std::string& path, int pixel_height, std::string_view fn,
       std::string_view options_type);
  Coverage Render(std::u32string_view text) const;
  int height() const { return height_; }  // of a rendered line, ascent to descent

 private:
  std::vector<unsigned char> data_;
  stbtt_fontinfo info_{};
  float scale_ = 1.0f;
  int baseline_ = 0, height_ = 0;
};

struct Image {
  int w, h;
  std::vector<uint8_t> rgb;  // [h, w, 3], starts white
  Image(int width, int height)
      : w(width), h(height), rgb(static_cast<size_t>(width) * height * 3, 255) {}
  uint8_t* At(int x, int y) { return &rgb[(static_cast<size_t>(y) * w + x) * 3]; }
  // Draws black text of coverage `c` at (x, y); rotated 90 degrees counter-clockwise (reading
  // upwards) when `vertical`.
  void Draw(const Coverage& c, int x, int y, bool vertical);
  // Fills [x0, x1) x [y0, y1), clipped to the image.
  void Fill(int x0, int y0, int x1, int y1, const uint8_t color[3]);
};

// A heatmap cell's colour for shade x in [0, 1]: white to black, or white to dark blue (8, 48,
// 107) when `color`.
void CellColor(double x, bool color, uint8_t rgb[3]);

// Encodes `image` as PNG and writes it to `path` atomically; errors name `fn`.
void WritePngAtomic(std::string_view fn, const std::string& path, const Image& image);

}  // namespace attend::viz::detail
