// Beam search proven by properties on many small random models, not one lucky case:
//  (a) the stopping rule never changes the result: the batched search returns the same n-best as
//      the same beam search written plainly and run on until every hypothesis has ended;
//  (b) a beam wide enough to hold every prefix returns the n-best of an exhaustive search over all
//      output sequences;
//  (c) both hold with the length penalty on and with n-gram blocking;
//  (d) (a) holds on vocabularies large enough for the scan's skipping of blocks of tokens.
// The models are tables of random next-token distributions keyed by (source, prefix), so a
// hypothesis scores the same in any batch or row and the comparisons are exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <array>
#include <functional>

#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"

namespace attend {
namespace {

using models::SpecialIds;

// Next-token log-probabilities as a pure function of (seed, source, prefix): logits uniform in
// [-scale, scale], eos shifted by `eos_bias` per generated token so that hypotheses end at
// different lengths; log-softmax in double, rounded to float as a network's output would be.
class PrefixModel : public models::Seq2Seq {
 public:
  PrefixModel(int64_t vocab, uint64_t seed, double scale, double eos_bias)
      : Seq2Seq(Config(vocab)), seed_(seed), scale_(scale), eos_bias_(eos_bias) {}

  struct State : models::DecoderState {
    std::vector<std::vector<int64_t>> source, prefix;  // per row; prefix starts with bos
    int64_t rows() const override { return static_cast<int64_t>(prefix.size()); }
  };

  Tensor Forward(const models::Batch&, Tensor*) override {
    throw Error("PrefixModel: decoding only");
  }
  std::unique_ptr<models::DecoderState> Start(const Tensor& src, const Tensor& lengths) override {
    auto st = std::make_unique<State>();
    const Tensor s = src.Contiguous();
    for (int64_t r = 0; r < s.size(0); ++r) {
      const int64_t* row = s.data<int64_t>() + r * s.size(1);
      st->source.emplace_back(row, row + lengths.data<int64_t>()[r]);
      st->prefix.emplace_back();
    }
    return st;
  }
  Tensor Step(models::DecoderState& state, const Tensor& tokens, Tensor* attention) override {
    auto& st = static_cast<State&>(state);
    const int64_t n = st.rows(), v = config_.tgt_vocab;
    EXPECT_EQ(tokens.size(0), n);
    std::vector<float> out(n * v);
    for (int64_t r = 0; r < n; ++r) {
      st.prefix[r].push_back(tokens.data<int64_t>()[r]);
      const std::vector<float> lp = LogProbs(st.source[r], st.prefix[r]);
      std::copy(lp.begin(), lp.end(), out.begin() + r * v);
    }
    rows_stepped_ += n;
    return Tensor::FromVector(out, {n, v});
  }
  void Select(models::DecoderState& state, const Tensor& rows) override {
    auto& st = static_cast<State&>(state);
    State kept;
    for (int64_t i = 0; i < rows.size(0); ++i) {
      const int64_t r = rows.data<int64_t>()[i];
      kept.source.push_back(st.source[r]);
      kept.prefix.push_back(st.prefix[r]);
    }
    st.source = std::move(kept.source);
    st.prefix = std::move(kept.prefix);
  }

  // prefix: bos and the tokens generated so far.
  std::vector<float> LogProbs(const std::vector<int64_t>& source,
                              const std::vector<int64_t>& prefix) const {
    uint64_t key = seed_;
    for (int64_t t : source) key = Generator::Bits(key, static_cast<uint64_t>(t));
    key = Generator::Bits(key, 1u << 20);
    for (int64_t t : prefix) key = Generator::Bits(key, static_cast<uint64_t>(t));
    const int64_t v = config_.tgt_vocab;
    std::vector<double> logit(v);
    double m = -1e300;
    for (int64_t id = 0; id < v; ++id) {
      logit[id] = scale_ * (2.0 * Generator::UniformD(key, id) - 1.0);
      if (id == SpecialIds::kEos) logit[id] += eos_bias_ * static_cast<double>(prefix.size() - 1);
      m = std::max(m, logit[id]);
    }
    double z = 0;
    for (double l : logit) z += std::exp(l - m);
    std::vector<float> lp(v);
    for (int64_t id = 0; id < v; ++id) lp[id] = static_cast<float>(logit[id] - m - std::log(z));
    return lp;
  }
  int64_t rows_stepped() const { return rows_stepped_; }

 private:
  static models::ModelConfig Config(int64_t vocab) {
    models::ModelConfig c;
    c.arch = models::Arch::kRnnAttention;
    c.src_vocab = c.tgt_vocab = vocab;
    return c;
  }
  uint64_t seed_;
  double scale_, eos_bias_;
  int64_t rows_stepped_ = 0;
};

double Penalty(size_t length, double alpha) {
  return alpha == 0.0 ? 1.0 : std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

int64_t MaxLen(const std::vector<int64_t>& src, const nmt::SearchOptions& o) {
  return static_cast<int64_t>(o.max_len_ratio * static_cast<double>(src.size())) + o.max_len_extra;
}

// True when appending `id` to `tokens` repeats an n-gram of size n (written independently of the
// search: the last n-gram of tokens + id against every earlier one).
bool Repeats(const std::vector<int64_t>& tokens, int64_t id, int64_t n) {
  if (n <= 0) return false;
  std::vector<int64_t> seq = tokens;
  seq.push_back(id);
  const int64_t len = static_cast<int64_t>(seq.size());
  if (len < n) return false;
  for (int64_t i = 0; i + n < len; ++i)
    if (std::equal(seq.begin() + i, seq.begin() + i + n, seq.end() - n)) return true;
  return false;
}

bool Generatable(int64_t id) { return id != SpecialIds::kPad && id != SpecialIds::kBos; }

// The search of nmt::SearchOptions' definition, one sentence, written plainly and without any
// stopping rule: it runs until no hypothesis lives (each ends by eos or at the length limit).
// *rows counts the hypotheses it expanded.
std::vector<nmt::Hypothesis> PlainBeam(const PrefixModel& m, const std::vector<int64_t>& src,
                                       const nmt::SearchOptions& o, int64_t* rows) {
  struct Live {
    std::vector<int64_t> tokens;
    double log_prob = 0;
  };
  const int64_t max_len = MaxLen(src, o), v = m.config().tgt_vocab;
  std::vector<nmt::Hypothesis> finished;
  auto finish = [&](const Live& h, double log_prob) {
    nmt::Hypothesis f;
    f.tokens = h.tokens;
    f.log_prob = log_prob;
    f.score = log_prob / Penalty(h.tokens.size() + 1, o.length_penalty);
    finished.push_back(f);
  };
  std::vector<Live> live(1);
  while (!live.empty()) {
    struct Cand {
      double log_prob;
      size_t row;
      int64_t token;
    };
    std::vector<Cand> cands;
    *rows += static_cast<int64_t>(live.size());
    for (size_t r = 0; r < live.size(); ++r) {
      std::vector<int64_t> prefix = {SpecialIds::kBos};
      prefix.insert(prefix.end(), live[r].tokens.begin(), live[r].tokens.end());
      const std::vector<float> p = m.LogProbs(src, prefix);
      if (static_cast<int64_t>(live[r].tokens.size()) >= max_len) {
        finish(live[r], live[r].log_prob + p[SpecialIds::kEos]);
        continue;
      }
      std::vector<int64_t> ids;
      for (int64_t id = 0; id < v; ++id)
        if (Generatable(id) && !Repeats(live[r].tokens, id, o.no_repeat_ngram)) ids.push_back(id);
      std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
      if (static_cast<int64_t>(ids.size()) > o.beam) ids.resize(o.beam);
      for (int64_t id : ids) cands.push_back({live[r].log_prob + p[id], r, id});
    }
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Cand& a, const Cand& b) { return a.log_prob > b.log_prob; });
    std::vector<Live> next;
    for (const Cand& c : cands) {
      if (static_cast<int64_t>(next.size()) == o.beam) break;
      if (c.token == SpecialIds::kEos) {
        finish(live[c.row], c.log_prob);
      } else {
        next.push_back(live[c.row]);
        next.back().tokens.push_back(c.token);
        next.back().log_prob = c.log_prob;
      }
    }
    live = std::move(next);
  }
  std::stable_sort(finished.begin(), finished.end(),
                   [](const auto& a, const auto& b) { return a.score > b.score; });
  if (static_cast<int64_t>(finished.size()) > o.nbest) finished.resize(o.nbest);
  return finished;
}

// Every output sequence up to the length limit (without repeated n-grams when blocking), scored
// as the search scores them; the n best.
std::vector<nmt::Hypothesis> Exhaustive(const PrefixModel& m, const std::vector<int64_t>& src,
                                        const nmt::SearchOptions& o) {
  const int64_t max_len = MaxLen(src, o), v = m.config().tgt_vocab;
  std::vector<nmt::Hypothesis> all;
  std::function<void(std::vector<int64_t>&, double)> walk = [&](std::vector<int64_t>& tokens,
                                                                double log_prob) {
    std::vector<int64_t> prefix = {SpecialIds::kBos};
    prefix.insert(prefix.end(), tokens.begin(), tokens.end());
    const std::vector<float> p = m.LogProbs(src, prefix);
    nmt::Hypothesis h;
    h.tokens = tokens;
    h.log_prob = log_prob + p[SpecialIds::kEos];
    h.score = h.log_prob / Penalty(tokens.size() + 1, o.length_penalty);
    all.push_back(h);
    if (static_cast<int64_t>(tokens.size()) >= max_len) return;
    for (int64_t id = 0; id < v; ++id) {
      if (!Generatable(id) || id == SpecialIds::kEos || Repeats(tokens, id, o.no_repeat_ngram))
        continue;
      tokens.push_back(id);
      walk(tokens, log_prob + p[id]);
      tokens.pop_back();
    }
  };
  std::vector<int64_t> tokens;
  walk(tokens, 0.0);
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.score > b.score; });
  all.resize(std::min<size_t>(all.size(), o.nbest));
  return all;
}

std::vector<int64_t> RandomSource(uint64_t seed, uint64_t at, int64_t vocab) {
  const int64_t len = 1 + static_cast<int64_t>(Generator::Bits(seed, at) % 4);
  std::vector<int64_t> src(len);
  for (int64_t j = 0; j < len; ++j)
    src[j] = 4 + static_cast<int64_t>(Generator::Bits(seed, at + 1 + j) % (vocab - 4));
  return src;
}

std::string Show(const std::vector<int64_t>& tokens) {
  std::string s;
  for (int64_t t : tokens) s += std::to_string(t) + " ";
  return s;
}

void ExpectSameNBest(const std::vector<nmt::Hypothesis>& got,
                     const std::vector<nmt::Hypothesis>& want, const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].tokens, want[k].tokens)
        << where << " rank " << k << ": " << Show(got[k].tokens) << "vs " << Show(want[k].tokens);
    EXPECT_EQ(got[k].log_prob, want[k].log_prob) << where << " rank " << k;
    EXPECT_EQ(got[k].score, want[k].score) << where << " rank " << k;
  }
}

// (a) and (c): the batched search with its stopping rule equals the plain search run to the end,
// on 1,000 random models over beams, n-best sizes, length penalties and n-gram blocking; and the
// stopping rule saves work.
TEST(SearchProperties, StoppingRuleNeverChangesTheResult) {
  int64_t stepped = 0, stepped_plain = 0, compared = 0;
  for (uint64_t trial = 0; trial < 1000; ++trial) {
    const int64_t vocab = 5 + static_cast<int64_t>(trial % 5);
    const double scale = std::array<double, 4>{0.5, 2.0, 4.0, 8.0}[trial % 4];
    const double eos_bias = std::array<double, 3>{0.0, 0.7, -0.5}[trial % 3];
    PrefixModel model(vocab, 1000 + trial, scale, eos_bias);
    nmt::SearchOptions o;
    o.beam = 1 + static_cast<int64_t>(trial % 6);
    o.nbest = 1 + static_cast<int64_t>((trial / 6) % o.beam);
    o.length_penalty = std::array<double, 4>{0.0, 0.6, 1.0, 2.0}[(trial / 2) % 4];
    o.no_repeat_ngram = std::array<int64_t, 4>{0, 0, 1, 2}[(trial / 3) % 4];
    o.max_len_ratio = 1.0;
    o.max_len_extra = 2 + static_cast<int64_t>(trial % 3);
    o.batch_size = 1 + static_cast<int64_t>(trial % 4);
    std::vector<std::vector<int64_t>> sources;
    for (uint64_t i = 0; i < 6; ++i) sources.push_back(RandomSource(trial, 100 * i, vocab));
    const auto got = nmt::Translate(model, sources, o);
    stepped += model.rows_stepped();
    for (size_t i = 0; i < sources.size(); ++i) {
      const auto want = PlainBeam(model, sources[i], o, &stepped_plain);
      ExpectSameNBest(got[i], want,
                      "trial " + std::to_string(trial) + " sentence " + std::to_string(i) +
                          " beam " + std::to_string(o.beam) + " alpha " +
                          std::to_string(o.length_penalty));
      ++compared;
    }
  }
  EXPECT_EQ(compared, 1000 * 6);
  // The rule stops early: fewer hypotheses expanded than by running every one to its end.
  EXPECT_LT(stepped, stepped_plain * 9 / 10) << stepped << " vs " << stepped_plain;
}

// (a) on vocabularies of 20 to 300 words, where the search's scan passes over blocks of 16
// tokens that cannot enter the k best: the same n-best as the plain search (which sorts every
// token), greedy with n-gram blocking included (its fallback is that scan).
TEST(SearchProperties, LargeVocabularyScanEqualsThePlainSearch) {
  int64_t unused = 0;
  for (uint64_t trial = 0; trial < 150; ++trial) {
    const int64_t vocab = 20 + static_cast<int64_t>((trial * 37) % 281);
    const double scale = std::array<double, 3>{0.5, 2.0, 6.0}[trial % 3];
    const double eos_bias = std::array<double, 2>{0.0, 0.7}[(trial / 3) % 2];
    PrefixModel model(vocab, 9000 + trial, scale, eos_bias);
    nmt::SearchOptions o;
    o.beam = 1 + static_cast<int64_t>(trial % 5);
    o.nbest = 1 + static_cast<int64_t>((trial / 5) % o.beam);
    o.length_penalty = std::array<double, 2>{0.0, 1.0}[(trial / 2) % 2];
    o.no_repeat_ngram = std::array<int64_t, 3>{0, 1, 2}[(trial / 7) % 3];
    o.max_len_ratio = 1.0;
    o.max_len_extra = 2;
    o.batch_size = 1 + static_cast<int64_t>(trial % 3);
    std::vector<std::vector<int64_t>> sources;
    for (uint64_t i = 0; i < 4; ++i) sources.push_back(RandomSource(trial, 100 * i, vocab));
    const auto got = nmt::Translate(model, sources, o);
    for (size_t i = 0; i < sources.size(); ++i)
      ExpectSameNBest(got[i], PlainBeam(model, sources[i], o, &unused),
                      "trial " + std::to_string(trial) + " vocab " + std::to_string(vocab) +
                          " beam " + std::to_string(o.beam));
  }
}

// (b) and (c): with a beam that holds every prefix, the search returns the exhaustive n-best,
// with and without the length penalty and n-gram blocking.
TEST(SearchProperties, WideBeamFindsTheExhaustiveOptimum) {
  for (uint64_t trial = 0; trial < 288; ++trial) {
    const int64_t vocab = 5 + static_cast<int64_t>(trial % 2);  // 2 or 3 output words and eos
    const double scale = std::array<double, 3>{1.0, 3.0, 6.0}[trial % 3];
    const double eos_bias = std::array<double, 2>{0.0, -0.6}[(trial / 3) % 2];
    PrefixModel model(vocab, 5000 + trial, scale, eos_bias);
    nmt::SearchOptions o;
    o.max_len_ratio = 0.0;
    o.max_len_extra = 4;
    const int64_t words = vocab - 3;  // unk and the ids from 4 on
    int64_t prefixes = 1;
    for (int i = 0; i < o.max_len_extra; ++i) prefixes *= words;
    // More than every prefix: no candidate is ever cut, so every sequence ends in the list.
    o.beam = prefixes + 1 + static_cast<int64_t>(trial % 3);
    o.nbest = 1 + static_cast<int64_t>(trial % 5);
    o.length_penalty = std::array<double, 4>{0.0, 1.0, 0.6, 2.0}[(trial / 6) % 4];
    o.no_repeat_ngram = std::array<int64_t, 4>{0, 2, 0, 1}[(trial / 24) % 4];
    o.batch_size = 3;
    std::vector<std::vector<int64_t>> sources;
    for (uint64_t i = 0; i < 4; ++i) sources.push_back(RandomSource(trial + 77, 100 * i, vocab));
    const auto got = nmt::Translate(model, sources, o);
    for (size_t i = 0; i < sources.size(); ++i)
      ExpectSameNBest(got[i], Exhaustive(model, sources[i], o),
                      "trial " + std::to_string(trial) + " sentence " + std::to_string(i));
  }
}

}  // namespace
}  // namespace attend
