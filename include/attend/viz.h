// Attention heatmaps: one cell per (target, source) weight, source subwords along the top (drawn
// vertically), target subwords down the left side; written as PNG (stb) or SVG. Speech
// alignments: a spectrogram with the transcript's attention path over it (PNG).
#pragma once

#include <array>
#include <cstdint>
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

struct SpectrogramOptions {
  int pixels_per_frame = 2;  // 1 when frames * pixels_per_frame would pass kMaxSpectrogramWidth
  int pixels_per_bin = 3;
  int font_size = 14;  // label height in pixels
  int margin = 8;      // white border around everything
  std::string font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";  // fonts-dejavu-core
};

// Wider spectrograms are drawn at one pixel per frame.
inline constexpr int kMaxSpectrogramWidth = 4000;

// Where the parts of a spectrogram alignment land, in pixels from the top-left corner.
struct SpectrogramLayout {
  int width = 0, height = 0;  // of the whole image
  // Top-left corner of the spectrogram: frame 0 at the left, the highest bin at the top.
  int spectrogram_x = 0, spectrogram_y = 0;
  int spectrogram_width = 0, spectrogram_height = 0;  // frames * pixels_per_frame, bins * ...
  int pixels_per_frame = 0, pixels_per_bin = 0;       // as drawn
  // The weights strip: row t (token t) spans [strip_y + t * strip_row_height, + strip_row_height);
  // step s's cell starts at strip_x + s * frames_per_step * pixels_per_frame (strip_x equals
  // spectrogram_x: the strip is aligned in time with the spectrogram).
  int strip_x = 0, strip_y = 0, strip_row_height = 0;
  // Per token: its position in frames (the weighted mean of its steps' centres) and the centre of
  // its dot on the path in pixels (x at the position; y going down the spectrogram token by token,
  // token t at spectrogram_y + (t + 0.5) * spectrogram_height / T).
  std::vector<double> token_frame;
  std::vector<int> token_x, token_y;
};

// The log-mel spectrogram of an utterance (`features` row-major [frames, bins], any scale: drawn
// from its min to its max with a viridis-like colour ramp, low frequencies at the bottom, time to
// the right) with the alignment path of a transcript drawn over it: for each output token t, its
// attention weights attention[t] over the listener's S' steps (step s covering frames
// [s * frames_per_step, (s + 1) * frames_per_step), the last one clipped to `frames`) give a
// position, the weighted mean of the steps' centres in frames. The path (a white line with a dark
// edge, a red dot per token) joins the positions, going down the spectrogram in token order, and
// each token's label (UTF-8; "▁" and " " are shown as "␣") is written above the spectrogram at
// its position (staggered over up to three rows when labels would overlap). Below, the weights
// themselves as a strip aligned in time: one row per token (label at the left), cells as wide as
// frames_per_step frames, shaded white to dark blue by the weight's share of its row.
// attention.size() == labels.size() >= 1; every row has S' = ceil(frames / frames_per_step)
// weights (finite, >= 0, not all 0). Throws attend::Error on sizes that do not match, empty
// input, non-finite values, invalid UTF-8 or a missing font; the PNG is written atomically.
SpectrogramLayout WriteSpectrogramAlignment(const std::string& path,
                                            std::span<const float> features,  // [frames, bins]
                                            int64_t frames, int64_t bins,
                                            const std::vector<std::vector<float>>& attention,
                                            int64_t frames_per_step,
                                            const std::vector<std::string>& labels,
                                            const SpectrogramOptions& options = {});

// ---- image captioning ----
struct ImageAttentionOptions {
  int scale = 2;    // pixels per image pixel
  int columns = 6;  // panels per row
  int font_size = 14;
  int margin = 8;
  std::string font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";  // fonts-dejavu-core
};

// Where a captioner looked while writing each word: the image (`image` f32 [channels, size,
// size] in [0, 1], channels 1 or 3) first, then one panel per word with weights[t] drawn over the
// image: each attended position's weight spread evenly over its box in `positions` (x0, y0, x1,
// y1 in image pixels; grid cells or regions), the parts looked at tinted red, the rest dimmed;
// the word below each panel. weights[t] has one finite, non-negative value per position. The PNG
// is written atomically; sizes that do not match, invalid UTF-8 or a missing font throw
// attend::Error.
void WriteImageAttention(const std::string& path, std::span<const float> image, int64_t channels,
                         int64_t size, const std::vector<std::string>& words,
                         const std::vector<std::vector<float>>& weights,
                         const std::vector<std::array<float, 4>>& positions,
                         const ImageAttentionOptions& options = {});

}  // namespace attend::viz
