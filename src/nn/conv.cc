// Conv1dModule and Conv2dModule: parameters shaped and initialised as torch.nn.Conv1d / Conv2d.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "attend/nn/conv.h"

namespace attend::nn {

namespace {

// weight [C_out, C_in / groups, kernel...]: Kaiming-uniform with a = sqrt(5), which gives
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias is drawn from the same range (after the weight,
// as torch's reset_parameters does).
void InitConvParameters(const char* op, Tensor& w, Tensor& b, Generator& gen) {
  init::KaimingUniform(w, gen, std::sqrt(5.0));
  if (!b.defined()) return;
  const int64_t fan_in = init::FanInOut(w).first;
  ATTEND_ASSERT(fan_in > 0, op);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  init::Uniform(b, -bound, bound, gen);
}

// Checks the sizes and returns the initialised weight [C_out, C_in / groups, kernel...] and bias
// [C_out] (undefined when has_bias is false).
std::pair<Tensor, Tensor> ConvParameters(const char* op, int64_t in_channels, int64_t out_channels,
                                         const std::vector<int64_t>& kernel, int64_t groups,
                                         bool has_bias, Generator& gen, DType dtype) {
  ATTEND_CHECK(in_channels > 0 && out_channels > 0, op, ": channel counts must be positive, got ",
               in_channels, " in and ", out_channels, " out");
  ATTEND_CHECK(groups >= 1 && in_channels % groups == 0 && out_channels % groups == 0, op,
               ": groups ", groups, " must divide both ", in_channels, " input and ", out_channels,
               " output channels");
  std::string sizes;
  bool positive = true;
  for (int64_t k : kernel) {
    if (!sizes.empty()) sizes += 'x';
    sizes += std::to_string(k);
    positive = positive && k > 0;
  }
  ATTEND_CHECK(positive, op, ": kernel size must be positive, got ", sizes);
  Shape shape{out_channels, in_channels / groups};
  for (int64_t k : kernel) shape.push_back(k);
  Tensor w = Tensor::Empty(shape, dtype);
  Tensor b = has_bias ? Tensor::Empty(Shape{out_channels}, dtype) : Tensor();
  InitConvParameters(op, w, b, gen);
  return {w, b};
}

}  // namespace

Conv1dModule::Conv1dModule(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                           Generator& gen, const Conv1dOptions& opts, DType dtype)
    : options(opts) {
  auto [w, b] = ConvParameters("Conv1dModule", in_channels, out_channels, {kernel_size},
                               opts.groups, opts.bias, gen, dtype);
  weight = RegisterParameter("weight", w);
  if (b.defined()) bias = RegisterParameter("bias", b);
}

Tensor Conv1dModule::Forward(const Tensor& x) const {
  return Conv1d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

Conv2dModule::Conv2dModule(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
                           Generator& gen, const Conv2dOptions& opts, DType dtype)
    : options(opts) {
  auto [w, b] = ConvParameters("Conv2dModule", in_channels, out_channels,
                               {kernel_size.h, kernel_size.w}, opts.groups, opts.bias, gen, dtype);
  weight = RegisterParameter("weight", w);
  if (b.defined()) bias = RegisterParameter("bias", b);
}

Tensor Conv2dModule::Forward(const Tensor& x) const {
  return Conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

}  // namespace attend::nn
