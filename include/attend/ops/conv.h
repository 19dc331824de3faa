// Convolution and pooling over [B, C, L] and [B, C, H, W] tensors: the functional ops
// (src/ops/conv.cc and src/ops/pool.cc). Their modules are in attend/nn/conv.h.
#pragma once

#include <cstdint>
#include <optional>

#include "attend/tensor.h"

namespace attend {

// A (height, width) pair. One integer means the same value for both, as PyTorch's int-or-tuple
// arguments: Conv2d(x, w, b, /*stride=*/2) or Conv2d(x, w, b, Size2{2, 1}).
struct Size2 {
  // Implicit on purpose: an integer stands for the square pair, as in PyTorch.
  constexpr Size2(int64_t both) : h(both), w(both) {}  // NOLINT(google-explicit-constructor)
  constexpr Size2(int64_t h_in, int64_t w_in) : h(h_in), w(w_in) {}
  bool operator==(const Size2& o) const { return h == o.h && w == o.w; }
  int64_t h;
  int64_t w;
};

// ---- convolution (cross-correlation, as torch.nn.functional.conv1d / conv2d) ----
//
// Each input channel group g (of C_in / groups channels) is convolved with the C_out / groups
// filters of group g. Padding is implicit zeros. Output sizes, per spatial dim:
//   out = (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1   (rounded down).
// An unbatched input ([C, L] or [C, H, W]) gives an unbatched output. bias may be undefined.
//
// x [B, C_in, L], weight [C_out, C_in / groups, K], bias [C_out] -> [B, C_out, L_out]
Tensor Conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
// x [B, C_in, H, W], weight [C_out, C_in / groups, KH, KW], bias [C_out]
//   -> [B, C_out, H_out, W_out]
Tensor Conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Size2 stride = 1, Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

// A convolution that never reads below its row (pervasive attention's masked filter, Elbayad et
// al. 2018): stride 1, output row i reads input rows i - (KH - 1) .. i (zeros above the first
// row) and columns j - (KW - 1) / 2 .. j + (KW - 1) / 2 (KW odd, zeros past either edge), so the
// output is as large as the input. It is the k x k filter with the rows below its centre zeroed,
// stored without them: k = 2 KH - 1, KW = k for a square one. (src/ops/causal_conv.cc)
// x [B, C_in, H, W], weight [C_out, C_in, KH, KW], bias [C_out] or undefined -> [B, C_out, H, W]
Tensor CausalConv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- pooling (each channel on its own; [B, C, ...] or unbatched [C, ...]) ----
//
// The stride defaults to the kernel size, as in PyTorch; padding may be at most half the kernel
// (PyTorch's limit, so no window lies wholly in the padding). Output sizes as for convolution
// with dilation 1 (PyTorch's ceil_mode = false).

// Max over each window; padding acts as -inf. The gradient goes to the first maximum of each
// window in row-major order (a NaN counts as the maximum), as PyTorch.
Tensor MaxPool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride = std::nullopt,
                 int64_t padding = 0);
Tensor MaxPool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt,
                 Size2 padding = 0);
// Mean over each window. count_include_pad (PyTorch's default) divides by the full kernel size
// even where the window overlaps the padding; otherwise by the number of real elements.
Tensor AvgPool1d(const Tensor& x, int64_t kernel, std::optional<int64_t> stride = std::nullopt,
                 int64_t padding = 0, bool count_include_pad = true);
Tensor AvgPool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt,
                 Size2 padding = 0, bool count_include_pad = true);
// Averages over windows chosen so the output is `output_size`, as torch's adaptive_avg_pool2d:
// output row i covers input rows [floor(i * H / H_out), ceil((i + 1) * H / H_out)).
// [B, C, H, W] -> [B, C, H_out, W_out]
Tensor AdaptiveAvgPool2d(const Tensor& x, Size2 output_size);
// The mean over every spatial dim (all dims after the first two):
// [B, C, ...] -> [B, C], or [B, C, 1, ...] with keepdim (= AdaptiveAvgPool2d(x, 1) on 4-D x).
Tensor GlobalAvgPool(const Tensor& x, bool keepdim = false);

}  // namespace attend
