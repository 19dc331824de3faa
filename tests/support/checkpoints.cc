#include "support/checkpoints.h"

#include <algorithm>
#include <cstdint>

#include <gtest/gtest.h>

#include "attend/checkpoint.h"

namespace attend::testing {
namespace {

std::string Base64(const std::string& in) {
  static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    const size_t n = std::min<size_t>(3, in.size() - i);
    uint32_t v = 0;
    for (size_t j = 0; j < 3; ++j) v = v << 8 | (j < n ? uint8_t(in[i + j]) : 0u);
    for (size_t j = 0; j < 4; ++j) out += j <= n ? k[(v >> (18 - 6 * j)) & 63] : '=';
  }
  return out;
}

}  // namespace

void SaveTranslationCheckpoint(const std::string& path, const nn::Module& model,
                               const nmt::Vocabulary& vocab, const std::string& model_json) {
  io::SaveCheckpoint(path, model, nullptr, nullptr, R"({"model":)" + model_json + "}",
                     {{"vocab.spm.base64", Base64(vocab.bytes())}});
}

void SaveSpeechCheckpoint(const std::string& path, const nn::Module& model,
                          const nmt::Vocabulary& vocab, const std::string& model_json,
                          const audio::FeatureOptions& features) {
  io::SaveCheckpoint(
      path, model, nullptr, nullptr,
      R"({"model":)" + model_json + R"(,"features":)" + nmt::FeatureOptionsJson(features) + "}",
      {{"vocab.spm.base64", Base64(vocab.bytes())}});
}

void ExpectSameCheckpoints(const std::string& a, const std::string& b, int64_t step) {
  auto x = io::LoadSafetensors(a);
  auto y = io::LoadSafetensors(b);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  int compared = 0;
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
    const Tensor& p = x.tensors[i].second;
    const Tensor& q = y.tensors[i].second;
    ASSERT_EQ(p.shape(), q.shape()) << x.tensors[i].first;
    if (p.dtype() == DType::kF32) {
      EXPECT_EQ(p.ToVector<float>(), q.ToVector<float>()) << x.tensors[i].first;
      ++compared;
    } else if (p.dtype() == DType::kI64) {
      EXPECT_EQ(p.ToVector<int64_t>(), q.ToVector<int64_t>()) << x.tensors[i].first;
    }
  }
  EXPECT_GT(compared, 10);
  EXPECT_EQ(x.metadata.at("trainer.step"), std::to_string(step));
  EXPECT_EQ(y.metadata.at("trainer.step"), std::to_string(step));
}

}  // namespace attend::testing
