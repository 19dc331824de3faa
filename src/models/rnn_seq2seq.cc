// The RNN encoder-decoders: not built yet (placeholder until its part of issue 5 lands).
#include "attend/error.h"
#include "attend/models.h"

namespace attend::models {

std::shared_ptr<Seq2Seq> MakeRnnSeq2Seq(const ModelConfig& config, Generator& gen) {
  ATTEND_CHECK(false, "the RNN encoder-decoder is not built yet");
  return nullptr;
}

}  // namespace attend::models
