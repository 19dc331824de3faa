#include "serve/answer.h"

#include <cmath>
#include <string>

#include "attend/autograd.h"

namespace attend::serve {
namespace {

using json = nlohmann::json;

// Rows x cols of w (row stride `stride`), rounded to 4 decimals: what a view can show, a third
// of the bytes of full floats.
json Matrix(const float* w, int64_t rows, int64_t cols, int64_t stride) {
  json m = json::array();
  for (int64_t i = 0; i < rows; ++i) {
    json row = json::array();
    for (int64_t j = 0; j < cols; ++j) row.push_back(std::round(w[i * stride + j] * 1e4) / 1e4);
    m.push_back(std::move(row));
  }
  return m;
}

}  // namespace

std::vector<std::vector<models::AttentionMap>> HypothesisMaps(
    models::Seq2Seq& model, const std::vector<int64_t>& source,
    const std::vector<nmt::Hypothesis>& hypotheses) {
  std::vector<std::vector<models::AttentionMap>> out;
  if (hypotheses.empty()) return out;
  const bool was_training = model.training();
  model.Eval();
  std::vector<nmt::Example> examples;
  std::vector<int64_t> order;
  for (const nmt::Hypothesis& h : hypotheses) {
    nmt::Example e;
    e.src = source;
    e.tgt = h.tokens;
    order.push_back(static_cast<int64_t>(examples.size()));
    examples.push_back(std::move(e));
  }
  std::vector<models::AttentionMap> sites;
  {
    NoGradGuard no_grad;
    sites = model.AttentionMaps(nmt::MakeBatch(examples, order));
  }
  model.Train(was_training);
  for (size_t h = 0; h < examples.size(); ++h) {
    std::vector<models::AttentionMap> mine;
    for (const models::AttentionMap& site : sites) {
      models::AttentionMap one = site;
      one.weights = site.weights.Select(0, static_cast<int64_t>(h)).Contiguous();
      mine.push_back(std::move(one));
    }
    out.push_back(std::move(mine));
  }
  return out;
}

json LineJson(const nmt::Vocabulary& vocab, const std::vector<int64_t>& source,
              const std::vector<nmt::Hypothesis>& hypotheses,
              const std::vector<std::vector<models::AttentionMap>>* maps) {
  const std::vector<std::string> src = vocab.Pieces(source);
  json hyps = json::array();
  for (size_t h = 0; h < hypotheses.size(); ++h) {
    const nmt::Hypothesis& hyp = hypotheses[h];
    std::vector<std::string> out = vocab.Pieces(hyp.tokens);
    std::vector<std::string> in = out;
    out.push_back("</s>");
    in.insert(in.begin(), "<s>");
    json jh = {{"text", vocab.Decode(hyp.tokens)},
               {"tokens", out},
               {"decoder_inputs", in},
               {"score", hyp.score},
               {"log_prob", hyp.log_prob}};
    if (maps != nullptr) {
      json sites = json::array();
      const int64_t s = static_cast<int64_t>(src.size()), t = static_cast<int64_t>(out.size());
      for (const models::AttentionMap& site : (*maps)[h]) {
        const Tensor& w = site.weights;  // [H, Tq, Tk] padded to the batch
        const bool enc = site.side == "encoder", self = site.kind == "self";
        const int64_t tq = enc ? s : t, tk = self ? tq : s;
        const std::vector<float> v = w.ToVector<float>();
        json heads = json::array();
        for (int64_t k = 0; k < w.size(0); ++k)
          heads.push_back(Matrix(v.data() + k * w.size(1) * w.size(2), tq, tk, w.size(2)));
        sites.push_back({{"name", site.name},
                         {"kind", site.kind},
                         {"side", site.side},
                         {"layer", site.layer},
                         {"heads", std::move(heads)}});
      }
      jh["attention"] = std::move(sites);
    }
    hyps.push_back(std::move(jh));
  }
  return {{"source_tokens", src}, {"hypotheses", std::move(hyps)}};
}

}  // namespace attend::serve
