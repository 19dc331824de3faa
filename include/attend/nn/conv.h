// Convolution and pooling modules (src/nn/conv.cc) over the functional ops of attend/ops/conv.h.
#pragma once

#include <cstdint>
#include <optional>

#include "attend/nn.h"
#include "attend/ops/conv.h"
#include "attend/tensor.h"

namespace attend {
namespace nn {

// ---- modules: parameters named and initialised as torch.nn.Conv1d / Conv2d ----
//
// weight: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in));
// bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in = C_in / groups * prod(kernel).
// Use designated initialisers for the options: Conv2dModule(3, 32, 3, gen, {.padding = 1}).

struct Conv1dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

class Conv1dModule : public Module {
 public:
  Conv1dModule(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Generator& gen,
               const Conv1dOptions& options = {}, DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const;  // [B, C_in, L] -> [B, C_out, L_out]
  Tensor weight;                          // [C_out, C_in / groups, K]
  Tensor bias;                            // [C_out]; undefined when built without one
  Conv1dOptions options;
};

struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

class Conv2dModule : public Module {
 public:
  Conv2dModule(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Generator& gen,
               const Conv2dOptions& options = {}, DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const;  // [B, C_in, H, W] -> [B, C_out, H_out, W_out]
  Tensor weight;                          // [C_out, C_in / groups, KH, KW]
  Tensor bias;                            // [C_out]; undefined when built without one
  Conv2dOptions options;
};

// Parameter-free pooling steps, so pooling fits Sequential::Add.
class MaxPool2dModule : public Module {
 public:
  explicit MaxPool2dModule(Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                           Size2 padding = 0)
      : kernel_size(kernel_size), stride(stride), padding(padding) {}
  Tensor Forward(const Tensor& x) const { return MaxPool2d(x, kernel_size, stride, padding); }
  Size2 kernel_size;
  std::optional<Size2> stride;
  Size2 padding;
};

class AvgPool2dModule : public Module {
 public:
  explicit AvgPool2dModule(Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                           Size2 padding = 0, bool count_include_pad = true)
      : kernel_size(kernel_size),
        stride(stride),
        padding(padding),
        count_include_pad(count_include_pad) {}
  Tensor Forward(const Tensor& x) const {
    return AvgPool2d(x, kernel_size, stride, padding, count_include_pad);
  }
  Size2 kernel_size;
  std::optional<Size2> stride;
  Size2 padding;
  bool count_include_pad;
};

// [B, C, ...] -> [B, C] (or [B, C, 1, ...] with keepdim): ready for a Linear head.
class GlobalAvgPoolModule : public Module {
 public:
  explicit GlobalAvgPoolModule(bool keepdim = false) : keepdim(keepdim) {}
  Tensor Forward(const Tensor& x) const { return GlobalAvgPool(x, keepdim); }
  bool keepdim;
};

}  // namespace nn
}  // namespace attend
