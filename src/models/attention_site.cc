// Seq2Seq's default for reading one attention head with gradient: models with a single attention
// site (the RNN encoder-decoders) have one layer and one head, their Forward's weights.
#include "attend/error.h"
#include "attend/models.h"

namespace attend::models {

Tensor Seq2Seq::ForwardWithHead(const Batch& batch, int64_t layer, int64_t head, Tensor* weights) {
  ATTEND_CHECK(layer == 0 && head == 0, "ForwardWithHead: ", NameOf(config_.arch),
               " has one attention site (layer 0, head 0), asked for layer ", layer, " head ",
               head);
  return Forward(batch, weights);
}

}  // namespace attend::models
