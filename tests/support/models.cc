#include "support/models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <sstream>

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

::testing::AssertionResult ParametersMatchFiniteDifferences(
    nn::Module& m, const std::function<std::vector<Tensor>()>& forward, int64_t stride,
    const gradcheck::Options& o) {
  m.ZeroGrad();
  std::vector<Tensor> outs = forward();
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<std::vector<double>> w;
  std::vector<Tensor> cotangents;
  for (const Tensor& out : outs) {
    std::vector<double> v(static_cast<size_t>(out.numel()));
    for (double& e : v) e = dist(rng);
    w.push_back(v);
    cotangents.push_back(Tensor::FromVector(v, out.shape()));
  }
  Backward(outs, cotangents);
  int64_t bad = 0, checked = 0;
  std::ostringstream msg;
  for (auto& named : m.NamedParameters()) {
    const std::string& name = named.first;
    Tensor& p = named.second;
    if (p.dtype() != DType::kF64 || !p.is_contiguous())
      return ::testing::AssertionFailure() << name << " is not a contiguous f64 parameter";
    const std::vector<double> analytic =
        p.grad().defined() ? p.grad().ToVector<double>() : std::vector<double>(p.numel(), 0.0);
    double* d = p.data<double>();
    for (int64_t i = 0; i < p.numel(); i += std::max<int64_t>(stride, 1)) {
      const double x = d[i];
      double num = 0.0;
      for (int sign : {1, -1}) {
        d[i] = x + sign * o.eps;
        NoGradGuard no_grad;
        const std::vector<Tensor> moved = forward();
        for (size_t k = 0; k < moved.size(); ++k) {
          const std::vector<double> v = moved[k].ToVector<double>();
          for (size_t j = 0; j < v.size(); ++j) num += sign * v[j] * w[k][j];
        }
      }
      d[i] = x;
      num /= 2 * o.eps;
      ++checked;
      if (std::fabs(analytic[i] - num) > o.atol + o.rtol * std::fabs(num) && bad++ < o.max_reported)
        msg << "\n  " << name << "[" << i << "]: analytic " << analytic[i] << ", numeric " << num;
    }
  }
  if (checked == 0) return ::testing::AssertionFailure() << "no parameter element was checked";
  if (bad > 0)
    return ::testing::AssertionFailure() << bad << " of " << checked << " differ" << msg.str();
  return ::testing::AssertionSuccess() << checked << " elements checked";
}

}  // namespace attend::testing
