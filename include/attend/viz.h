// Attention heatmaps: one cell per (target, source) weight, source subwords along the top (drawn
// vertically), target subwords down the left side; written as PNG (stb) or SVG.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace attend::viz {

struct HeatmapOptions {
  int cell_size = 24;  // pixels per weight cell (PNG; SVG units)
  int font_size = 14;  // label height in pixels
  int margin = 8;      // white border around everything
  // Weights are drawn as min(w / max_weight, 1): 1 for attention distributions.
  float max_weight = 1.0f;
  bool color = false;        // false: white (0) to black (1); true: white to dark blue
  int max_label_chars = 32;  // longer labels are cut and end in "…"
  std::string font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";  // fonts-dejavu-core
};

// Where the parts of a heatmap land, in pixels (PNG) from the top-left corner.
struct HeatmapLayout {
  int width = 0, height = 0;   // of the whole image
  int grid_x = 0, grid_y = 0;  // top-left corner of cell (0, 0)
  int cell_size = 0;
};

// `weights` is float [T, S] row-major: row t holds target token t's weights over the S source
// tokens (T = tgt_tokens.size(), S = src_tokens.size()). Tokens are UTF-8. Throws attend::Error on
// a size mismatch, empty token lists, a negative or non-finite weight, invalid UTF-8, or a missing
// font file; the PNG is written atomically (temporary file in the same directory, then rename).
HeatmapLayout WriteAttentionHeatmap(const std::string& path,
                                    const std::vector<std::string>& src_tokens,
                                    const std::vector<std::string>& tgt_tokens,
                                    std::span<const float> weights,  // [T, S]
                                    const HeatmapOptions& options = {});

// The same picture as SVG (text left to the viewer's fonts; no font file needed), written
// atomically.
void WriteAttentionSvg(const std::string& path, const std::vector<std::string>& src_tokens,
                       const std::vector<std::string>& tgt_tokens,
                       std::span<const float> weights,  // [T, S]
                       const HeatmapOptions& options = {});

}  // namespace attend::viz
