// Attention read as word alignment, and guided alignment: word links mapped onto subword pieces,
// the reference rows of a batch and their loss, the decoder's cross-attention of teacher-forced
// pairs, hard word links from subword weights, and the articles' weight table.
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/metrics.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "attend/text.h"

namespace attend::nmt {

namespace {

// U+2581, the mark SentencePiece puts before a piece that starts a word.
constexpr const char kWordMark[] = "\xE2\x96\x81";

bool IsWordBreak(char c) { return c == ' ' || c == '\t'; }

// Characters a terminal shows for `s` (UTF-8 code points; wide characters count one).
size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string PadLeft(const std::string& s, size_t width) {
  const size_t w = DisplayWidth(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

std::string PadRight(const std::string& s, size_t width) {
  const size_t w = DisplayWidth(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

}  // namespace

std::vector<int64_t> PieceWords(const Vocabulary& vocab, const std::string& text,
                                const std::string& where, int64_t* words) {
  std::vector<int64_t> word_of, joined;
  int64_t w = 0;
  for (size_t pos = 0; pos < text.size();) {
    while (pos < text.size() && IsWordBreak(text[pos])) ++pos;
    if (pos == text.size()) break;
    size_t end = pos;
    while (end < text.size() && !IsWordBreak(text[end])) ++end;
    for (int64_t id : vocab.Encode(text.substr(pos, end - pos))) {
      joined.push_back(id);
      word_of.push_back(w);
    }
    ++w;
    pos = end;
  }
  ATTEND_CHECK(joined == vocab.Encode(text), where,
               ": the pieces of the words encoded one by one differ from the sentence's, so "
               "word alignments cannot be mapped onto its subwords");
  if (words != nullptr) *words = w;
  return word_of;
}

std::vector<AlignmentLinks> ReadAlignments(const std::string& path,
                                           std::vector<AlignmentLinks>* possible) {
  constexpr size_t kMaxLineBytes = size_t{1} << 20;
  text::LineReader in(path, kMaxLineBytes);
  std::vector<AlignmentLinks> out;
  if (possible != nullptr) possible->clear();
  text::LineReader::Line line;
  while (in.Next(&line)) {
    const std::string where = in.name() + ":" + std::to_string(line.number);
    ATTEND_CHECK(!line.cropped(), where, ": the line is longer than ", kMaxLineBytes, " bytes");
    AlignmentLinks maybe;
    out.push_back(metrics::ParsePharaoh(line.text, where, possible ? &maybe : nullptr));
    if (possible != nullptr) possible->push_back(std::move(maybe));
  }
  return out;
}

int64_t AttachAlignments(std::vector<Example>& examples, const Vocabulary& vocab,
                         const std::vector<std::pair<std::string, std::string>>& pairs,
                         const std::vector<AlignmentLinks>& alignments, const std::string& source) {
  int64_t total = 0;
  for (Example& e : examples) {
    const auto i = static_cast<size_t>(e.index);
    ATTEND_CHECK(e.index >= 0 && i < pairs.size() && i < alignments.size(),
                 "guided alignment: example ", e.index, " has no sentence pair or alignment (",
                 pairs.size(), " pairs, ", alignments.size(), " alignments in ", source, ")");
    const std::string where = source + ":" + std::to_string(e.index + 1);
    int64_t ns = 0, nt = 0;
    const std::vector<int64_t> sw = PieceWords(vocab, pairs[i].first, where + " (source)", &ns);
    const std::vector<int64_t> tw = PieceWords(vocab, pairs[i].second, where + " (target)", &nt);
    ATTEND_CHECK(sw.size() == e.src.size() && tw.size() == e.tgt.size(), where,
                 ": the example's pieces are not those of its sentence pair");
    std::vector<std::vector<int64_t>> src_pieces(ns), tgt_pieces(nt);
    for (size_t p = 0; p < sw.size(); ++p) src_pieces[sw[p]].push_back(static_cast<int64_t>(p));
    for (size_t p = 0; p < tw.size(); ++p) tgt_pieces[tw[p]].push_back(static_cast<int64_t>(p));
    e.links.clear();
    for (const auto& [s, t] : alignments[i]) {
      ATTEND_CHECK(s < ns && t < nt, where, ": link ", s, "-", t, " is outside the pair of ", ns,
                   " source and ", nt, " target words");
      for (int64_t a : src_pieces[s])
        for (int64_t b : tgt_pieces[t]) e.links.emplace_back(a, b);
    }
    std::sort(e.links.begin(), e.links.end());
    e.links.erase(std::unique(e.links.begin(), e.links.end()), e.links.end());
    total += static_cast<int64_t>(e.links.size());
  }
  return total;
}

Tensor AlignmentTargets(const std::vector<Example>& examples, const std::vector<int64_t>& order,
                        int64_t tgt_len, int64_t src_len, int64_t* linked) {
  const auto b = static_cast<int64_t>(order.size());
  std::vector<float> a(static_cast<size_t>(b * tgt_len * src_len), 0.0f);
  int64_t rows = 0;
  for (int64_t r = 0; r < b; ++r) {
    const Example& e = examples.at(static_cast<size_t>(order[r]));
    std::vector<int64_t> count(static_cast<size_t>(tgt_len), 0);
    for (const auto& [s, t] : e.links) {
      ATTEND_CHECK(s >= 0 && s < src_len && t >= 0 && t < tgt_len, "AlignmentTargets: example ",
                   e.index, " links source piece ", s, " and target piece ", t,
                   ", outside the batch's [", tgt_len, ", ", src_len, "]");
      float& cell = a[static_cast<size_t>((r * tgt_len + t) * src_len + s)];
      count[t] += cell == 0.0f;
      cell = 1.0f;
    }
    for (int64_t t = 0; t < tgt_len; ++t) {
      if (count[t] == 0) continue;
      ++rows;
      float* row = a.data() + (r * tgt_len + t) * src_len;
      for (int64_t s = 0; s < src_len; ++s) row[s] /= static_cast<float>(count[t]);
    }
  }
  if (linked != nullptr) *linked = rows;
  return Tensor::FromVector(a, {b, tgt_len, src_len});
}

Tensor GuidedAlignmentLoss(const Tensor& weights, const Tensor& targets, int64_t linked) {
  ATTEND_CHECK(weights.defined() && targets.defined() && weights.dim() == 3 &&
                   weights.shape() == targets.shape() && weights.dtype() == targets.dtype(),
               "GuidedAlignmentLoss: weights and targets must be [B, T, S] of one dtype, got ",
               weights.defined() ? weights.str() : std::string("undefined"), " and ",
               targets.defined() ? targets.str() : std::string("undefined"));
  ATTEND_CHECK(linked > 0, "GuidedAlignmentLoss: no linked rows to average over");
  const Tensor log_weights = Log(Clamp(weights, 1e-18, std::nullopt));
  return MulScalar(Sum(Mul(targets, log_weights)), -1.0 / static_cast<double>(linked));
}

int64_t CrossAttentionLayers(const models::ModelConfig& config) {
  return config.arch == models::Arch::kTransformer ? config.DecoderDepth() : 1;
}

int64_t CrossAttentionHeads(const models::ModelConfig& config) {
  return config.arch == models::Arch::kTransformer ? config.heads : 1;
}

std::vector<models::AttentionMap> CrossAttentionMaps(
    models::Seq2Seq& model, const std::vector<std::vector<int64_t>>& sources,
    const std::vector<std::vector<int64_t>>& targets) {
  ATTEND_CHECK(sources.size() == targets.size() && !sources.empty(),
               "CrossAttentionMaps: ", sources.size(), " sources and ", targets.size(),
               " targets (need as many, at least one)");
  std::vector<Example> examples(sources.size());
  std::vector<int64_t> order(sources.size());
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = 0; i < sources.size(); ++i) {
    examples[i].src = sources[i];
    examples[i].tgt = targets[i];
    examples[i].index = static_cast<int64_t>(i);
  }
  const bool was_training = model.training();
  model.Eval();
  std::vector<models::AttentionMap> sites;
  {
    NoGradGuard no_grad;
    sites = model.AttentionMaps(MakeBatch(examples, order));
  }
  model.Train(was_training);
  std::vector<models::AttentionMap> cross;
  for (models::AttentionMap& m : sites)
    if (m.kind == "cross" && m.side == "decoder") cross.push_back(std::move(m));
  std::stable_sort(cross.begin(), cross.end(),
                   [](const auto& a, const auto& b) { return a.layer < b.layer; });
  return cross;
}

std::vector<std::vector<float>> MapRows(const models::AttentionMap& map, int64_t b, int64_t head,
                                        int64_t rows, int64_t cols) {
  const Tensor& w = map.weights;  // [B, H, T, S]
  ATTEND_CHECK(w.dim() == 4 && b >= 0 && b < w.size(0) && head >= -1 && head < w.size(1) &&
                   rows <= w.size(2) && cols <= w.size(3),
               "MapRows: ", map.name, " ", w.str(), " has no pair ", b, ", head ", head, " or ",
               rows, " x ", cols, " weights");
  Tensor one = w.Select(0, b);  // [H, T, S]
  one = head >= 0 ? one.Select(0, head) : Mean(one, {0});
  const Tensor flat = one.To(DType::kF32).Contiguous();
  const std::vector<float> v = flat.ToVector<float>();
  const int64_t stride = w.size(3);
  std::vector<std::vector<float>> out(static_cast<size_t>(rows));
  for (int64_t t = 0; t < rows; ++t)
    out[t].assign(v.begin() + t * stride, v.begin() + t * stride + cols);
  return out;
}

AlignmentLinks WordAlignment(const std::vector<std::vector<float>>& attention,
                             const std::vector<int64_t>& src_words,
                             const std::vector<int64_t>& tgt_words) {
  ATTEND_CHECK(attention.size() >= tgt_words.size(), "WordAlignment: ", attention.size(),
               " rows of weights for ", tgt_words.size(), " target pieces");
  int64_t n_src = 0, n_tgt = 0;
  for (int64_t w : src_words) n_src = std::max(n_src, w + 1);
  for (int64_t w : tgt_words) n_tgt = std::max(n_tgt, w + 1);
  std::vector<double> m(static_cast<size_t>(n_tgt * n_src), 0.0);
  std::vector<int64_t> pieces(static_cast<size_t>(n_tgt), 0);
  for (size_t t = 0; t < tgt_words.size(); ++t) {
    const std::vector<float>& row = attention[t];
    ATTEND_CHECK(row.size() >= src_words.size(), "WordAlignment: row ", t, " has ", row.size(),
                 " weights for ", src_words.size(), " source pieces");
    ++pieces[tgt_words[t]];
    for (size_t s = 0; s < src_words.size(); ++s) m[tgt_words[t] * n_src + src_words[s]] += row[s];
  }
  AlignmentLinks links;
  for (int64_t t = 0; t < n_tgt; ++t) {
    if (pieces[t] == 0 || n_src == 0) continue;
    // Sums over the word's pieces: their mean would divide the row by a constant, which does
    // not move its highest weight.
    const double* row = m.data() + t * n_src;
    const int64_t best = std::max_element(row, row + n_src) - row;
    links.emplace_back(best, t);
  }
  return links;
}

std::vector<std::string> TableLabels(const std::vector<std::string>& pieces) {
  const std::string mark = kWordMark;
  bool words = !pieces.empty();
  for (const std::string& p : pieces)
    words = words && p.size() > mark.size() && p.starts_with(mark);
  if (!words) return pieces;
  std::vector<std::string> out;
  for (const std::string& p : pieces) out.push_back(p.substr(mark.size()));
  return out;
}

std::string AlignmentTable(const std::vector<std::string>& src, const std::vector<std::string>& tgt,
                           const std::vector<std::vector<float>>& attention) {
  ATTEND_CHECK(attention.size() >= tgt.size(), "AlignmentTable: ", attention.size(),
               " rows of weights for ", tgt.size(), " target tokens");
  size_t first = 0;
  for (const std::string& t : tgt) first = std::max(first, DisplayWidth(t));
  std::vector<size_t> width(src.size());
  for (size_t j = 0; j < src.size(); ++j) width[j] = std::max<size_t>(4, DisplayWidth(src[j]));
  std::string out = std::string(first, ' ');
  for (size_t j = 0; j < src.size(); ++j) out += "  " + PadLeft(src[j], width[j]);
  out += '\n';
  for (size_t i = 0; i < tgt.size(); ++i) {
    ATTEND_CHECK(attention[i].size() >= src.size(), "AlignmentTable: row ", i, " has ",
                 attention[i].size(), " weights for ", src.size(), " source tokens");
    out += PadRight(tgt[i], first);
    for (size_t j = 0; j < src.size(); ++j) {
      char cell[32];
      std::snprintf(cell, sizeof(cell), "%.2f", attention[i][j]);
      out += "  " + PadLeft(cell, width[j]);
    }
    out += '\n';
  }
  return out;
}

}  // namespace attend::nmt
