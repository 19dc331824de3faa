#include "support/checkpoints.h"

#include <algorithm>
#include <cstdint>

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

}  // namespace attend::testing
