// Attention heatmaps as PNG (cells filled by weight, labels drawn with stb_truetype and written
// with stb_image_write) and as SVG; both written atomically.
#include "attend/viz.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "attend/files.h"
#include "attend/error.h"
#include "text/unicode.h"
#include "viz/internal.h"

namespace attend::viz {
namespace {

using detail::CellColor;
using detail::Coverage;
using detail::Font;
using detail::Image;

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
  const Font font(options.font_path, options.font_size, fn, "HeatmapOptions");
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
  detail::WritePngAtomic(fn, path, image);
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
