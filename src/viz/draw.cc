// The viz module's shared drawing pieces (internal.h): fonts, text, cell colours, PNG output.
#include "viz/internal.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "attend/error.h"
#include "attend/files.h"

namespace attend::viz::detail {

Font::Font(const std::string& path, int pixel_height, std::string_view fn,
           std::string_view options_type) {
  std::ifstream in(path, std::ios::binary);
  ATTEND_CHECK(in.good(), fn, ": font file '", path,
               "' not found (install fonts-dejavu-core or set ", options_type, "::font_path)");
  data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const int offset = data_.empty() ? -1 : stbtt_GetFontOffsetForIndex(data_.data(), 0);
  ATTEND_CHECK(offset >= 0 && stbtt_InitFont(&info_, data_.data(), offset) != 0, fn, ": '", path,
               "' is not a TrueType font");
  scale_ = stbtt_ScaleForPixelHeight(&info_, static_cast<float>(pixel_height));
  int ascent = 0, descent = 0, gap = 0;
  stbtt_GetFontVMetrics(&info_, &ascent, &descent, &gap);
  baseline_ = static_cast<int>(std::ceil(ascent * scale_));
  height_ = baseline_ + static_cast<int>(std::ceil(-descent * scale_));
}

Coverage Font::Render(std::u32string_view text) const {
  // Pen positions first (advance + kerning), then each glyph blended in with max().
  std::vector<float> pen(text.size() + 1, 0.0f);
  for (size_t i = 0; i < text.size(); ++i) {
    int advance = 0, lsb = 0;
    stbtt_GetCodepointHMetrics(&info_, static_cast<int>(text[i]), &advance, &lsb);
    float step = advance * scale_;
    if (i + 1 < text.size()) {
      step += scale_ * stbtt_GetCodepointKernAdvance(&info_, static_cast<int>(text[i]),
                                                     static_cast<int>(text[i + 1]));
    }
    pen[i + 1] = pen[i] + step;
  }
  Coverage out;
  out.w = static_cast<int>(std::ceil(pen.back())) + 2;
  out.h = height_;
  out.a.assign(static_cast<size_t>(out.w) * out.h, 0);
  std::vector<uint8_t> glyph;
  for (size_t i = 0; i < text.size(); ++i) {
    const int cp = static_cast<int>(text[i]);
    const float shift = pen[i] - std::floor(pen[i]);
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    stbtt_GetCodepointBitmapBoxSubpixel(&info_, cp, scale_, scale_, shift, 0, &x0, &y0, &x1, &y1);
    const int gw = x1 - x0, gh = y1 - y0;
    if (gw <= 0 || gh <= 0) continue;
    glyph.assign(static_cast<size_t>(gw) * gh, 0);
    stbtt_MakeCodepointBitmapSubpixel(&info_, glyph.data(), gw, gh, gw, scale_, scale_, shift, 0,
                                      cp);
    const int ox = static_cast<int>(std::floor(pen[i])) + x0, oy = baseline_ + y0;
    for (int y = 0; y < gh; ++y) {
      for (int x = 0; x < gw; ++x) {
        const int px = ox + x, py = oy + y;
        if (px < 0 || py < 0 || px >= out.w || py >= out.h) continue;
        uint8_t& dst = out.a[static_cast<size_t>(py) * out.w + px];
        dst = std::max(dst, glyph[static_cast<size_t>(y) * gw + x]);
      }
    }
  }
  return out;
}

void Image::Draw(const Coverage& c, int x, int y, bool vertical) {
  for (int cy = 0; cy < c.h; ++cy) {
    for (int cx = 0; cx < c.w; ++cx) {
      const int a = c.a[static_cast<size_t>(cy) * c.w + cx];
      if (a == 0) continue;
      const int px = vertical ? x + cy : x + cx;
      const int py = vertical ? y + (c.w - 1 - cx) : y + cy;
      if (px < 0 || py < 0 || px >= w || py >= h) continue;
      uint8_t* p = At(px, py);
      for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(p[k] * (255 - a) / 255);
    }
  }
}

void Image::Fill(int x0, int y0, int x1, int y1, const uint8_t color[3]) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0), x1 = std::min(x1, w), y1 = std::min(y1, h);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) std::memcpy(At(x, y), color, 3);
  }
}

void CellColor(double x, bool color, uint8_t rgb[3]) {
  const double end[3] = {color ? 8.0 : 0.0, color ? 48.0 : 0.0, color ? 107.0 : 0.0};
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<uint8_t>(std::lround(255.0 - x * (255.0 - end[c])));
}

namespace {
void AppendPng(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}
}  // namespace

void WritePngAtomic(std::string_view fn, const std::string& path, const Image& image) {
  std::string png;
  const int ok =
      stbi_write_png_to_func(AppendPng, &png, image.w, image.h, 3, image.rgb.data(), image.w * 3);
  ATTEND_CHECK(ok != 0 && !png.empty(), fn, ": PNG encoding failed for '", path, "'");
  io::WriteFileAtomic(path, png);
}

}  // namespace attend::viz::detail
