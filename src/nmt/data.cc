// Encoding sentence pairs into subword ids, padding them into batches, and token-count batching
// with length buckets.
#include <algorithm>
#include <numeric>

#include "attend/error.h"
#include "attend/nmt.h"

namespace attend::nmt {

using models::SpecialIds;

std::vector<Example> EncodePairs(const Vocabulary& vocab,
                                 const std::vector<std::pair<std::string, std::string>>& pairs,
                                 int64_t max_len, int64_t* dropped) {
  std::vector<Example> out;
  out.reserve(pairs.size());
  int64_t n_dropped = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    Example e;
    e.src = vocab.Encode(pairs[i].first);
    e.tgt = vocab.Encode(pairs[i].second);
    e.index = static_cast<int64_t>(i);
    if (e.src.empty() || e.tgt.empty() || static_cast<int64_t>(e.src.size()) > max_len ||
        static_cast<int64_t>(e.tgt.size()) > max_len) {
      ++n_dropped;
      continue;
    }
    out.push_back(std::move(e));
  }
  if (dropped) *dropped = n_dropped;
  return out;
}

models::Batch MakeBatch(const std::vector<Example>& examples, const std::vector<int64_t>& order) {
  ATTEND_CHECK(!order.empty(), "MakeBatch: no examples");
  const int64_t b = static_cast<int64_t>(order.size());
  int64_t s = 0, t = 0;
  for (int64_t i : order) {
    ATTEND_CHECK(i >= 0 && i < static_cast<int64_t>(examples.size()), "MakeBatch: example ", i,
                 " out of range");
    s = std::max<int64_t>(s, examples[i].source_length());
    t = std::max<int64_t>(t, examples[i].tgt.size() + 1);
  }
  ATTEND_CHECK(s > 0, "MakeBatch: every source in the batch is empty");
  models::Batch batch;
  const int64_t f = examples[order[0]].feature_dim;
  batch.src = f > 0 ? Tensor::Zeros({b, s, f}, DType::kF32) : Tensor::Zeros({b, s}, DType::kI64);
  batch.tgt_in = Tensor::Zeros({b, t}, DType::kI64);
  batch.tgt_out = Tensor::Zeros({b, t}, DType::kI64);
  batch.src_lengths = Tensor::Zeros({b}, DType::kI64);
  batch.tgt_lengths = Tensor::Zeros({b}, DType::kI64);
  const auto& first_regions = examples[order[0]].regions;
  const int64_t k = first_regions ? static_cast<int64_t>(first_regions->size()) / 4 : 0;
  if (k > 0) batch.regions = Tensor::Zeros({b, k, 4}, DType::kF32);
  int64_t* ps = f > 0 ? nullptr : batch.src.data<int64_t>();
  float* pf = f > 0 ? batch.src.data<float>() : nullptr;
  int64_t* pi = batch.tgt_in.data<int64_t>();
  int64_t* po = batch.tgt_out.data<int64_t>();
  int64_t* sl = batch.src_lengths.data<int64_t>();
  int64_t* tl = batch.tgt_lengths.data<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const Example& e = examples[order[r]];
    ATTEND_CHECK(e.feature_dim == f, "MakeBatch: example ", e.index,
                 " mixes speech features and token ids (or feature sizes) in one batch");
    ATTEND_CHECK(e.source_length() > 0, "MakeBatch: example ", e.index, " has an empty source");
    if (f > 0) std::copy(e.values().begin(), e.values().end(), pf + r * s * f);
    else std::copy(e.src.begin(), e.src.end(), ps + r * s);
    const int64_t ek = e.regions ? static_cast<int64_t>(e.regions->size()) / 4 : 0;
    ATTEND_CHECK(ek == k, "MakeBatch: example ", e.index, " has ", ek,
                 " region boxes, the batch's first ", k);
    if (k > 0)
      std::copy(e.regions->begin(), e.regions->end(), batch.regions.data<float>() + r * k * 4);
    pi[r * t] = SpecialIds::kBos;
    std::copy(e.tgt.begin(), e.tgt.end(), pi + r * t + 1);
    std::copy(e.tgt.begin(), e.tgt.end(), po + r * t);
    po[r * t + static_cast<int64_t>(e.tgt.size())] = SpecialIds::kEos;
    sl[r] = e.source_length();
    tl[r] = static_cast<int64_t>(e.tgt.size()) + 1;
    batch.src_tokens += sl[r];
    batch.tgt_tokens += tl[r];
  }
  return batch;
}

namespace {
// splitmix64: the batch shuffle's random numbers, a pure function of (seed, epoch, i).
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
// What an example costs in a batch: its longer side (target with eos).
int64_t Length(const Example& e) {
  return std::max<int64_t>(e.source_length(), static_cast<int64_t>(e.tgt.size()) + 1);
}
}  // namespace

std::vector<std::vector<int64_t>> MakeBatches(const std::vector<Example>& examples,
                                              int64_t max_tokens, uint64_t seed, int64_t epoch) {
  ATTEND_CHECK(max_tokens > 0, "MakeBatches: max_tokens must be positive, got ", max_tokens);
  const uint64_t key = Mix(seed ^ Mix(static_cast<uint64_t>(epoch) + 1));
  // Shuffle, then sort by length (a stable sort keeps the shuffled order among equal lengths,
  // so buckets differ from epoch to epoch).
  std::vector<int64_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) {
    const size_t j = Mix(key + i) % i;
    std::swap(order[i - 1], order[j]);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return Length(examples[a]) < Length(examples[b]); });
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> cur;
  int64_t longest = 0;
  for (int64_t i : order) {
    const int64_t len = Length(examples[i]);
    const int64_t longest_if = std::max(longest, len);
    if (!cur.empty() && longest_if * static_cast<int64_t>(cur.size() + 1) > max_tokens) {
      batches.push_back(std::move(cur));
      cur.clear();
      longest = 0;
    }
    cur.push_back(i);
    longest = std::max(longest, len);
  }
  if (!cur.empty()) batches.push_back(std::move(cur));
  for (size_t i = batches.size(); i > 1; --i) {
    const size_t j = Mix(key ^ Mix(i)) % i;
    std::swap(batches[i - 1], batches[j]);
  }
  return batches;
}

}  // namespace attend::nmt
