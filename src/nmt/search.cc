// Greedy and beam search over a Seq2Seq model (batched across sentences and hypotheses), and
// alignments read off the attention weights.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/nmt.h"

namespace attend::nmt {

using models::SpecialIds;

namespace {

struct Live {
  std::vector<int64_t> tokens;
  double log_prob = 0.0;
  std::vector<std::vector<float>> attention;
  int64_t sentence = 0;  // index in the chunk
};

double Penalty(size_t length, double alpha) {
  return alpha == 0.0 ? 1.0 : std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

// The n-th best score among `finished` (n <= its size).
double NthBestScore(const std::vector<Hypothesis>& finished, int64_t n) {
  std::vector<double> scores(finished.size());
  for (size_t i = 0; i < finished.size(); ++i) scores[i] = finished[i].score;
  std::nth_element(scores.begin(), scores.begin() + (n - 1), scores.end(), std::greater<>());
  return scores[n - 1];
}

// The tokens that would complete an n-gram of size n that `tokens` already holds (sorted,
// unique); none when n is 0 or the hypothesis is shorter than n - 1.
void BannedTokens(const std::vector<int64_t>& tokens, int64_t n, std::vector<int64_t>* banned) {
  banned->clear();
  const int64_t len = static_cast<int64_t>(tokens.size());
  if (n <= 0 || len < n - 1) return;
  // The last n - 1 tokens; every earlier occurrence of them bans the token that followed it.
  const int64_t tail = len - (n - 1);
  for (int64_t i = 0; i + n - 1 < len; ++i) {
    if (std::equal(tokens.begin() + i, tokens.begin() + i + (n - 1), tokens.begin() + tail))
      banned->push_back(tokens[i + n - 1]);
  }
  std::sort(banned->begin(), banned->end());
  banned->erase(std::unique(banned->begin(), banned->end()), banned->end());
}

// Restores the model's train/eval mode when decoding ends (also on an exception).
class EvalScope {
 public:
  explicit EvalScope(models::Seq2Seq& m) : m_(m), was_training_(m.training()) { m_.Eval(); }
  ~EvalScope() { m_.Train(was_training_); }

 private:
  models::Seq2Seq& m_;
  bool was_training_;
};

void DecodeChunk(models::Seq2Seq& model, const std::vector<Example>& sources,
                 const std::vector<int64_t>& chunk, const SearchOptions& opt,
                 std::vector<std::vector<Hypothesis>>* results) {
  const int64_t b = static_cast<int64_t>(chunk.size());
  const models::Batch in = MakeBatch(sources, chunk);
  std::vector<int64_t> max_len(b);
  for (int64_t r = 0; r < b; ++r) {
    const int64_t n = sources[chunk[r]].source_length();
    max_len[r] =
        static_cast<int64_t>(opt.max_len_ratio * static_cast<double>(n)) + opt.max_len_extra;
    // The Transformer's and pervasive attention's positions end at max_positions (bos takes
    // the first).
    if (model.config().arch == models::Arch::kTransformer ||
        model.config().arch == models::Arch::kPervasive)
      max_len[r] = std::min<int64_t>(max_len[r], model.config().max_positions - 1);
  }
  std::unique_ptr<models::DecoderState> state = model.StartBatch(in);
  // Under a shortlist each step scores the kept ids only: column j of its log-probabilities is
  // target id kept[j] (sorted, so the columns keep the ids' order and ties still go to the
  // smaller id). Without one, column j is id j.
  std::vector<int64_t> kept;
  if (opt.output_ids) {
    std::vector<std::vector<int64_t>> batch_sources;
    for (int64_t i : chunk) batch_sources.push_back(sources[i].src);
    kept = opt.output_ids(batch_sources);
    model.RestrictOutput(*state, kept);
  }
  const bool restricted = opt.output_ids != nullptr;
  auto id_of = [&](int64_t column) { return restricted ? kept[column] : column; };
  const int64_t eos_column =
      restricted
          ? std::lower_bound(kept.begin(), kept.end(), int64_t{SpecialIds::kEos}) - kept.begin()
          : int64_t{SpecialIds::kEos};
  std::vector<Live> live(b);
  for (int64_t r = 0; r < b; ++r) live[r].sentence = r;
  std::vector<std::vector<Hypothesis>> finished(b);
  std::vector<char> done(b, 0);
  auto finish = [&](const Live& h, double eos_log_prob, std::vector<float> eos_attention) {
    Hypothesis out;
    out.tokens = h.tokens;
    out.log_prob = h.log_prob + eos_log_prob;
    out.score = out.log_prob / Penalty(h.tokens.size() + 1, opt.length_penalty);
    if (opt.keep_attention) {
      out.attention = h.attention;
      out.attention.push_back(std::move(eos_attention));
    }
    finished[h.sentence].push_back(std::move(out));
  };
  Tensor tokens = Tensor::Full({b}, static_cast<double>(SpecialIds::kBos), DType::kI64);
  while (!live.empty()) {
    Tensor attn;
    Tensor logp = model.Step(*state, tokens, opt.keep_attention ? &attn : nullptr).Contiguous();
    const int64_t v = logp.size(1);
    const float* lp = logp.data<float>();
    ATTEND_CHECK(!opt.keep_attention || attn.defined(),
                 "translate: this model gives no attention weights (arch ",
                 models::NameOf(model.config().arch), "), so there are no alignments to keep");
    Tensor attn_c = opt.keep_attention ? attn.Contiguous() : Tensor();
    auto attention_row = [&](int64_t row) {
      if (!opt.keep_attention) return std::vector<float>();
      const float* a = attn_c.data<float>() + row * attn_c.size(1);
      const int64_t len = std::min<int64_t>(
          attn_c.size(1), model.AttendedLength(sources[chunk[live[row].sentence]].source_length()));
      return std::vector<float>(a, a + len);
    };
    // Candidates per sentence: (log-prob, row, token), the `beam` best tokens of each row.
    struct Cand {
      double log_prob;
      int64_t row, token;
    };
    std::vector<std::vector<Cand>> cands(b);
    const int64_t k = std::min<int64_t>(opt.beam, v);
    std::vector<int64_t> top(k);
    Tensor row_max;  // greedy: each row's largest log-prob (the Max op's SIMD kernel)
    if (k == 1) row_max = Max(logp, {1});
    const float* best_of_row = k == 1 ? row_max.data<float>() : nullptr;
    std::vector<int64_t> banned;
    for (int64_t row = 0; row < static_cast<int64_t>(live.size()); ++row) {
      const Live& h = live[row];
      const float* p = lp + row * v;
      if (static_cast<int64_t>(h.tokens.size()) >= max_len[h.sentence]) {
        // Out of length: this hypothesis ends here.
        finish(h, p[eos_column], attention_row(row));
        continue;
      }
      BannedTokens(h.tokens, opt.no_repeat_ngram, &banned);
      auto allowed = [&](int64_t column) {
        const int64_t id = id_of(column);
        return id != SpecialIds::kPad && id != SpecialIds::kBos &&
               !std::binary_search(banned.begin(), banned.end(), id);
      };
      // The k best tokens by (log-prob desc, id asc) in one pass, kept sorted in `top`; padding,
      // bos and the tokens that would repeat an n-gram are never generated.
      int64_t kk = 0;
      bool found = false;
      if (k == 1) {
        // Greedy: the vector max, then its first position (fewer comparisons than the scan);
        // the scan below when that token is not allowed (or the row holds NaN).
        const float best = best_of_row[row];
        for (int64_t id = 0; id < v; ++id)
          if (p[id] == best) {
            found = allowed(id);
            if (found) top[kk++] = id;
            break;
          }
      }
      auto consider = [&](int64_t id) {
        if (!allowed(id)) return;
        const float q = p[id];
        if (kk == k && !(q > p[top[k - 1]])) return;  // ties keep the smaller id
        int64_t at = kk < k ? kk++ : k - 1;
        for (; at > 0 && q > p[top[at - 1]]; --at) top[at] = top[at - 1];
        top[at] = id;
      };
      if (!found) {
        // The first k allowed tokens fill `top`; after them a token enters only above the k-th
        // best so far, which only rises, so a block of 16 with none above it at the block's start
        // is passed over (one branch-free comparison per token) and the rest
        // is scanned as before: the same tokens. (The scalar scan of every token was a fifth of
        // an int8 RNN beam search's profile; results.md, "Issue 20, fifth pass".)
        constexpr int64_t kBlock = 16;
        int64_t id = 0;
        for (; id < v && kk < k; ++id) consider(id);
        while (id < v) {
          const int64_t end = std::min(v, id + kBlock);
          if (end - id == kBlock) {
            const float threshold = p[top[k - 1]];
            bool above = false;
            for (int64_t j = 0; j < kBlock; ++j) above |= p[id + j] > threshold;
            if (!above) {
              id = end;
              continue;
            }
          }
          for (; id < end; ++id) consider(id);
        }
      }
      for (int64_t j = 0; j < kk; ++j)
        cands[h.sentence].push_back({h.log_prob + p[top[j]], row, id_of(top[j])});
    }
    std::vector<Live> next;
    std::vector<int64_t> rows;
    for (int64_t sent = 0; sent < b; ++sent) {
      if (done[sent]) continue;
      auto& c = cands[sent];
      std::stable_sort(c.begin(), c.end(),
                       [](const Cand& x, const Cand& y) { return x.log_prob > y.log_prob; });
      // The `beam` best extensions live on; every eos ranked before the last of them finishes.
      int64_t kept = 0;
      double best_live = -std::numeric_limits<double>::infinity();
      for (const Cand& cand : c) {
        if (kept >= opt.beam) break;
        const Live& parent = live[cand.row];
        if (cand.token == SpecialIds::kEos) {
          finish(parent, cand.log_prob - parent.log_prob, attention_row(cand.row));
          continue;
        }
        Live h;
        h.tokens = parent.tokens;
        h.tokens.push_back(cand.token);
        h.log_prob = cand.log_prob;
        h.sentence = sent;
        if (opt.keep_attention) {
          h.attention = parent.attention;
          h.attention.push_back(attention_row(cand.row));
        }
        best_live = std::max(best_live, h.log_prob);
        next.push_back(std::move(h));
        rows.push_back(cand.row);
        ++kept;
      }
      // Done when nothing lives on, or when no live hypothesis can still enter the n-best: every
      // token adds a log-probability <= 0, so a descendant's log-prob is at most its ancestor's,
      // and the length penalty divides by at most Penalty(longest final length).
      bool stop = kept == 0;
      if (!stop && static_cast<int64_t>(finished[sent].size()) >= opt.nbest) {
        const double bound =
            best_live / Penalty(static_cast<size_t>(max_len[sent]) + 1, opt.length_penalty);
        stop = !(bound > NthBestScore(finished[sent], opt.nbest));
      }
      if (stop) {
        done[sent] = 1;
        // Drop this sentence's live hypotheses.
        for (size_t i = next.size(); i-- > 0;) {
          if (next[i].sentence != sent) break;
          next.pop_back();
          rows.pop_back();
        }
      }
    }
    live = std::move(next);
    if (live.empty()) break;
    // Every hypothesis kept in place (greedy search while no sentence has ended, or a beam that
    // kept its order) leaves the state as it is: no copy of the model's per-row tensors.
    bool identity = rows.size() == static_cast<size_t>(state->rows());
    for (size_t i = 0; identity && i < rows.size(); ++i)
      identity = rows[i] == static_cast<int64_t>(i);
    if (!identity)
      model.Select(*state, Tensor::FromVector(rows, {static_cast<int64_t>(rows.size())}));
    std::vector<int64_t> last(live.size());
    for (size_t i = 0; i < live.size(); ++i) last[i] = live[i].tokens.back();
    tokens = Tensor::FromVector(last, {static_cast<int64_t>(last.size())});
  }
  for (int64_t sent = 0; sent < b; ++sent) {
    auto& f = finished[sent];
    std::stable_sort(f.begin(), f.end(),
                     [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
    if (static_cast<int64_t>(f.size()) > opt.nbest) f.resize(opt.nbest);
    (*results)[chunk[sent]] = std::move(f);
  }
}

}  // namespace

std::vector<std::vector<Hypothesis>> Translate(models::Seq2Seq& model,
                                               const std::vector<std::vector<int64_t>>& sources,
                                               const SearchOptions& opt) {
  std::vector<Example> examples(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    examples[i].src = sources[i];
    examples[i].index = static_cast<int64_t>(i);
  }
  return TranslateExamples(model, examples, opt);
}

std::vector<std::vector<Hypothesis>> TranslateExamples(models::Seq2Seq& model,
                                                       const std::vector<Example>& sources,
                                                       const SearchOptions& opt) {
  ATTEND_CHECK(opt.beam >= 1, "translate: beam size must be at least 1, got ", opt.beam);
  ATTEND_CHECK(opt.nbest >= 1 && opt.nbest <= opt.beam, "translate: n-best ", opt.nbest,
               " must be in 1..beam (", opt.beam, ")");
  ATTEND_CHECK(opt.length_penalty >= 0, "translate: the length penalty must be >= 0, got ",
               opt.length_penalty);
  ATTEND_CHECK(opt.no_repeat_ngram >= 0, "translate: --no-repeat-ngram must be >= 0, got ",
               opt.no_repeat_ngram);
  ATTEND_CHECK(opt.batch_size >= 1, "translate: batch size must be positive");
  ATTEND_CHECK(opt.max_len_ratio >= 0 && opt.max_len_extra >= 1,
               "translate: the output length limit must allow at least one token");
  NoGradGuard no_grad;
  EvalScope eval(model);
  std::vector<std::vector<Hypothesis>> results(sources.size());
  // Empty sources translate to empty outputs; the others are decoded in chunks of similar length.
  std::vector<int64_t> order;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].source_length() == 0) {
      results[i].push_back(Hypothesis{});
    } else {
      order.push_back(static_cast<int64_t>(i));
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) {
    return sources[a].source_length() < sources[c].source_length();
  });
  for (size_t at = 0; at < order.size(); at += opt.batch_size) {
    std::vector<int64_t> chunk(order.begin() + at,
                               order.begin() + std::min(order.size(), at + opt.batch_size));
    DecodeChunk(model, sources, chunk, opt, &results);
  }
  return results;
}

std::string HardAlignment(const std::vector<std::vector<float>>& attention) {
  std::string out;
  // The last row belongs to eos; it aligns no target token.
  const size_t n = attention.empty() ? 0 : attention.size() - 1;
  for (size_t t = 0; t < n; ++t) {
    const auto& row = attention[t];
    if (row.empty()) continue;
    const size_t j = std::max_element(row.begin(), row.end()) - row.begin();
    if (!out.empty()) out += ' ';
    out += std::to_string(j) + "-" + std::to_string(t);
  }
  return out;
}

std::string SoftAlignment(const std::vector<std::vector<float>>& attention, int precision) {
  std::string out;
  const size_t n = attention.empty() ? 0 : attention.size() - 1;
  char buf[64];
  for (size_t t = 0; t < n; ++t) {
    if (t) out += " | ";
    for (size_t j = 0; j < attention[t].size(); ++j) {
      std::snprintf(buf, sizeof(buf), "%s%.*f", j ? " " : "", precision, attention[t][j]);
      out += buf;
    }
  }
  return out;
}

}  // namespace attend::nmt
