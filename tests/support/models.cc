#include "support/models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "attend/attend.h"
#include "support/reference_compare.h"

namespace attend::testing {

models::Batch RandomBatch(const models::ModelConfig& c, const std::vector<int64_t>& src_lengths,
                          const std::vector<int64_t>& tgt_lengths, uint64_t seed) {
  Generator gen(seed);
  const int64_t b = static_cast<int64_t>(src_lengths.size());
  const int64_t s = *std::max_element(src_lengths.begin(), src_lengths.end());
  const int64_t t = *std::max_element(tgt_lengths.begin(), tgt_lengths.end());
  std::vector<int64_t> src(b * s, models::SpecialIds::kPad), in(b * t, models::SpecialIds::kPad),
      out(b * t, models::SpecialIds::kPad);
  std::vector<int64_t> sr = Tensor::Randint({b * s}, 4, c.src_vocab, gen).ToVector<int64_t>();
  std::vector<int64_t> tr = Tensor::Randint({b * t}, 4, c.tgt_vocab, gen).ToVector<int64_t>();
  models::Batch batch;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < src_lengths[i]; ++j) src[i * s + j] = sr[i * s + j];
    const int64_t n = tgt_lengths[i] - 1;
    in[i * t] = models::SpecialIds::kBos;
    for (int64_t j = 0; j < n; ++j) in[i * t + j + 1] = out[i * t + j] = tr[i * t + j];
    out[i * t + n] = models::SpecialIds::kEos;
    batch.src_tokens += src_lengths[i];
    batch.tgt_tokens += tgt_lengths[i];
  }
  batch.src = Tensor::FromVector(src, {b, s});
  batch.src_lengths = Tensor::FromVector(src_lengths, {b});
  batch.tgt_in = Tensor::FromVector(in, {b, t});
  batch.tgt_out = Tensor::FromVector(out, {b, t});
  batch.tgt_lengths = Tensor::FromVector(tgt_lengths, {b});
  return batch;
}

void ExpectClose(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  std::vector<float> g = got.Contiguous().ToVector<float>(),
                     w = want.Contiguous().ToVector<float>();
  int bad = 0;
  for (size_t i = 0; i < g.size() && bad < 5; ++i)
    if (!(std::abs(g[i] - w[i]) <= 2e-6f + 1e-5f * std::abs(w[i]))) {
      ADD_FAILURE() << what << " element " << i << ": " << g[i] << " vs " << w[i];
      ++bad;
    }
}

void LoadTorchWeights(const reference::RefCase& c, nn::Module& model) {
  std::set<std::string> in_file, params, buffers;
  for (const auto& t : c.tensors)
    if (t.name.rfind("p:", 0) == 0) in_file.insert(t.name.substr(2));
  for (const auto& [name, p] : model.NamedParameters()) params.insert(name);
  for (const auto& [name, b] : model.NamedBuffers()) buffers.insert(name);
  for (auto& [name, t] : model.StateDict()) {
    if (buffers.count(name)) continue;
    ASSERT_TRUE(params.count(name)) << name << " is neither a parameter nor a buffer";
    const reference::RefTensor* r = c.Find("p:" + name);
    if (r == nullptr) {
      ADD_FAILURE() << "case " << c.name << ": torch has no parameter " << name;
      continue;
    }
    ASSERT_EQ(t.shape().vec(), r->dims) << "case " << c.name << " parameter " << name;
    t.CopyFrom(reference::ToTensor(*r));
  }
  EXPECT_EQ(params, in_file) << "case " << c.name << ": parameter names differ";
}

}  // namespace attend::testing
