// The Transformer encoder-decoder: not built yet (placeholder until its part of issue 5 lands).
#include "attend/error.h"
#include "attend/models.h"

namespace attend::models {

std::shared_ptr<Seq2Seq> MakeTransformer(const ModelConfig& config, Generator& gen) {
  ATTEND_CHECK(false, "the Transformer is not built yet");
  return nullptr;
}

}  // namespace attend::models
