// Attention heatmaps as PNG (cells filled by weight, labels drawn with stb_truetype and written
// with stb_image_write) and as SVG; both written atomically.
#include "attend/viz.h"

#include <stb_image_write.h>
#include <stb_truetype.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "attend/files.h"
#include "attend/error.h"
#include "text/unicode.h"

namespace attend::viz {
namespace {

constexpr int kLabelGap = 6;  // pixels between a label and the grid

void CheckInputs(const char* fn, const std::vector<std::string>& src,
                 const std::vector<std::string>& tgt, std::span<const float> weights,
                 const HeatmapOptions& o) {
  ATTEND_CHECK(!src.empty() && !tgt.empty(), fn,
               ": needs at least one source and one target token (", "got ", src.size(),
               " source, ", tgt.size(), " target)");
  ATTEND_CHECK(weights.size() == tgt.size() * src.size(), fn, ": weights have ", weights.size(),
               " values but [T, S] = [", tgt.size(), ", ", src.size(), "] needs ",
               tgt.size() * src.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    ATTEND_CHECK(std::isfinite(weights[i]) && weights[i] >= 0.0f, fn, ": weight [", i / src.size(),
                 ", ", i % src.size(), "] is ", weights[i], " (weights must be finite and >= 0)");
  }
  ATTEND_CHECK(o.cell_size >= 1 && o.cell_size <= 512, fn, ": cell_size must be in [1, 512], got ",
               o.cell_size);
  ATTEND_CHECK(o.font_size >= 4 && o.font_size <= 256, fn, ": font_size must be in [4, 256], got ",
               o.font_size);
  ATTEND_CHECK(o.margin >= 0 && o.margin <= 4096, fn, ": margin must be in [0, 4096], got ",
               o.margin);
  ATTEND_CHECK(std::isfinite(o.max_weight) && o.max_weight > 0.0f, fn,
               ": max_weight must be finite and > 0, got ", o.max_weight);
  ATTEND_CHECK(o.max_label_chars >= 1, fn, ": max_label_chars must be >= 1, got ",
               o.max_label_chars);
}

std::u32string Label(const std::string& token, const HeatmapOptions& o, const char* side,
                     size_t index) {
  std::u32string text = text::Decode(
      token, std::string("attention heatmap: ") + side + " token " + std::to_string(index));
  if (static_cast<int>(text.size()) > o.max_label_chars) {
    text.resize(o.max_label_chars - 1);
    text.push_back(U'\u2026');
  }
  return text;
}

// The cell's shade: 0 (white) .. 1 (full colour).
double Intensity(float w, const HeatmapOptions& o) {
  return std::min(static_cast<double>(w) / o.max_weight, 1.0);
}
void CellColor(double x, bool color, uint8_t rgb[3]) {
  // Grey: white to black. Colour: white to dark blue (8, 48, 107).
  const double end[3] = {color ? 8.0 : 0.0, color ? 48.0 : 0.0, color ? 107.0 : 0.0};
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<uint8_t>(std::lround(255.0 - x * (255.0 - end[c])));
}

// A coverage bitmap (0..255) of rendered text.
struct Coverage {
  int w = 0, h = 0;
  std::vector<uint8_t> a;  // [h, w]
};

class Font {
 public:
  Font(const std::string& path, int pixel_height) {
    std::ifstream in(path, std::ios::binary);
    ATTEND_CHECK(in.good(), "WriteAttentionHeatmap: font file '", path,
                 "' not found (install fonts-dejavu-core or set HeatmapOptions::font_path)");
    data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const int offset = data_.empty() ? -1 : stbtt_GetFontOffsetForIndex(data_.data(), 0);
    ATTEND_CHECK(offset >= 0 && stbtt_InitFont(&info_, data_.data(), offset) != 0,
                 "WriteAttentionHeatmap: '", path, "' is not a TrueType font");
    scale_ = stbtt_ScaleForPixelHeight(&info_, static_cast<float>(pixel_height));
    int ascent = 0, descent = 0, gap = 0;
    stbtt_GetFontVMetrics(&info_, &ascent, &descent, &gap);
    baseline_ = static_cast<int>(std::ceil(ascent * scale_));
    height_ = baseline_ + static_cast<int>(std::ceil(-descent * scale_));
  }

  Coverage Render(std::u32string_view text) const {
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

 private:
  std::vector<unsigned char> data_;
  stbtt_fontinfo info_{};
  float scale_ = 1.0f;
  int baseline_ = 0, height_ = 0;
};

struct Image {
  int w, h;
  std::vector<uint8_t> rgb;  // [h, w, 3]
  Image(int width, int height)
      : w(width), h(height), rgb(static_cast<size_t>(width) * height * 3, 255) {}
  // Draws black text of coverage `c` at (x, y); rotated 90 degrees counter-clockwise (reading
  // upwards) when `vertical`.
  void Draw(const Coverage& c, int x, int y, bool vertical) {
    for (int cy = 0; cy < c.h; ++cy) {
      for (int cx = 0; cx < c.w; ++cx) {
        const int a = c.a[static_cast<size_t>(cy) * c.w + cx];
        if (a == 0) continue;
        const int px = vertical ? x + cy : x + cx;
        const int py = vertical ? y + (c.w - 1 - cx) : y + cy;
        if (px < 0 || py < 0 || px >= w || py >= h) continue;
        uint8_t* p = &rgb[(static_cast<size_t>(py) * w + px) * 3];
        for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(p[k] * (255 - a) / 255);
      }
    }
  }
};

void AppendPng(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace

HeatmapLayout WriteAttentionHeatmap(const std::string& path,
                                    const std::vector<std::string>& src_tokens,
                                    const std::vector<std::string>& tgt_tokens,
                                    std::span<const float> weights, const HeatmapOptions& options) {
  const char* fn = "WriteAttentionHeatmap";
  CheckInputs(fn, src_tokens, tgt_tokens, weights, options);
  const Font font(options.font_path, options.font_size);
  std::vector<Coverage> src_labels, tgt_labels;
  int src_extent = 0, tgt_extent = 0;  // longest label, in pixels along its text direction
  for (size_t i = 0; i < src_tokens.size(); ++i) {
    src_labels.push_back(font.Render(Label(src_tokens[i], options, "source", i)));
    src_extent = std::max(src_extent, src_labels.back().w);
  }
  for (size_t i = 0; i < tgt_tokens.size(); ++i) {
    tgt_labels.push_back(font.Render(Label(tgt_tokens[i], options, "target", i)));
    tgt_extent = std::max(tgt_extent, tgt_labels.back().w);
  }
  const int64_t S = static_cast<int64_t>(src_tokens.size());
  const int64_t T = static_cast<int64_t>(tgt_tokens.size());
  const int cell = options.cell_size;
  HeatmapLayout layout;
  layout.cell_size = cell;
  layout.grid_x = options.margin + tgt_extent + kLabelGap;
  layout.grid_y = options.margin + src_extent + kLabelGap;
  const int64_t width = layout.grid_x + S * cell + options.margin;
  const int64_t height = layout.grid_y + T * cell + options.margin;
  ATTEND_CHECK(width <= 30000 && height <= 30000, fn, ": the image would be ", width, "x", height,
               " pixels for [T, S] = [", T, ", ", S, "] (at most 30000 per side; lower cell_size)");
  layout.width = static_cast<int>(width);
  layout.height = static_cast<int>(height);

  Image image(layout.width, layout.height);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t s = 0; s < S; ++s) {
      uint8_t rgb[3];
      CellColor(Intensity(weights[t * S + s], options), options.color, rgb);
      for (int y = 0; y < cell; ++y) {
        uint8_t* row = &image.rgb[(static_cast<size_t>(layout.grid_y + t * cell + y) * image.w +
                                   layout.grid_x + s * cell) *
                                  3];
        for (int x = 0; x < cell; ++x) std::memcpy(row + 3 * x, rgb, 3);
      }
    }
  }
  // Target labels right-aligned left of their row; source labels upright-reading, ending just
  // above their column.
  for (int64_t t = 0; t < T; ++t) {
    const Coverage& c = tgt_labels[t];
    image.Draw(c, layout.grid_x - kLabelGap - c.w,
               layout.grid_y + static_cast<int>(t) * cell + (cell - c.h) / 2, false);
  }
  for (int64_t s = 0; s < S; ++s) {
    const Coverage& c = src_labels[s];
    image.Draw(c, layout.grid_x + static_cast<int>(s) * cell + (cell - c.h) / 2,
               layout.grid_y - kLabelGap - c.w, true);
  }
  std::string png;
  const int ok =
      stbi_write_png_to_func(AppendPng, &png, image.w, image.h, 3, image.rgb.data(), image.w * 3);
  ATTEND_CHECK(ok != 0 && !png.empty(), fn, ": PNG encoding failed for '", path, "'");
  io::WriteFileAtomic(path, png);
  return layout;
}

void WriteAttentionSvg(const std::string& path, const std::vector<std::string>& src_tokens,
                       const std::vector<std::string>& tgt_tokens, std::span<const float> weights,
                       const HeatmapOptions& options) {
  const char* fn = "WriteAttentionSvg";
  CheckInputs(fn, src_tokens, tgt_tokens, weights, options);
  // Without a font, label extents are estimated at 0.6 em per character.
  auto extent = [&](const std::vector<std::string>& tokens, const char* side) {
    size_t chars = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      chars = std::max(chars, Label(tokens[i], options, side, i).size());
    }
    return static_cast<int>(std::ceil(0.6 * options.font_size * chars));
  };
  const int S = static_cast<int>(src_tokens.size()), T = static_cast<int>(tgt_tokens.size());
  const int cell = options.cell_size;
  const int grid_x = options.margin + extent(tgt_tokens, "target") + kLabelGap;
  const int grid_y = options.margin + extent(src_tokens, "source") + kLabelGap;
  const int width = grid_x + S * cell + options.margin, height = grid_y + T * cell + options.margin;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"" << options.font_size << "\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int t = 0; t < T; ++t) {
    for (int s = 0; s < S; ++s) {
      uint8_t rgb[3];
      CellColor(Intensity(weights[static_cast<size_t>(t) * S + s], options), options.color, rgb);
      char fill[8];
      std::snprintf(fill, sizeof(fill), "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
      svg << "<rect x=\"" << grid_x + s * cell << "\" y=\"" << grid_y + t * cell << "\" width=\""
          << cell << "\" height=\"" << cell << "\" fill=\"" << fill << "\"><title>"
          << weights[static_cast<size_t>(t) * S + s] << "</title></rect>\n";
    }
  }
  for (int t = 0; t < T; ++t) {
    svg << "<text x=\"" << grid_x - kLabelGap << "\" y=\"" << grid_y + t * cell + cell / 2
        << "\" text-anchor=\"end\" dominant-baseline=\"middle\">"
        << XmlEscape(text::Encode(Label(tgt_tokens[t], options, "target", t))) << "</text>\n";
  }
  for (int s = 0; s < S; ++s) {
    const int x = grid_x + s * cell + cell / 2, y = grid_y - kLabelGap;
    svg << "<text transform=\"translate(" << x << "," << y << ") rotate(-90)\" "
        << "dominant-baseline=\"middle\">"
        << XmlEscape(text::Encode(Label(src_tokens[s], options, "source", s))) << "</text>\n";
  }
  svg << "</svg>\n";
  io::WriteFileAtomic(path, svg.str());
}

}  // namespace attend::viz
