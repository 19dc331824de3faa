// attend.attention: every mechanism of attend/attention.h, attention_models.h and
// additive_attention.h. Functions keep the C++ names in snake_case, modules the C++ class names;
// whatever returns a summary and its weights in C++ returns both here, as a tuple.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attend/additive_attention.h"
#include "attend/attention.h"
#include "attend/attention_models.h"
#include "attend/autograd.h"
#include "attend/error.h"
#include "bind.h"

namespace attend::python {
namespace {

using namespace pybind11::literals;
namespace at = attend::attention;

// An optional tensor argument: None is the C++ side's undefined tensor.
Tensor Optional(const py::object& obj, const char* what) {
  return obj.is_none() ? Tensor() : ToTensor(obj, what);
}

py::object OrNone(const Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }

Generator& Gen(Generator* gen) { return gen ? *gen : DefaultGenerator(); }

DType DT(const std::string& name) { return DTypeFromName(name); }

// Sizes a constructor would otherwise pass on unchecked.
void CheckPositive(const char* op, std::initializer_list<std::pair<const char*, int64_t>> sizes) {
  for (const auto& [name, value] : sizes) {
    ATTEND_CHECK(value > 0, op, ": ", name, " must be positive, got ", value);
  }
}

py::tuple Pair(const at::Attended& a) {
  return py::make_tuple(OrNone(a.context), OrNone(a.weights));
}

void BindScores(py::module_& m) {
  py::class_<at::ScoreFunction, nn::Module, std::shared_ptr<at::ScoreFunction>>(
      m, "ScoreFunction", "Scores between queries [B, Tq, Dq] and keys [B, Tk, Dk]: [B, Tq, Tk].")
      .def(
          "prepare_keys",
          [](const at::ScoreFunction& s, const py::object& keys) {
            return s.PrepareKeys(ToTensor(keys, "keys"));
          },
          "keys"_a, "The query-independent work on the keys, computed once per source.")
      .def(
          "scores",
          [](const at::ScoreFunction& s, const py::object& query, const py::object& pk) {
            return s.Scores(ToTensor(query, "query"), ToTensor(pk, "prepared_keys"));
          },
          "query"_a, "prepared_keys"_a, "Scores [B, Tq, Tk] of query over prepare_keys(keys).")
      .def(
          "forward",
          [](const at::ScoreFunction& s, const py::object& query, const py::object& keys) {
            return s.Forward(ToTensor(query, "query"), ToTensor(keys, "keys"));
          },
          "query"_a, "keys"_a, "Scores [B, Tq, Tk] of query [B, Tq, Dq] over keys [B, Tk, Dk].")
      .def(
          "__call__",
          [](const at::ScoreFunction& s, const py::object& query, const py::object& keys) {
            return s.Forward(ToTensor(query, "query"), ToTensor(keys, "keys"));
          },
          "query"_a, "keys"_a)
      .def_property_readonly("name", [](const at::ScoreFunction& s) { return s.name(); });

  py::class_<at::AdditiveScore, at::ScoreFunction, std::shared_ptr<at::AdditiveScore>>(
      m, "AdditiveScore", "Bahdanau: v^T tanh(W q + U k_j + b); prepare_keys gives U k + b.")
      .def(py::init([](int64_t query_dim, int64_t key_dim, int64_t attn_dim, const std::string& dt,
                       Generator* gen) {
             CheckPositive(
                 "AdditiveScore",
                 {{"query_dim", query_dim}, {"key_dim", key_dim}, {"attn_dim", attn_dim}});
             return std::make_shared<at::AdditiveScore>(query_dim, key_dim, attn_dim, Gen(gen),
                                                        DT(dt));
           }),
           "query_dim"_a, "key_dim"_a, "attn_dim"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def_readonly("query_proj", &at::AdditiveScore::query_proj)
      .def_readonly("key_proj", &at::AdditiveScore::key_proj)
      .def_readonly("v", &at::AdditiveScore::v);

  py::class_<at::DotScore, at::ScoreFunction, std::shared_ptr<at::DotScore>>(
      m, "DotScore", "Luong dot: q . k_j (Dq == Dk).")
      .def(py::init([]() { return std::make_shared<at::DotScore>(); }));
  py::class_<at::ScaledDotScore, at::ScoreFunction, std::shared_ptr<at::ScaledDotScore>>(
      m, "ScaledDotScore", "Vaswani: q . k_j / sqrt(d).")
      .def(py::init([]() { return std::make_shared<at::ScaledDotScore>(); }));

  py::class_<at::GeneralScore, at::ScoreFunction, std::shared_ptr<at::GeneralScore>>(
      m, "GeneralScore", "Luong general (bilinear): q^T W k_j, W [Dq, Dk].")
      .def(py::init([](int64_t query_dim, int64_t key_dim, const std::string& dt, Generator* gen) {
             CheckPositive("GeneralScore", {{"query_dim", query_dim}, {"key_dim", key_dim}});
             return std::make_shared<at::GeneralScore>(query_dim, key_dim, Gen(gen), DT(dt));
           }),
           "query_dim"_a, "key_dim"_a, "dtype"_a = "float32", "generator"_a = py::none())
      .def_readonly("weight", &at::GeneralScore::weight);

  py::class_<at::ConcatScore, at::ScoreFunction, std::shared_ptr<at::ConcatScore>>(
      m, "ConcatScore", "Luong concat: v^T tanh(W [q; k_j]), W [A, Dq + Dk], no bias.")
      .def(py::init([](int64_t query_dim, int64_t key_dim, int64_t attn_dim, const std::string& dt,
                       Generator* gen) {
             CheckPositive(
                 "ConcatScore",
                 {{"query_dim", query_dim}, {"key_dim", key_dim}, {"attn_dim", attn_dim}});
             return std::make_shared<at::ConcatScore>(query_dim, key_dim, attn_dim, Gen(gen),
                                                      DT(dt));
           }),
           "query_dim"_a, "key_dim"_a, "attn_dim"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def_readonly("weight", &at::ConcatScore::weight)
      .def_readonly("v", &at::ConcatScore::v)
      .def_readonly("query_dim", &at::ConcatScore::query_dim)
      .def_readonly("key_dim", &at::ConcatScore::key_dim);

  py::class_<at::LocationScore, at::ScoreFunction, std::shared_ptr<at::LocationScore>>(
      m, "LocationScore",
      "Luong location: W_a q over max_source_len positions, the first Tk used (keys give Tk).")
      .def(py::init([](int64_t query_dim, int64_t max_source_len, const std::string& dt,
                       Generator* gen) {
             CheckPositive("LocationScore",
                           {{"query_dim", query_dim}, {"max_source_len", max_source_len}});
             return std::make_shared<at::LocationScore>(query_dim, max_source_len, Gen(gen),
                                                        DT(dt));
           }),
           "query_dim"_a, "max_source_len"_a, "dtype"_a = "float32", "generator"_a = py::none())
      .def_readonly("proj", &at::LocationScore::proj);

  py::class_<at::LocationAwareScore, at::ScoreFunction, std::shared_ptr<at::LocationAwareScore>>(
      m, "LocationAwareScore",
      "Chorowski's hybrid score v^T tanh(W q + V h_j + U (F * alpha_prev)_j + b), one step.")
      .def(py::init([](int64_t query_dim, int64_t key_dim, int64_t attn_dim, int64_t filters,
                       int64_t width, const std::string& dt, Generator* gen) {
             CheckPositive(
                 "LocationAwareScore",
                 {{"query_dim", query_dim}, {"key_dim", key_dim}, {"attn_dim", attn_dim}});
             return std::make_shared<at::LocationAwareScore>(query_dim, key_dim, attn_dim, filters,
                                                             width, Gen(gen), DT(dt));
           }),
           "query_dim"_a, "key_dim"_a, "attn_dim"_a, "filters"_a, "width"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def(
          "scores",
          [](const at::LocationAwareScore& s, const py::object& query, const py::object& pk,
             const py::object& previous) {
            Tensor q = ToTensor(query, "query"), k = ToTensor(pk, "prepared_keys");
            if (previous.is_none()) return s.Scores(q, k);
            return s.Scores(q, k, ToTensor(previous, "previous"));
          },
          "query"_a, "prepared_keys"_a, "previous"_a = py::none(),
          "Scores [B, 1, Tk] of query [B, 1, Dq]; previous: last step's weights [B, Tk] "
          "(None: no location features).")
      .def_readonly("query_proj", &at::LocationAwareScore::query_proj)
      .def_readonly("key_proj", &at::LocationAwareScore::key_proj)
      .def_readonly("location_proj", &at::LocationAwareScore::location_proj)
      .def_readonly("filters", &at::LocationAwareScore::filters)
      .def_readonly("v", &at::LocationAwareScore::v);

  py::class_<at::QkvScore, at::ScoreFunction, std::shared_ptr<at::QkvScore>>(
      m, "QkvScore",
      "Query-key-value attention over a decoder query: (W_q s) . (W_k h_j) / sqrt(A), values "
      "W_v h_j.")
      .def(py::init([](int64_t query_dim, int64_t key_dim, int64_t attn_dim, int64_t value_dim,
                       const std::string& dt, Generator* gen) {
             return std::make_shared<at::QkvScore>(query_dim, key_dim, attn_dim, value_dim,
                                                   Gen(gen), DT(dt));
           }),
           "query_dim"_a, "key_dim"_a, "attn_dim"_a, "value_dim"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def(
          "prepare_values",
          [](const at::QkvScore& s, const py::object& keys) {
            return s.PrepareValues(ToTensor(keys, "keys"));
          },
          "keys"_a, "The values W_v h_j [B, Tk, Dv].")
      .def(
          "attend",
          [](const at::QkvScore& s, const py::object& query, const py::object& keys,
             const py::object& mask) {
            return Pair(
                s.Attend(ToTensor(query, "query"), ToTensor(keys, "keys"), Optional(mask, "mask")));
          },
          "query"_a, "keys"_a, "mask"_a = py::none(),
          "(context [B, Tq, Dv], weights [B, Tq, Tk]); mask bool, true = excluded.")
      .def_readonly("query_proj", &at::QkvScore::query_proj)
      .def_readonly("key_proj", &at::QkvScore::key_proj)
      .def_readonly("value_proj", &at::QkvScore::value_proj);

  py::class_<at::CosineScore, at::ScoreFunction, std::shared_ptr<at::CosineScore>>(
      m, "CosineScore", "NTM content addressing: beta * cos(q, k_j).")
      .def(py::init([](double beta, double eps) {
             return std::make_shared<at::CosineScore>(beta, eps);
           }),
           "beta"_a = 1.0, "eps"_a = 1e-8)
      .def(
          "scores_with_strength",
          [](const at::CosineScore& s, const py::object& query, const py::object& keys,
             const py::object& beta) {
            return s.ScoresWithStrength(ToTensor(query, "query"), ToTensor(keys, "keys"),
                                        ToTensor(beta, "beta"));
          },
          "query"_a, "keys"_a, "beta"_a, "cos(q, k_j) times a strength beta [B, Tq].")
      .def_readwrite("beta", &at::CosineScore::beta)
      .def_readwrite("eps", &at::CosineScore::eps);

  py::class_<at::MwanScore, at::ScoreFunction, std::shared_ptr<at::MwanScore>>(
      m, "MwanScore",
      "MwAN element-wise scores: kind 'dot' v^T tanh(W (q * k_j)), 'minus' v^T tanh(W (q - k_j)).")
      .def(py::init([](const std::string& kind, int64_t dim, int64_t attn_dim,
                       const std::string& dt, Generator* gen) {
             ATTEND_CHECK(kind == "dot" || kind == "minus",
                          "MwanScore: kind must be 'dot' or "
                          "'minus', got '",
                          kind, "'");
             CheckPositive("MwanScore", {{"dim", dim}, {"attn_dim", attn_dim}});
             return std::make_shared<at::MwanScore>(
                 kind == "dot" ? at::MwanScore::Kind::kDot : at::MwanScore::Kind::kMinus, dim,
                 attn_dim, Gen(gen), DT(dt));
           }),
           "kind"_a, "dim"_a, "attn_dim"_a, "dtype"_a = "float32", "generator"_a = py::none())
      .def_property_readonly("kind",
                             [](const at::MwanScore& s) {
                               return s.kind == at::MwanScore::Kind::kDot ? "dot" : "minus";
                             })
      .def_readonly("weight", &at::MwanScore::weight)
      .def_readonly("v", &at::MwanScore::v);

  m.def(
      "match_score",
      [](const py::object& query, const py::object& keys) {
        return at::MatchScore(ToTensor(query, "query"), ToTensor(keys, "keys"));
      },
      "query"_a, "keys"_a, "ABCNN match score 1 / (1 + |q - k_j|): [B, Tq, Tk].");
  m.def(
      "fused_additive_scores",
      [](const py::object& qp, const py::object& kp, const py::object& v) {
        return at::FusedAdditiveScores(ToTensor(qp, "query_proj"), ToTensor(kp, "key_proj"),
                                       ToTensor(v, "v"));
      },
      "query_proj"_a, "key_proj"_a, "v"_a,
      "sum_a v[a] tanh(query_proj[b, t, a] + key_proj[b, j, a]) in one op: [B, Tq, Tk].");
}

void BindWeights(py::module_& m) {
  m.def("set_fused_kernels", &at::SetFusedKernels, "enabled"_a,
        "Whether the fused kernels run where they apply (process-wide; on by default).");
  m.def("fused_kernels", &at::FusedKernels, "Whether the fused kernels are on.");
  m.def(
      "check_mask",
      [](const py::object& mask, const std::vector<int64_t>& shape, const std::string& op) {
        at::CheckMask(ToTensor(mask, "mask"), Shape(shape), op.c_str());
      },
      "mask"_a, "scores_shape"_a, "op"_a = "check_mask",
      "Raises attend.Error unless mask is bool and broadcasts to scores_shape.");
  m.def(
      "weighted_sum",
      [](const py::object& w, const py::object& v) {
        return at::WeightedSum(ToTensor(w, "weights"), ToTensor(v, "values"));
      },
      "weights"_a, "values"_a, "weights @ values: [B, Tq, Tk] x [B, Tk, Dv] -> [B, Tq, Dv].");
  m.def(
      "soft_weights",
      [](const py::object& s, const py::object& mask) {
        return at::SoftWeights(ToTensor(s, "scores"), Optional(mask, "mask"));
      },
      "scores"_a, "mask"_a = py::none(),
      "Softmax over the last dim; mask bool, true = excluded (a fully masked row gives zeros).");
  m.def(
      "top_k_weights",
      [](const py::object& s, int64_t k, const py::object& mask) {
        return at::TopKWeights(ToTensor(s, "scores"), k, Optional(mask, "mask"));
      },
      "scores"_a, "k"_a, "mask"_a = py::none(),
      "Softmax over the k largest scores of each row; the others get weight 0.");
  m.def(
      "sparsemax",
      [](const py::object& s, const py::object& mask) {
        return at::Sparsemax(ToTensor(s, "scores"), Optional(mask, "mask"));
      },
      "scores"_a, "mask"_a = py::none(),
      "Sparsemax over the last dim: the Euclidean projection of the scores onto the simplex.");

  py::class_<at::HardAttention> hard(
      m, "HardAttention",
      "Hard attention (Show, Attend and Tell): one-hot weights; mode 'argmax', 'reinforce' or "
      "'gumbel_straight_through'.");
  hard.def(py::init([](const std::string& mode, uint64_t seed, double tau, double decay) {
             at::HardAttention::Mode md = at::HardAttention::Mode::kArgmax;
             if (mode == "reinforce") {
               md = at::HardAttention::Mode::kReinforce;
             } else if (mode == "gumbel_straight_through") {
               md = at::HardAttention::Mode::kGumbelStraightThrough;
             } else {
               ATTEND_CHECK(mode == "argmax",
                            "HardAttention: mode must be 'argmax', "
                            "'reinforce' or 'gumbel_straight_through', got '",
                            mode, "'");
             }
             ATTEND_CHECK(tau > 0, "HardAttention: tau must be positive, got ", tau);
             return std::make_unique<at::HardAttention>(md, seed, tau, decay);
           }),
           "mode"_a = "argmax", "seed"_a = 0, "tau"_a = 1.0, "baseline_decay"_a = 0.9)
      .def(
          "weights",
          [](at::HardAttention& h, const py::object& s, const py::object& mask) {
            return h.Weights(ToTensor(s, "scores"), Optional(mask, "mask"));
          },
          "scores"_a, "mask"_a = py::none(), "One-hot weights [.., Tk] over the scores.")
      .def(
          "__call__",
          [](at::HardAttention& h, const py::object& s, const py::object& mask) {
            return h.Weights(ToTensor(s, "scores"), Optional(mask, "mask"));
          },
          "scores"_a, "mask"_a = py::none())
      .def(
          "reinforce_loss",
          [](at::HardAttention& h, const py::object& reward) {
            return h.ReinforceLoss(ToTensor(reward, "reward"));
          },
          "reward"_a,
          "'reinforce': the surrogate loss of every sample since the last call; reward [B].")
      .def_property_readonly("mode",
                             [](const at::HardAttention& h) {
                               switch (h.mode) {
                                 case at::HardAttention::Mode::kReinforce: return "reinforce";
                                 case at::HardAttention::Mode::kGumbelStraightThrough:
                                   return "gumbel_straight_through";
                                 default: return "argmax";
                               }
                             })
      .def_readwrite("tau", &at::HardAttention::tau)
      .def_readwrite("baseline_decay", &at::HardAttention::baseline_decay)
      .def_readwrite("baseline", &at::HardAttention::baseline)
      .def_readonly("baseline_initialized", &at::HardAttention::baseline_initialized)
      .def_readonly("generator", &at::HardAttention::gen, "The sampling stream.");

  m.def("local_monotonic_mask", &at::LocalMonotonicMask, "tq"_a, "tk"_a, "window"_a,
        "Luong local-m: bool [Tq, Tk], true outside [t - window, t + window].");

  py::class_<at::LocalPredictive, nn::Module, std::shared_ptr<at::LocalPredictive>>(
      m, "LocalPredictive",
      "Luong local-p: a predicted centre per query, softmax within the window times a Gaussian.")
      .def(py::init([](int64_t query_dim, int64_t hidden_dim, int64_t window, const std::string& dt,
                       Generator* gen) {
             CheckPositive("LocalPredictive",
                           {{"query_dim", query_dim}, {"hidden_dim", hidden_dim}});
             return std::make_shared<at::LocalPredictive>(query_dim, hidden_dim, window, Gen(gen),
                                                          DT(dt));
           }),
           "query_dim"_a, "hidden_dim"_a, "window"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def(
          "weights",
          [](const at::LocalPredictive& lp, const py::object& scores, const py::object& query,
             const py::object& lengths) {
            Tensor centers;
            Tensor w = lp.Weights(ToTensor(scores, "scores"), ToTensor(query, "query"),
                                  Optional(lengths, "source_lengths"), &centers);
            return py::make_tuple(w, centers);
          },
          "scores"_a, "query"_a, "source_lengths"_a = py::none(),
          "(weights [B, Tq, Tk], centres [B, Tq]); scores [B, Tq, Tk], query [B, Tq, Dq], "
          "source_lengths int64 [B] or None (all Tk).")
      .def_readonly("proj", &at::LocalPredictive::proj)
      .def_readonly("v", &at::LocalPredictive::v)
      .def_readonly("window", &at::LocalPredictive::window);
}

void BindQkv(py::module_& m) {
  m.def(
      "scaled_dot_product_attention",
      [](const py::object& q, const py::object& k, const py::object& v, const py::object& mask,
         bool causal, double dropout, bool training, Generator* gen) {
        return Pair(at::ScaledDotProductAttention(ToTensor(q, "query"), ToTensor(k, "key"),
                                                  ToTensor(v, "value"), Optional(mask, "attn_mask"),
                                                  causal, dropout, training, &Gen(gen)));
      },
      "query"_a, "key"_a, "value"_a, "attn_mask"_a = py::none(), "is_causal"_a = false,
      "dropout_p"_a = 0.0, "training"_a = true, "generator"_a = py::none(),
      "softmax(q k^T / sqrt(d)) v: (context [.., Tq, Dv], weights [.., Tq, Tk]). attn_mask "
      "bool, true = EXCLUDED (unlike torch's); dropout on the weights when training.");
  m.def("causal_mask", &at::CausalMask, "tq"_a, "tk"_a,
        "bool [Tq, Tk], true where key j is in query i's future (j > i + Tk - Tq).");
  m.def(
      "fused_scaled_dot_product_attention",
      [](const py::object& q, const py::object& k, const py::object& v, const py::object& kpm,
         bool causal, double dropout, bool training, Generator* gen) {
        return at::FusedScaledDotProductAttention(
            ToTensor(q, "query"), ToTensor(k, "key"), ToTensor(v, "value"),
            Optional(kpm, "key_padding_mask"), causal, dropout, training, &Gen(gen));
      },
      "query"_a, "key"_a, "value"_a, "key_padding_mask"_a = py::none(), "is_causal"_a = false,
      "dropout_p"_a = 0.0, "training"_a = true, "generator"_a = py::none(),
      "The context of scaled_dot_product_attention by one fused kernel: q [B, H, Tq, D] (or "
      "[B, T, D]), key_padding_mask bool [B, Tk] (true = excluded) -> [B, H, Tq, Dv].");

  py::class_<at::KVCache>(m, "KVCache",
                          "Per-head keys and values [N, H, capacity, hd], positions [0, length) "
                          "filled, for incremental decoding.")
      .def(py::init<>())
      .def_readwrite("k", &at::KVCache::k)
      .def_readwrite("v", &at::KVCache::v)
      .def_readwrite("length", &at::KVCache::length)
      .def_property_readonly("capacity", &at::KVCache::capacity)
      .def_static(
          "empty",
          [](int64_t n, int64_t heads, int64_t capacity, int64_t head_dim, const std::string& dt) {
            CheckPositive("KVCache.empty", {{"n", n}, {"heads", heads}, {"head_dim", head_dim}});
            ATTEND_CHECK(capacity >= 0, "KVCache.empty: capacity must be >= 0, got ", capacity);
            return at::KVCache::Empty(n, heads, capacity, head_dim, DT(dt));
          },
          "n"_a, "heads"_a, "capacity"_a, "head_dim"_a, "dtype"_a = "float32",
          "Room for capacity positions of n rows, none filled.")
      .def(
          "reorder",
          [](at::KVCache& c, const std::vector<int64_t>& rows, int64_t capacity) {
            ATTEND_CHECK(c.k.defined() && c.v.defined(), "KVCache.reorder: the cache is empty");
            c.Reorder(rows, capacity);
          },
          "rows"_a, "capacity"_a, "Keeps rows `rows` in that order, with room for capacity.");

  py::class_<at::PrepackedAttention>(
      m, "PrepackedAttention",
      "A MultiHeadAttention's weights packed for decoding steps (MultiHeadAttention.pack).");

  using Mha = at::MultiHeadAttention;
  auto forward = [](Mha& self, const py::object& query, const py::object& key,
                    const py::object& value, const py::object& kpm, bool need_weights,
                    const py::object& attn_mask, bool average, bool causal) {
    return Pair(self.Forward(ToTensor(query, "query"), ToTensor(key, "key"),
                             ToTensor(value, "value"), Optional(kpm, "key_padding_mask"),
                             Optional(attn_mask, "attn_mask"), causal, average, need_weights));
  };
  py::class_<Mha, nn::Module, std::shared_ptr<Mha>>(
      m, "MultiHeadAttention",
      "Multi-head attention with torch.nn.MultiheadAttention's layout (batch_first): "
      "in_proj_weight [3E, E], in_proj_bias [3E], out_proj (E -> E).")
      .def(py::init([](int64_t embed_dim, int64_t num_heads, double dropout, bool bias,
                       const std::string& dt, Generator* gen) {
             ATTEND_CHECK(dropout >= 0.0 && dropout <= 1.0,
                          "MultiHeadAttention: dropout must be in [0, 1], got ", dropout);
             return std::make_shared<Mha>(embed_dim, num_heads, Gen(gen), dropout, bias, DT(dt));
           }),
           "embed_dim"_a, "num_heads"_a, "dropout"_a = 0.0, "bias"_a = true, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def("forward", forward, "query"_a, "key"_a, "value"_a, "key_padding_mask"_a = py::none(),
           "need_weights"_a = true, "attn_mask"_a = py::none(), "average_attn_weights"_a = true,
           "is_causal"_a = false,
           "(output [B, Tq, E], weights [B, Tq, Tk] or per head [B, H, Tq, Tk], None without "
           "need_weights). Masks bool, true = excluded: key_padding_mask [B, Tk], attn_mask "
           "[Tq, Tk] or [B*H, Tq, Tk].")
      .def("__call__", forward, "query"_a, "key"_a, "value"_a, "key_padding_mask"_a = py::none(),
           "need_weights"_a = true, "attn_mask"_a = py::none(), "average_attn_weights"_a = true,
           "is_causal"_a = false)
      .def(
          "self_attention",
          [](Mha& self, const py::object& x, const py::object& pad, bool causal, bool need_weights,
             bool average) {
            Tensor w;
            Tensor out = self.SelfAttention(ToTensor(x, "x"), Optional(pad, "pad_mask"), causal,
                                            need_weights ? &w : nullptr, average);
            return py::make_tuple(out, OrNone(w));
          },
          "x"_a, "pad_mask"_a = py::none(), "is_causal"_a = false, "need_weights"_a = true,
          "average_attn_weights"_a = true,
          "Self-attention of x [B, T, E], q, k, v in one GEMM: (output, weights or None).")
      .def(
          "cross_keys_values",
          [](const Mha& self, const py::object& memory) {
            return self.CrossKeysValues(ToTensor(memory, "memory"));
          },
          "memory"_a, "The KVCache of memory [B, S, E] for cross_attention.")
      .def(
          "cross_attention",
          [](Mha& self, const py::object& x, const at::KVCache& memory, const py::object& pad,
             bool need_weights, const at::PrepackedAttention* packed, bool average) {
            ATTEND_CHECK(memory.k.defined() && memory.v.defined(),
                         "MultiHeadAttention.cross_attention: the memory cache is empty");
            Tensor w;
            Tensor out = self.CrossAttention(ToTensor(x, "x"), memory, Optional(pad, "pad_mask"),
                                             need_weights ? &w : nullptr, packed, average);
            return py::make_tuple(out, OrNone(w));
          },
          "x"_a, "memory"_a, "pad_mask"_a = py::none(), "need_weights"_a = true,
          "packed"_a = py::none(), "average_attn_weights"_a = true,
          "Cross-attention of x [B, Tq, E] over cross_keys_values(memory): (output, weights).")
      .def(
          "self_attention_step",
          [](Mha& self, const py::object& x, at::KVCache& cache,
             const at::PrepackedAttention* packed) {
            ATTEND_CHECK(cache.k.defined() && cache.v.defined(),
                         "MultiHeadAttention.self_attention_step: the cache is empty");
            return self.SelfAttentionStep(ToTensor(x, "x"), cache, packed);
          },
          "x"_a, "cache"_a, "packed"_a = py::none(),
          "One decoding step: x [N, 1, E] appended to cache, attending over it: [N, 1, E].")
      .def(
          "pack",
          [](const Mha& self, bool query_only, const std::string& precision) {
            return self.Pack(query_only, nn::ParsePrecision(precision));
          },
          "query_only"_a, py::kw_only(), "precision"_a = "f32",
          "The weights packed for decoding steps (eval; precision 'f32', 'bf16' or 'int8'): q, "
          "k, v, or q alone.")
      .def(
          "attend_heads",
          [](Mha& self, const py::object& q, const py::object& k, const py::object& v,
             const py::object& pad, bool causal, bool need_weights, bool average) {
            Tensor w;
            Tensor out = self.AttendHeads(ToTensor(q, "q"), ToTensor(k, "k"), ToTensor(v, "v"),
                                          Optional(pad, "pad_mask"), causal,
                                          need_weights ? &w : nullptr, nullptr, average);
            return py::make_tuple(out, OrNone(w));
          },
          "q"_a, "k"_a, "v"_a, "pad_mask"_a = py::none(), "is_causal"_a = false,
          "need_weights"_a = true, "average_attn_weights"_a = true,
          "The shared core over projected heads q [B, H, Tq, hd], k, v [B, H, Tk, hd]: "
          "(out_proj of the merged context [B, Tq, E], weights or None).")
      .def("uses_fused_kernel", &Mha::UsesFusedKernel, "tq"_a, "tk"_a, "need_weights"_a,
           "Whether attend_heads runs the fused kernel for tq queries over tk keys.")
      .def(
          "project",
          [](const Mha& self, const py::object& x, int64_t first, int64_t count) {
            ATTEND_CHECK(first >= 0 && count >= 0 && first + count <= 3 * self.embed_dim,
                         "MultiHeadAttention.project: rows [", first, ", ", first + count,
                         ") are outside [0, ", 3 * self.embed_dim, ")");
            return self.Project(ToTensor(x, "x"), first, count);
          },
          "x"_a, "first"_a, "count"_a,
          "x [B, T, E] times rows [first, first + count) of in_proj_weight^T, plus the bias.")
      .def(
          "split_heads",
          [](const Mha& self, const py::object& x) { return self.SplitHeads(ToTensor(x, "x")); },
          "x"_a, "[B, T, E] -> [B, H, T, hd].")
      .def_static(
          "merge_heads", [](const py::object& x) { return Mha::MergeHeads(ToTensor(x, "x")); },
          "x"_a, "[B, H, T, hd] -> [B, T, E].")
      .def_readonly("embed_dim", &Mha::embed_dim)
      .def_readonly("num_heads", &Mha::num_heads)
      .def_readonly("head_dim", &Mha::head_dim)
      .def_readonly("dropout", &Mha::dropout)
      .def_property_readonly("in_proj_weight",
                             [](const Mha& s) { return OrNone(s.in_proj_weight); })
      .def_property_readonly("in_proj_bias", [](const Mha& s) { return OrNone(s.in_proj_bias); })
      .def_readonly("out_proj", &Mha::out_proj)
      .def_readonly("rng_state", &Mha::rng_state)
      .def_readonly("generator", &Mha::gen, "The attention-dropout stream.")
      .def_readonly_static("fused_min_pairs", &Mha::kFusedMinPairs);
}

void BindStructures(py::module_& m) {
  auto ctx_forward = [](const at::ContextAttention& self, const py::object& h,
                        const py::object& mask) {
    return Pair(self.Forward(ToTensor(h, "h"), Optional(mask, "mask")));
  };
  py::class_<at::ContextAttention, nn::Module, std::shared_ptr<at::ContextAttention>>(
      m, "ContextAttention",
      "Yang et al.: softmax_t(tanh(W h_t + b) . u_w), h [B, T, D] -> (context [B, 1, D], "
      "weights [B, 1, T]).")
      .def(py::init([](int64_t dim, int64_t attn_dim, const std::string& dt, Generator* gen) {
             CheckPositive("ContextAttention", {{"dim", dim}, {"attn_dim", attn_dim}});
             return std::make_shared<at::ContextAttention>(dim, attn_dim, Gen(gen), DT(dt));
           }),
           "dim"_a, "attn_dim"_a, "dtype"_a = "float32", "generator"_a = py::none())
      .def("forward", ctx_forward, "h"_a, "mask"_a = py::none(),
           "(context [B, 1, D], weights [B, 1, T]); mask bool [B, T], true = padding.")
      .def("__call__", ctx_forward, "h"_a, "mask"_a = py::none())
      .def_readonly("proj", &at::ContextAttention::proj)
      .def_readonly("context_vector", &at::ContextAttention::context_vector);

  using Han = at::HierarchicalAttentionNetwork;
  auto han_forward = [](const Han& self, const py::object& words, const py::object& lengths,
                        const py::object& counts) {
    Han::Output o = self.Forward(ToTensor(words, "words"), ToTensor(lengths, "word_lengths"),
                                 ToTensor(counts, "sentence_counts"));
    return py::make_tuple(o.document, o.word_weights, o.sentence_weights);
  };
  py::class_<Han, nn::Module, std::shared_ptr<Han>>(
      m, "HierarchicalAttentionNetwork",
      "HAN: words -> BiGRU -> word attention -> sentences -> BiGRU -> sentence attention.")
      .def(py::init([](int64_t vocab, int64_t embed_dim, int64_t word_hidden,
                       int64_t sentence_hidden, int64_t attn_dim, int64_t padding_idx,
                       const std::string& dt, Generator* gen) {
             CheckPositive("HierarchicalAttentionNetwork", {{"vocab", vocab},
                                                            {"embed_dim", embed_dim},
                                                            {"word_hidden", word_hidden},
                                                            {"sentence_hidden", sentence_hidden},
                                                            {"attn_dim", attn_dim}});
             ATTEND_CHECK(padding_idx >= -1 && padding_idx < vocab,
                          "HierarchicalAttentionNetwork: padding_idx ", padding_idx,
                          " is outside [-1, ", vocab, ")");
             return std::make_shared<Han>(vocab, embed_dim, word_hidden, sentence_hidden, attn_dim,
                                          Gen(gen), padding_idx, DT(dt));
           }),
           "vocab"_a, "embed_dim"_a, "word_hidden"_a, "sentence_hidden"_a, "attn_dim"_a,
           "padding_idx"_a = 0, "dtype"_a = "float32", "generator"_a = py::none())
      .def("forward", han_forward, "words"_a, "word_lengths"_a, "sentence_counts"_a,
           "words int64 [B, S, W], word_lengths [B, S], sentence_counts [B] -> (document "
           "[B, 2 * sentence_hidden], word_weights [B, S, W], sentence_weights [B, S]).")
      .def("__call__", han_forward, "words"_a, "word_lengths"_a, "sentence_counts"_a)
      .def_readonly("embed", &Han::embed)
      .def_readonly("word_rnn", &Han::word_rnn)
      .def_readonly("sentence_rnn", &Han::sentence_rnn)
      .def_readonly("word_attention", &Han::word_attention)
      .def_readonly("sentence_attention", &Han::sentence_attention);

  using Sab = at::SparseAttentiveBacktracking;
  auto sab_forward = [](const Sab& self, const py::object& x) {
    Sab::Output o = self.Forward(ToTensor(x, "x"));
    return py::make_tuple(o.output, o.weights, o.steps);
  };
  py::class_<Sab, nn::Module, std::shared_ptr<Sab>>(
      m, "SparseAttentiveBacktracking",
      "SAB: an LSTM whose every katt-th state attends (top-ktop) to its stored past states.")
      .def(py::init([](int64_t input_size, int64_t hidden_size, int64_t ktop, int64_t katt,
                       int64_t ktrunc, const std::string& dt, Generator* gen) {
             CheckPositive("SparseAttentiveBacktracking",
                           {{"input_size", input_size}, {"hidden_size", hidden_size}});
             return std::make_shared<Sab>(input_size, hidden_size, ktop, katt, ktrunc, Gen(gen),
                                          DT(dt));
           }),
           "input_size"_a, "hidden_size"_a, "ktop"_a, "katt"_a, "ktrunc"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def("forward", sab_forward, "x"_a,
           "x [B, T, in] -> (output [B, T, H], weights: per attending step [B, 1, M], steps).")
      .def("__call__", sab_forward, "x"_a)
      .def_readonly("cell", &Sab::cell)
      .def_readonly("score", &Sab::score)
      .def_readonly("ktop", &Sab::ktop)
      .def_readonly("katt", &Sab::katt)
      .def_readonly("ktrunc", &Sab::ktrunc);

  using Sla = at::StackedLatentAttention;
  auto sla_forward = [](const Sla& self, const py::object& query, const py::object& keys,
                        const py::object& mask) {
    Sla::Output o =
        self.Forward(ToTensor(query, "query"), ToTensor(keys, "keys"), Optional(mask, "mask"));
    return py::make_tuple(o.context, o.weights);
  };
  py::class_<Sla, nn::Module, std::shared_ptr<Sla>>(
      m, "StackedLatentAttention",
      "L additive attention layers over the same keys, each latent carried to the next.")
      .def(py::init([](int64_t query_dim, int64_t key_dim, int64_t attn_dim, int num_layers,
                       const std::string& dt, Generator* gen) {
             CheckPositive(
                 "StackedLatentAttention",
                 {{"query_dim", query_dim}, {"key_dim", key_dim}, {"attn_dim", attn_dim}});
             return std::make_shared<Sla>(query_dim, key_dim, attn_dim, num_layers, Gen(gen),
                                          DT(dt));
           }),
           "query_dim"_a, "key_dim"_a, "attn_dim"_a, "num_layers"_a, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def("forward", sla_forward, "query"_a, "keys"_a, "mask"_a = py::none(),
           "(context [B, Tq, Dk], per-layer weights [B, Tq, Tk]); mask bool, true = excluded.")
      .def("__call__", sla_forward, "query"_a, "keys"_a, "mask"_a = py::none())
      .def_readonly("key_proj", &Sla::key_proj)
      .def_readonly("query_proj", &Sla::query_proj)
      .def_readonly("v", &Sla::v);

  using Ta = at::TransparentAttention;
  auto ta_forward = [](const Ta& self, const py::sequence& layers) {
    std::vector<Tensor> enc;
    for (const py::handle& h : layers) enc.push_back(ToTensor(h, "encoder_layers"));
    return self.Forward(enc);
  };
  py::class_<Ta, nn::Module, std::shared_ptr<Ta>>(
      m, "TransparentAttention",
      "Bapna et al.: decoder layer i reads sum_j softmax(s_i)_j h_j over all encoder layers.")
      .def(py::init([](int num_encoder_layers, int num_decoder_layers, const std::string& dt) {
             return std::make_shared<Ta>(num_encoder_layers, num_decoder_layers, DT(dt));
           }),
           "num_encoder_layers"_a, "num_decoder_layers"_a, "dtype"_a = "float32")
      .def("forward", ta_forward, "encoder_layers"_a,
           "E tensors [B, T, D] -> one memory [B, T, D] per decoder layer (a list).")
      .def("__call__", ta_forward, "encoder_layers"_a)
      .def("mix_weights", &Ta::MixWeights, "softmax(s): [num_decoder_layers, num_encoder_layers].")
      .def_readonly("logits", &Ta::logits);

  using Se = at::SqueezeExcitation;
  auto se_forward = [](const Se& self, const py::object& x) {
    return self.Forward(ToTensor(x, "x"));
  };
  py::class_<Se, nn::Module, std::shared_ptr<Se>>(
      m, "SqueezeExcitation",
      "Hu et al.: y = x * sigmoid(W2 relu(W1 mean_spatial(x))) per channel, x [B, C, ...].")
      .def(py::init([](int64_t channels, int64_t reduction, const std::string& dt, Generator* gen) {
             return std::make_shared<Se>(channels, reduction, Gen(gen), DT(dt));
           }),
           "channels"_a, "reduction"_a, "dtype"_a = "float32", "generator"_a = py::none())
      .def("forward", se_forward, "x"_a, "y, the shape of x [B, C, ...].")
      .def("__call__", se_forward, "x"_a)
      .def(
          "forward_with_weights",
          [](const Se& self, const py::object& x) {
            auto [y, s] = self.ForwardWithWeights(ToTensor(x, "x"));
            return py::make_tuple(y, s);
          },
          "x"_a, "(y, channel weights [B, C]).")
      .def_readonly("fc1", &Se::fc1)
      .def_readonly("fc2", &Se::fc2);

  auto secnn_forward = [](const at::SeCnn& self, const py::object& x) {
    at::SeCnn::Output o = self.Forward(ToTensor(x, "x"));
    return py::make_tuple(o.logits, o.channel_weights);
  };
  py::class_<at::SeCnn, nn::Module, std::shared_ptr<at::SeCnn>>(
      m, "SeCnn",
      "Two conv 3x3 -> ReLU -> squeeze-and-excitation blocks, pooling, a linear classifier.")
      .def(py::init([](int64_t in_channels, int64_t channels1, int64_t channels2,
                       int64_t num_classes, int64_t reduction, const std::string& dt,
                       Generator* gen) {
             CheckPositive("SeCnn", {{"in_channels", in_channels},
                                     {"channels1", channels1},
                                     {"channels2", channels2},
                                     {"num_classes", num_classes},
                                     {"reduction", reduction}});
             return std::make_shared<at::SeCnn>(in_channels, channels1, channels2, num_classes,
                                                reduction, Gen(gen), DT(dt));
           }),
           "in_channels"_a, "channels1"_a, "channels2"_a, "num_classes"_a, "reduction"_a,
           "dtype"_a = "float32", "generator"_a = py::none())
      .def("forward", secnn_forward, "x"_a,
           "x [B, C_in, H, W] -> (logits [B, classes], [channel weights [B, C] per block]).")
      .def("__call__", secnn_forward, "x"_a)
      .def_readonly("conv1", &at::SeCnn::conv1)
      .def_readonly("conv2", &at::SeCnn::conv2)
      .def_readonly("se1", &at::SeCnn::se1)
      .def_readonly("se2", &at::SeCnn::se2)
      .def_readonly("classifier", &at::SeCnn::classifier);

  py::class_<at::ImageAttention, nn::Module, std::shared_ptr<at::ImageAttention>> image(
      m, "ImageAttention",
      "Show, Attend and Tell: a decoder state attends over a CNN's H x W grid (additive "
      "score), gated by sigmoid(f_beta(h)).");
  py::class_<at::ImageAttention::Prepared>(image, "Prepared",
                                           "An image's annotations [B, H*W, C] and projected "
                                           "keys [B, H*W, A].")
      .def_readonly("annotations", &at::ImageAttention::Prepared::annotations)
      .def_readonly("keys", &at::ImageAttention::Prepared::keys)
      .def_readonly("height", &at::ImageAttention::Prepared::height)
      .def_readonly("width", &at::ImageAttention::Prepared::width);
  image
      .def(py::init([](int64_t feature_dim, int64_t hidden_dim, int64_t attn_dim, bool gate,
                       const std::string& dt, Generator* gen) {
             CheckPositive("ImageAttention", {{"feature_dim", feature_dim},
                                              {"hidden_dim", hidden_dim},
                                              {"attn_dim", attn_dim}});
             return std::make_shared<at::ImageAttention>(feature_dim, hidden_dim, attn_dim,
                                                         Gen(gen), gate, DT(dt));
           }),
           "feature_dim"_a, "hidden_dim"_a, "attn_dim"_a, "gate"_a = true, "dtype"_a = "float32",
           "generator"_a = py::none())
      .def(
          "prepare",
          [](const at::ImageAttention& self, const py::object& features) {
            return self.Prepare(ToTensor(features, "features"));
          },
          "features"_a, "features [B, C, H, W] -> Prepared (once per image).")
      .def(
          "step",
          [](const at::ImageAttention& self, const at::ImageAttention::Prepared& p,
             const py::object& h) { return Pair(self.Step(p, ToTensor(h, "h"))); },
          "prepared"_a, "h"_a, "h [B, hidden] -> (context [B, 1, C], weights [B, 1, H*W]).")
      .def_readonly("score", &at::ImageAttention::score)
      .def_property_readonly("gate", [](const at::ImageAttention& self) -> py::object {
        if (!self.gate) return py::none();
        return py::cast(self.gate);
      });
}

}  // namespace

void BindAttention(py::module_& m) {
  // The modules derive from attend.nn.Module, which BindNn registers first (module.cc).
  ATTEND_CHECK(py::detail::get_type_info(typeid(nn::Module)) != nullptr,
               "attend.attention: attend.nn.Module must be bound first");
  BindScores(m);
  BindWeights(m);
  BindQkv(m);
  BindStructures(m);
}

}  // namespace attend::python
