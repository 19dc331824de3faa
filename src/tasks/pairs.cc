// Sentence pairs: the paraphrase corpus from gettext catalogs, ABCNN and MwAN, the task
// (attend/tasks/pairs.h).
#include "attend/tasks/pairs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "attend/corpus.h"
#include "attend/viz.h"

namespace attend::tasks {
namespace fs = std::filesystem;
namespace {

// ---- catalogs ----

struct CatalogFile {
  std::string domain, lang, path;
};

// <dir>/<lang>/LC_MESSAGES/<domain>.mo -> (domain, lang). Empty domain when the path is not one.
CatalogFile SplitCatalogPath(const std::string& path) {
  const fs::path p(path);
  CatalogFile c;
  if (p.extension() != ".mo" || p.parent_path().filename() != "LC_MESSAGES") return c;
  c.lang = p.parent_path().parent_path().filename().string();
  c.domain = p.stem().string();
  c.path = path;
  return c;
}

// Lists of country, language and currency names (iso-codes) pair names, not sentences.
bool IsNameList(const std::string& domain) { return domain.rfind("iso_", 0) == 0; }

std::vector<CatalogFile> PinnedCatalogFiles() {
  const std::string prefix = "/usr/share/locale/";
  std::set<std::string> paths;
  for (const std::string& pkg : data::CorpusPackages())
    for (const std::string& line : data::PackageFiles(pkg, prefix))
      if (!SplitCatalogPath(line).domain.empty()) paths.insert(line);
  std::vector<CatalogFile> out;
  for (const std::string& p : paths) out.push_back(SplitCatalogPath(p));
  ATTEND_CHECK(!out.empty(), "pairs corpus: no catalogs of the pinned corpus packages (",
               data::CorpusPackages()[0], ", ", data::CorpusPackages()[1],
               ", ...; scripts/corpus_packages.sh) under ", prefix,
               ": install them (scripts/setup.sh) or give --locale-dir");
  return out;
}

std::vector<CatalogFile> DirectoryCatalogFiles(const std::string& dir) {
  std::error_code ec;
  ATTEND_CHECK(fs::is_directory(dir, ec), "pairs corpus: --locale-dir ", dir,
               ": no such directory");
  std::vector<std::string> paths;
  for (const fs::directory_entry& lang : fs::directory_iterator(dir, ec)) {
    const fs::path lc = lang.path() / "LC_MESSAGES";
    if (!fs::is_directory(lc, ec)) continue;
    for (const fs::directory_entry& e : fs::directory_iterator(lc, ec))
      if (e.path().extension() == ".mo" && e.is_regular_file(ec)) paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<CatalogFile> out;
  for (const std::string& p : paths) out.push_back(SplitCatalogPath(p));
  ATTEND_CHECK(!out.empty(), "pairs corpus: no catalogs in ", dir,
               " (expected <locale-dir>/<lang>/LC_MESSAGES/*.mo)");
  return out;
}

std::string Join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// A translation's identity: its whitespace-normalised text without accelerator markers, ASCII
// lower-cased (translators vary the case of one word between menus and dialogs).
uint64_t TranslationKey(const std::string& msgstr) {
  std::string t;
  for (char c : data::NormalizeWhitespace(msgstr)) {
    if (c == '_' || c == '&') continue;
    t += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  while (!t.empty() && (t.back() == '.' || t.back() == ':' || t.back() == ' ')) t.pop_back();
  return data::Fnv1a64(t);
}

struct Split3 {
  int operator()(const std::string& key, uint32_t dev, uint32_t test) const {
    const uint64_t h = data::Fnv1a64(key) % 1000;
    return h < dev ? 1 : h < dev + test ? 2 : 0;
  }
};

// Union-find over string ids.
struct Components {
  std::vector<int64_t> parent;
  int64_t Find(int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void Union(int64_t a, int64_t b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

// Draws below n from a 64-bit stream (std::mt19937_64 is the same on every platform; the
// library's distributions are not, so they are not used).
uint64_t Below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Below(rng, i)]);
}

}  // namespace

std::vector<std::string> PairWords(std::string_view text) {
  std::vector<std::string> words;
  std::string w;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    const unsigned char c = static_cast<unsigned char>(ch);
    // U+2000..U+203F (E2 80 xx: dashes, quotes, the ellipsis) separate words like ASCII
    // punctuation does.
    if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80) {
      if (!w.empty()) words.push_back(w);
      w.clear();
      i += 2;
      continue;
    }
    if (c == '_' || c == '&') continue;
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
    if (c >= 'A' && c <= 'Z') {
      w += static_cast<char>(c - 'A' + 'a');
    } else if (keep) {
      w += ch;
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(w);
  return words;
}

std::string PairsCorpus::Summary() const {
  std::ostringstream s;
  s << catalogs_read << " catalogs (" << domains << " domains, " << languages << " languages), "
    << paraphrases_found << " paraphrase pairs, " << negative_candidates
    << " negative candidates; train " << splits[0].size() << ", dev " << splits[1].size()
    << ", test " << splits[2].size() << " pairs (half paraphrases); largest component "
    << largest_component << " strings";
  return s.str();
}

PairsCorpus BuildPairsCorpus(const PairsCorpusOptions& o) {
  ATTEND_CHECK(o.min_languages >= 1, "pairs corpus: min_languages must be at least 1");
  ATTEND_CHECK(o.max_words >= 1 && o.max_group >= 2, "pairs corpus: max_words ", o.max_words,
               " and max_group ", o.max_group, " must be at least 1 and 2");
  ATTEND_CHECK(o.dev_per_mille + o.test_per_mille < 1000,
               "pairs corpus: dev and test shares leave nothing for training");
  std::vector<CatalogFile> files =
      o.locale_dir.empty() ? PinnedCatalogFiles() : DirectoryCatalogFiles(o.locale_dir);
  std::map<std::string, std::vector<CatalogFile>> by_domain;
  std::set<std::string> langs;
  for (const CatalogFile& f : files) {
    if (f.domain.empty() || IsNameList(f.domain)) continue;
    by_domain[f.domain].push_back(f);
  }
  for (auto& [d, v] : by_domain)
    std::sort(v.begin(), v.end(),
              [](const CatalogFile& x, const CatalogFile& y) { return x.lang < y.lang; });

  PairsCorpus corpus;
  // Strings are global (one canonical text, one id, one split); evidence is per catalog.
  std::unordered_map<std::string, int64_t> ids;
  std::vector<std::string> texts;
  std::set<std::pair<int64_t, int64_t>> positives, negatives;
  std::map<std::pair<int64_t, int64_t>, std::string> origin;
  for (const auto& [domain, cats] : by_domain) {
    std::unordered_map<std::string, int> local;  // canonical text -> index in this domain
    std::vector<int64_t> global_of;
    std::vector<std::vector<std::string>> words_of;
    const size_t nlang = cats.size();
    std::vector<std::vector<std::pair<int, uint64_t>>> per_lang(nlang);
    for (size_t li = 0; li < nlang; ++li) {
      const data::MoCatalog cat = data::ReadMoCatalog(cats[li].path);  // throws naming the file
      ++corpus.catalogs_read;
      langs.insert(cats[li].lang);
      std::set<int> seen;
      for (const data::MoEntry& e : cat.entries) {
        if (e.msgstr.empty() || e.msgstr[0].empty()) continue;
        std::vector<std::string> w = PairWords(e.msgid);
        if (w.empty() || static_cast<int64_t>(w.size()) > o.max_words) continue;
        bool letters = false;
        for (const std::string& x : w)
          letters = letters || (x.size() >= 2 && !(x[0] >= '0' && x[0] <= '9'));
        if (!letters) continue;
        const std::string key = Join(w);
        auto [it, fresh] = local.emplace(key, static_cast<int>(global_of.size()));
        if (fresh) {
          auto [g, gfresh] = ids.emplace(key, static_cast<int64_t>(texts.size()));
          if (gfresh) texts.push_back(key);
          global_of.push_back(g->second);
          words_of.push_back(std::move(w));
        }
        // One translation per string and language: the first entry (contexts may repeat it).
        if (seen.insert(it->second).second)
          per_lang[li].push_back({it->second, TranslationKey(e.msgstr[0])});
      }
    }
    const size_t n = global_of.size();
    if (n < 2) continue;
    ++corpus.domains;
    // Votes for each pair sharing a translation, and the languages translating each string.
    std::map<std::pair<int, int>, int64_t> votes;
    std::vector<std::vector<bool>> translated(n, std::vector<bool>(nlang, false));
    for (size_t li = 0; li < nlang; ++li) {
      std::unordered_map<uint64_t, std::vector<int>> groups;
      for (const auto& [s, k] : per_lang[li]) {
        groups[k].push_back(s);
        translated[s][li] = true;
      }
      for (auto& [k, g] : groups) {
        if (g.size() < 2 || static_cast<int64_t>(g.size()) > o.max_group) continue;
        std::sort(g.begin(), g.end());
        for (size_t i = 0; i < g.size(); ++i)
          for (size_t j = i + 1; j < g.size(); ++j) ++votes[{g[i], g[j]}];
      }
    }
    auto both = [&](int i, int j) {
      int64_t c = 0;
      for (size_t li = 0; li < nlang; ++li) c += translated[i][li] && translated[j][li];
      return c;
    };
    auto global_pair = [&](int i, int j) {
      int64_t a = global_of[i], b = global_of[j];
      return std::make_pair(std::min(a, b), std::max(a, b));
    };
    for (const auto& [p, v] : votes)
      if (v >= o.min_languages) {
        positives.insert(global_pair(p.first, p.second));
        origin.emplace(global_pair(p.first, p.second), domain);
      }
    // Negatives: high word overlap, never translated alike, both translated often enough.
    std::map<std::string, std::vector<int>> index;
    std::vector<std::set<std::string>> sets(n);
    for (size_t i = 0; i < n; ++i) {
      sets[i] = std::set<std::string>(words_of[i].begin(), words_of[i].end());
      for (const std::string& w : sets[i]) index[w].push_back(static_cast<int>(i));
    }
    std::set<std::pair<int, int>> tried;
    for (const auto& [w, list] : index) {
      if (list.size() > 300) continue;  // a word too common to find overlapping strings by
      for (size_t x = 0; x < list.size(); ++x)
        for (size_t y = x + 1; y < list.size(); ++y) {
          const int i = list[x], j = list[y];
          if (!tried.insert({i, j}).second || votes.count({i, j})) continue;
          size_t inter = 0;
          for (const std::string& u : sets[i]) inter += sets[j].count(u);
          const double jac = static_cast<double>(inter) /
                             static_cast<double>(sets[i].size() + sets[j].size() - inter);
          if (jac < o.min_overlap || both(i, j) < o.min_languages) continue;
          negatives.insert(global_pair(i, j));
          origin.emplace(global_pair(i, j), domain);
        }
    }
  }
  corpus.languages = static_cast<int64_t>(langs.size());
  // A pair that is a paraphrase in one catalog is no negative in another.
  for (const auto& p : positives) negatives.erase(p);
  corpus.paraphrases_found = static_cast<int64_t>(positives.size());
  corpus.negative_candidates = static_cast<int64_t>(negatives.size());

  // Components of the paraphrase graph, each in one split by a hash of its smallest string.
  Components comp;
  comp.parent.resize(texts.size());
  std::iota(comp.parent.begin(), comp.parent.end(), 0);
  for (const auto& [a, b] : positives) comp.Union(a, b);
  std::unordered_map<int64_t, std::string> smallest;
  std::unordered_map<int64_t, int64_t> sizes;
  for (int64_t i = 0; i < static_cast<int64_t>(texts.size()); ++i) {
    const int64_t r = comp.Find(i);
    auto it = smallest.find(r);
    if (it == smallest.end() || texts[i] < it->second) smallest[r] = texts[i];
    corpus.largest_component = std::max(corpus.largest_component, ++sizes[r]);
  }
  auto split_of = [&](int64_t s) {
    return Split3()(smallest[comp.Find(s)], o.dev_per_mille, o.test_per_mille);
  };
  std::vector<std::pair<int64_t, int64_t>> pos[3], neg[3];
  for (const auto& p : positives) pos[split_of(p.first)].push_back(p);
  for (const auto& p : negatives) {
    const int s = split_of(p.first);
    if (s == split_of(p.second)) neg[s].push_back(p);
  }
  for (int s = 0; s < 3; ++s) {
    std::mt19937_64 rng(o.seed * 1000003ULL + static_cast<uint64_t>(s));
    Shuffle(neg[s], rng);
    const size_t keep = std::min(neg[s].size(), pos[s].size());
    neg[s].resize(keep);
    pos[s].resize(keep);  // balanced even when negatives run short (tiny catalogs)
    std::vector<SentencePair>& out = corpus.splits[s];
    for (int label = 1; label >= 0; --label)
      for (const auto& p : label ? pos[s] : neg[s]) {
        SentencePair sp;
        sp.a = PairWords(texts[p.first]);
        sp.b = PairWords(texts[p.second]);
        if (rng() & 1) std::swap(sp.a, sp.b);
        sp.label = label;
        sp.catalog = origin[p];
        out.push_back(std::move(sp));
      }
    Shuffle(out, rng);
    static const char* kNames[3] = {"train", "dev", "test"};
    ATTEND_CHECK(!out.empty(), "pairs corpus: the ", kNames[s], " split is empty (",
                 corpus.paraphrases_found, " paraphrase pairs, ", corpus.negative_candidates,
                 " negative candidates from ", corpus.catalogs_read,
                 " catalogs): too few catalogs or languages");
  }
  return corpus;
}

// ---- models ----

std::string PairsModelConfig::Describe() const {
  std::ostringstream s;
  if (model == "siamese") s << "siamese CNN (no attention)";
  if (model == "abcnn1") s << "ABCNN-1 (attention feature maps)";
  if (model == "abcnn2") s << "ABCNN-2 (attention-weighted pooling)";
  if (model == "abcnn3") s << "ABCNN-3 (feature maps and pooling)";
  if (model == "siamese-gru") s << "siamese BiGRU (no attention)";
  if (model == "mwan") {
    s << "MwAN (";
    for (size_t i = 0; i < ways.size(); ++i) s << (i ? ", " : "") << ways[i];
    s << ")";
  }
  s << ", embeddings " << embed_dim << ", hidden " << hidden << ", vocabulary " << vocab;
  return s.str();
}

namespace {

Tensor Param(const Shape& shape, double bound, Generator& gen, DType dtype) {
  return AddScalar(MulScalar(Tensor::Rand(shape, gen, dtype), 2.0 * bound), -bound);
}

// 1 at the first len[b] + extra positions of each row, 0 after: [B, L] of dtype.
Tensor LengthMask(const Tensor& lengths, int64_t L, DType dtype, int64_t extra = 0) {
  const std::vector<int64_t> len = lengths.ToVector<int64_t>();
  std::vector<double> m(len.size() * static_cast<size_t>(L), 0.0);
  for (size_t b = 0; b < len.size(); ++b)
    for (int64_t t = 0; t < std::min(L, len[b] + extra); ++t) m[b * L + t] = 1.0;
  return Tensor::FromVector(m, {static_cast<int64_t>(len.size()), L}).To(dtype);
}

Tensor MaskedMean(const Tensor& h, const Tensor& mask) {  // h [B, T, D], mask [B, T] -> [B, D]
  Tensor sum = Sum(Mul(h, mask.Unsqueeze(2)), {1});
  return Div(sum, Sum(mask, {1}, true));
}

Tensor Classify(const nn::Linear& fc1, const nn::Linear& fc2, const Tensor& u, const Tensor& v) {
  Tensor f = Concat({u, v, Abs(Sub(u, v)), Mul(u, v)}, -1);
  return fc2.Forward(Tanh(fc1.Forward(f)));
}

void CheckBatch(const PairBatch& b, int64_t max_len) {
  ATTEND_CHECK(b.a.defined() && b.b.defined() && b.a.dim() == 2 && b.b.dim() == 2 &&
                   b.a.size(0) == b.b.size(0) && b.a.size(1) == max_len && b.b.size(1) == max_len,
               "pair model: word ids ", b.a.str(), " and ", b.b.str(), " must both be [B, ",
               max_len, "]");
}

}  // namespace

AbcnnModel::AbcnnModel(const PairsModelConfig& c, Generator& gen, DType dtype) : config_(c) {
  ATTEND_CHECK(c.vocab >= 2 && c.embed_dim >= 1 && c.hidden >= 1 && c.width >= 1 &&
                   c.max_len >= 1 && c.classifier >= 1,
               "ABCNN: sizes must be positive (vocabulary ", c.vocab, ")");
  attn1_ = c.model == "abcnn1" || c.model == "abcnn3";
  attn2_ = c.model == "abcnn2" || c.model == "abcnn3";
  embed =
      RegisterModule("embed", std::make_shared<nn::Embedding>(c.vocab, c.embed_dim, gen, 0, dtype));
  if (attn1_) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(c.max_len));
    w_a = RegisterParameter("w_a", Param({c.max_len, c.embed_dim}, bound, gen, dtype));
    w_b = RegisterParameter("w_b", Param({c.max_len, c.embed_dim}, bound, gen, dtype));
  }
  const int64_t in = attn1_ ? 2 * c.embed_dim : c.embed_dim;
  nn::Conv1dOptions co;
  co.padding = c.width - 1;  // wide convolution
  conv = RegisterModule("conv",
                        std::make_shared<nn::Conv1dModule>(in, c.hidden, c.width, gen, co, dtype));
  fc1 = RegisterModule("fc1",
                       std::make_shared<nn::Linear>(4 * c.hidden, c.classifier, true, gen, dtype));
  fc2 = RegisterModule("fc2", std::make_shared<nn::Linear>(c.classifier, 2, true, gen, dtype));
}

Tensor AbcnnModel::AttentionFeatureMaps(const Tensor& a_matrix, const Tensor& weight) {
  ATTEND_CHECK(a_matrix.dim() == 3 && weight.dim() == 2 && a_matrix.size(2) == weight.size(0),
               "ABCNN-1: attention ", a_matrix.str(), " and weight ", weight.str(),
               " must be [B, L, L'] and [L', E]");
  return Matmul(a_matrix, weight);  // F = A W: [B, L, E]
}

Tensor AbcnnModel::WindowPool(const Tensor& h, const Tensor& weights, int64_t width, int64_t len) {
  ATTEND_CHECK(h.dim() == 3 && weights.dim() == 2 && h.size(1) == len + width - 1 &&
                   weights.size(0) == h.size(0) && weights.size(1) == h.size(1),
               "ABCNN w-ap: columns ", h.str(), " and weights ", weights.str(), " must be [B, ",
               len + width - 1, ", D] and [B, ", len + width - 1, "]");
  Tensor weighted = Mul(h, weights.Unsqueeze(2));
  Tensor r = weighted.Narrow(1, 0, len);
  for (int64_t k = 1; k < width; ++k) r = Add(r, weighted.Narrow(1, k, len));
  return r;  // r_j = sum_{k=j}^{j+w-1} a_k h_k: [B, L, D]
}

Tensor AbcnnModel::Forward(const PairBatch& batch, Tensor* attention) {
  CheckBatch(batch, config_.max_len);
  const int64_t L = config_.max_len, w = config_.width, C = L + w - 1;
  const DType dt = embed->weight.dtype();
  Tensor ma = LengthMask(batch.a_len, L, dt), mb = LengthMask(batch.b_len, L, dt);
  Tensor x = embed->Forward(batch.a), y = embed->Forward(batch.b);  // padding rows are zero
  if (attn1_) {
    Tensor a = Mul(attention::MatchScore(x, y), Mul(ma.Unsqueeze(2), mb.Unsqueeze(1)));
    if (attention) *attention = a;
    x = Concat({x, Mul(AttentionFeatureMaps(a, w_a), ma.Unsqueeze(2))}, -1);
    y = Concat({y, Mul(AttentionFeatureMaps(a.Transpose(1, 2), w_b), mb.Unsqueeze(2))}, -1);
  }
  auto convolve = [&](const Tensor& e) {
    return Tanh(conv->Forward(e.Transpose(1, 2))).Transpose(1, 2);  // [B, C, D]
  };
  Tensor hx = convolve(x), hy = convolve(y);
  // Wide convolution columns over real words: the first len + w - 1.
  Tensor ca = LengthMask(batch.a_len, C, dt, w - 1), cb = LengthMask(batch.b_len, C, dt, w - 1);
  Tensor pa, pb;
  if (attn2_) {
    Tensor a2 = Mul(attention::MatchScore(hx, hy), Mul(ca.Unsqueeze(2), cb.Unsqueeze(1)));
    if (attention && !attn1_) *attention = a2;
    pa = Sum(a2, {2});  // a_i = sum_j A_ij: how much column i of A matches B
    pb = Sum(a2, {1});
  } else {
    pa = MulScalar(ca, 1.0 / static_cast<double>(w));  // w-ap: the window's mean
    pb = MulScalar(cb, 1.0 / static_cast<double>(w));
  }
  Tensor ra = WindowPool(hx, pa, w, L), rb = WindowPool(hy, pb, w, L);
  return Classify(*fc1, *fc2, MaskedMean(ra, ma), MaskedMean(rb, mb));  // all-ap
}

MwanModel::MwanModel(const PairsModelConfig& c, Generator& gen, DType dtype) : config_(c) {
  ATTEND_CHECK(
      c.vocab >= 2 && c.embed_dim >= 1 && c.hidden >= 1 && c.attn_dim >= 1 && c.classifier >= 1,
      "MwAN: sizes must be positive (vocabulary ", c.vocab, ")");
  const bool siamese = c.model == "siamese-gru";
  ATTEND_CHECK(siamese || !c.ways.empty(), "MwAN: no attention functions given");
  const int64_t H = c.hidden, D = 2 * H;
  nn::RnnOptions ro;
  ro.bidirectional = true;
  ro.dtype = dtype;
  embed =
      RegisterModule("embed", std::make_shared<nn::Embedding>(c.vocab, c.embed_dim, gen, 0, dtype));
  encoder = RegisterModule("encoder", std::make_shared<nn::GRU>(c.embed_dim, H, gen, ro));
  if (!siamese) {
    for (const std::string& way : c.ways) {
      std::shared_ptr<attention::ScoreFunction> s;
      if (way == "concat")
        s = std::make_shared<attention::ConcatScore>(D, D, c.attn_dim, gen, dtype);
      if (way == "bilinear") s = std::make_shared<attention::GeneralScore>(D, D, gen, dtype);
      if (way == "dot")
        s = std::make_shared<attention::MwanScore>(attention::MwanScore::Kind::kDot, D, c.attn_dim,
                                                   gen, dtype);
      if (way == "minus")
        s = std::make_shared<attention::MwanScore>(attention::MwanScore::Kind::kMinus, D,
                                                   c.attn_dim, gen, dtype);
      ATTEND_CHECK(s != nullptr, "MwAN: unknown attention function '", way,
                   "' (concat, bilinear, dot, minus)");
      scores.push_back(RegisterModule("score_" + way, s));
      gates.push_back(RegisterModule(
          "gate_" + way, std::make_shared<nn::Linear>(2 * D, 2 * D, false, gen, dtype)));
    }
    mix_proj = RegisterModule("mix_proj",
                              std::make_shared<nn::Linear>(2 * D, c.attn_dim, false, gen, dtype));
    mix_v =
        RegisterParameter("mix_v", Param({c.attn_dim}, 1.0 / std::sqrt(c.attn_dim), gen, dtype));
    aggregator = RegisterModule("aggregator", std::make_shared<nn::GRU>(2 * D, H, gen, ro));
    self_query = RegisterParameter("self_query", Param({D}, 1.0 / std::sqrt(D), gen, dtype));
    self_pool = RegisterModule(
        "self_pool", std::make_shared<attention::AdditiveScore>(D, D, c.attn_dim, gen, dtype));
    out_pool = RegisterModule(
        "out_pool", std::make_shared<attention::AdditiveScore>(D, D, c.attn_dim, gen, dtype));
  }
  fc1 = RegisterModule("fc1", std::make_shared<nn::Linear>(4 * D, c.classifier, true, gen, dtype));
  fc2 = RegisterModule("fc2", std::make_shared<nn::Linear>(c.classifier, 2, true, gen, dtype));
}

Tensor MwanModel::Forward(const PairBatch& batch, Tensor* attention) {
  CheckBatch(batch, config_.max_len);
  const int64_t L = config_.max_len;
  const DType dt = embed->weight.dtype();
  Tensor ma = LengthMask(batch.a_len, L, dt), mb = LengthMask(batch.b_len, L, dt);
  Tensor ha = encoder->Forward(embed->Forward(batch.a), batch.a_len).output;  // [B, L, 2H]
  Tensor hb = encoder->Forward(embed->Forward(batch.b), batch.b_len).output;
  if (scores.empty()) return Classify(*fc1, *fc2, MaskedMean(ha, ma), MaskedMean(hb, mb));
  // Every word of B attends over A, one way per score function.
  Tensor excluded = LogicalNot(Gt(ma, Tensor::Scalar(0.5, dt))).Unsqueeze(1);  // [B, 1, La]
  std::vector<Tensor> ways, mix_scores;
  Tensor mean_weights;
  for (size_t k = 0; k < scores.size(); ++k) {
    Tensor alpha = Softmax(scores[k]->Forward(hb, ha), -1, excluded);  // [B, Lb, La]
    mean_weights = k ? Add(mean_weights, alpha) : alpha;
    Tensor x = Concat({Matmul(alpha, ha), hb}, -1);  // [c^k_t; h^b_t]
    x = Mul(Sigmoid(gates[k]->Forward(x)), x);
    ways.push_back(x);
    mix_scores.push_back(Matmul(Tanh(mix_proj->Forward(x)), mix_v.Unsqueeze(1)));  // [B, Lb, 1]
  }
  if (attention) {
    *attention =
        Mul(MulScalar(mean_weights, 1.0 / static_cast<double>(scores.size())), mb.Unsqueeze(2));
  }
  Tensor beta = Softmax(Concat(mix_scores, -1), -1);                // [B, Lb, K]
  Tensor mixed = Sum(Mul(Stack(ways, 2), beta.Unsqueeze(3)), {2});  // [B, Lb, 4H]
  Tensor ho = aggregator->Forward(mixed, batch.b_len).output;       // [B, Lb, 2H]
  const int64_t B = batch.a.size(0), D = ha.size(2);
  auto pool = [&](const attention::AdditiveScore& score, const Tensor& query, const Tensor& keys,
                  const Tensor& mask) {
    Tensor no = LogicalNot(Gt(mask, Tensor::Scalar(0.5, dt))).Unsqueeze(1);
    Tensor w = Softmax(score.Forward(query, keys), -1, no);  // [B, 1, T]
    return Matmul(w, keys).Reshape({B, D});
  };
  Tensor ra = pool(*self_pool, self_query.Reshape({1, 1, D}).Expand({B, 1, D}), ha, ma);
  Tensor ro = pool(*out_pool, ra.Unsqueeze(1), ho, mb);
  return Classify(*fc1, *fc2, ro, ra);
}

std::shared_ptr<PairModel> MakePairModel(const PairsModelConfig& c, Generator& gen, DType dtype) {
  if (c.model == "siamese" || c.model == "abcnn1" || c.model == "abcnn2" || c.model == "abcnn3")
    return std::make_shared<AbcnnModel>(c, gen, dtype);
  if (c.model == "siamese-gru" || c.model == "mwan")
    return std::make_shared<MwanModel>(c, gen, dtype);
  ATTEND_CHECK(false, "pairs: unknown model '", c.model,
               "' (siamese, abcnn1, abcnn2, abcnn3, siamese-gru, mwan)");
  return nullptr;
}

// ---- the task ----

namespace {
// The first n of v (all of them for n <= 0).
const std::vector<SentencePair>& Trimmed(std::vector<SentencePair>& v, int64_t n) {
  if (n > 0 && static_cast<int64_t>(v.size()) > n) v.resize(static_cast<size_t>(n));
  return v;
}
}  // namespace

PairVocab::PairVocab(const std::vector<SentencePair>& train, int64_t min_count) {
  std::map<std::string, int64_t> counts;
  for (const SentencePair& p : train) {
    for (const std::string& w : p.a) ++counts[w];
    for (const std::string& w : p.b) ++counts[w];
  }
  std::vector<std::pair<std::string, int64_t>> kept;
  for (const auto& [w, c] : counts)
    if (c >= min_count) kept.push_back({w, c});
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  words_ = {"<pad>", "<unk>"};
  for (const auto& [w, c] : kept) words_.push_back(w);
  for (size_t i = 2; i < words_.size(); ++i)
    sorted_.push_back({words_[i], static_cast<int64_t>(i)});
  std::sort(sorted_.begin(), sorted_.end());
}

int64_t PairVocab::Id(const std::string& word) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), std::make_pair(word, int64_t{0}));
  return it != sorted_.end() && it->first == word ? it->second : 1;
}

PairBatch MakePairBatch(const std::vector<SentencePair>& pairs, const std::vector<int64_t>& rows,
                        const PairVocab& vocab, int64_t max_len) {
  const int64_t B = static_cast<int64_t>(rows.size());
  std::vector<int64_t> a(B * max_len, 0), b(B * max_len, 0), la(B), lb(B), y(B);
  auto fill = [&](const std::vector<std::string>& words, int64_t* out, int64_t& len) {
    len = std::max<int64_t>(1, std::min<int64_t>(max_len, static_cast<int64_t>(words.size())));
    for (int64_t t = 0; t < len && t < static_cast<int64_t>(words.size()); ++t)
      out[t] = vocab.Id(words[t]);
    if (words.empty()) out[0] = 1;
  };
  for (int64_t i = 0; i < B; ++i) {
    ATTEND_CHECK(rows[i] >= 0 && rows[i] < static_cast<int64_t>(pairs.size()), "pairs: row ",
                 rows[i], " out of range (", pairs.size(), " pairs)");
    const SentencePair& p = pairs[rows[i]];
    fill(p.a, &a[i * max_len], la[i]);
    fill(p.b, &b[i * max_len], lb[i]);
    y[i] = p.label;
  }
  PairBatch batch;
  batch.a = Tensor::FromVector(a, {B, max_len});
  batch.b = Tensor::FromVector(b, {B, max_len});
  batch.a_len = Tensor::FromVector(la, {B});
  batch.b_len = Tensor::FromVector(lb, {B});
  batch.label = Tensor::FromVector(y, {B});
  return batch;
}

PairsMetrics EvaluatePairs(PairModel& model, const std::vector<SentencePair>& pairs,
                           const PairVocab& vocab, int64_t max_len, int64_t batch_size) {
  NoGradGuard no_grad;
  const bool was_training = model.training();
  model.Eval();
  int64_t tp = 0, fp = 0, fn = 0, right = 0;
  double loss = 0.0;
  const int64_t n = static_cast<int64_t>(pairs.size());
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t> rows;
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) rows.push_back(i);
    PairBatch batch = MakePairBatch(pairs, rows, vocab, max_len);
    Tensor out = model.Forward(batch);
    loss += CrossEntropy(out, batch.label).item() * static_cast<double>(rows.size());
    const std::vector<double> logits = out.To(DType::kF64).ToVector<double>();
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t guess = logits[2 * i + 1] > logits[2 * i] ? 1 : 0, gold = pairs[rows[i]].label;
      right += guess == gold;
      tp += guess && gold;
      fp += guess && !gold;
      fn += !guess && gold;
    }
  }
  model.Train(was_training);
  PairsMetrics m;
  m.n = n;
  m.loss = n ? loss / static_cast<double>(n) : 0.0;
  m.accuracy = n ? 100.0 * static_cast<double>(right) / static_cast<double>(n) : 0.0;
  m.f1 = tp ? 100.0 * 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn) : 0.0;
  return m;
}

PairsTask::PairsTask(PairsCorpus corpus, PairsModelConfig config,
                     const PairsCorpusOptions& corpus_options, int64_t max_train, int64_t max_eval)
    : corpus_(std::move(corpus)),
      config_(std::move(config)),
      corpus_options_(corpus_options),
      vocab_(Trimmed(corpus_.splits[0], max_train)) {
  Trimmed(corpus_.splits[1], max_eval);
  config_.vocab = vocab_.size();
  config_.max_len = corpus_options_.max_words;
  Generator gen(config_.seed);
  model_ = MakePairModel(config_, gen);
}

Tensor PairsTask::Loss(const std::vector<int64_t>& rows) {
  PairBatch batch = MakePairBatch(corpus_.splits[0], rows, vocab_, config_.max_len);
  return CrossEntropy(model_->Forward(batch), batch.label);
}

train::TaskEval PairsTask::Evaluate() {
  const PairsMetrics m = EvaluatePairs(*model_, corpus_.splits[1], vocab_, config_.max_len);
  train::TaskEval e;
  e.score = m.accuracy;
  e.loss = m.loss;
  char text[96];
  std::snprintf(text, sizeof(text), "acc %.2f | f1 %.2f", m.accuracy, m.f1);
  e.text = text;
  return e;
}

std::string PairsTask::ConfigJson() const {
  std::ostringstream s;
  s << "{\"model\": \"" << config_.model << "\", \"vocab\": " << config_.vocab
    << ", \"max_len\": " << config_.max_len << ", \"embed_dim\": " << config_.embed_dim
    << ", \"hidden\": " << config_.hidden << ", \"width\": " << config_.width
    << ", \"attn_dim\": " << config_.attn_dim << ", \"classifier\": " << config_.classifier
    << ", \"ways\": \"" << Join(config_.ways) << "\", \"model_seed\": " << config_.seed
    << ", \"min_languages\": " << corpus_options_.min_languages
    << ", \"min_overlap\": " << corpus_options_.min_overlap
    << ", \"corpus_seed\": " << corpus_options_.seed << ", \"train\": " << corpus_.splits[0].size()
    << "}";
  return s.str();
}

std::string PairsTask::Describe() const {
  return config_.Describe() + ", paraphrase or not (" + std::to_string(corpus_.splits[1].size()) +
         " dev pairs)";
}

bool DrawPairAttention(const std::string& path, PairModel& model,
                       const std::vector<SentencePair>& pairs, const PairVocab& vocab,
                       int64_t max_len, int64_t count) {
  std::vector<int64_t> rows;
  for (int64_t i = 0;
       i < static_cast<int64_t>(pairs.size()) && static_cast<int64_t>(rows.size()) < count; ++i)
    if (pairs[i].label == 1) rows.push_back(i);
  if (rows.empty()) return false;
  NoGradGuard no_grad;
  model.Eval();
  PairBatch batch = MakePairBatch(pairs, rows, vocab, max_len);
  Tensor att;
  model.Forward(batch, &att);
  if (!att.defined()) return false;
  const bool mwan = dynamic_cast<MwanModel*>(&model) != nullptr;
  const bool windows = model.AttentionAxes() == "windows";
  const std::vector<int64_t> la = batch.a_len.ToVector<int64_t>(),
                             lb = batch.b_len.ToVector<int64_t>();
  const int64_t R = att.size(1), Cn = att.size(2);
  const std::vector<float> w = att.To(DType::kF32).Contiguous().ToVector<float>();
  const int64_t width = windows ? (R - max_len + 1) : 1;
  // Row and column labels of one pair: its words, or ABCNN-2's windows of `width` words.
  auto labels = [&](const std::vector<std::string>& words, int64_t len, int64_t n, int64_t tag) {
    std::vector<std::string> out;
    const int64_t cols = windows ? len + width - 1 : len;
    for (int64_t j = 0; j < std::min(cols, n); ++j) {
      std::string l;
      if (windows) {
        for (int64_t k = std::max<int64_t>(0, j - width + 1); k <= std::min(j, len - 1); ++k)
          l += (l.empty() ? "" : " ") + words[static_cast<size_t>(k)];
      } else {
        l = words[static_cast<size_t>(j)];
      }
      out.push_back(std::to_string(tag) + ": " + l);
    }
    return out;
  };
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::pair<int64_t, int64_t>> row_at, col_at;  // (pair, position)
  for (size_t i = 0; i < rows.size(); ++i) {
    const SentencePair& p = pairs[rows[i]];
    const auto& rw = mwan ? p.b : p.a;
    const auto& cw = mwan ? p.a : p.b;
    const int64_t rl = mwan ? lb[i] : la[i], cl = mwan ? la[i] : lb[i];
    std::vector<std::string> r = labels(rw, rl, R, static_cast<int64_t>(i) + 1);
    std::vector<std::string> c = labels(cw, cl, Cn, static_cast<int64_t>(i) + 1);
    for (size_t k = 0; k < r.size(); ++k) {
      row_labels.push_back(r[k]);
      row_at.push_back({static_cast<int64_t>(i), static_cast<int64_t>(k)});
    }
    for (size_t k = 0; k < c.size(); ++k) {
      col_labels.push_back(c[k]);
      col_at.push_back({static_cast<int64_t>(i), static_cast<int64_t>(k)});
    }
  }
  std::vector<float> grid(row_labels.size() * col_labels.size(), 0.0f);
  float top = 0.0f;
  for (size_t r = 0; r < row_at.size(); ++r)
    for (size_t c = 0; c < col_at.size(); ++c) {
      if (row_at[r].first != col_at[c].first) continue;  // only each pair's own block
      const float v = w[(row_at[r].first * R + row_at[r].second) * Cn + col_at[c].second];
      grid[r * col_labels.size() + c] = v;
      top = std::max(top, v);
    }
  viz::HeatmapOptions opt;
  opt.color = true;
  opt.max_weight = top > 0.0f ? top : 1.0f;  // ABCNN-2's sums exceed 1
  viz::WriteAttentionHeatmap(path, col_labels, row_labels, grid, opt);
  return true;
}

}  // namespace attend::tasks
