// The lexical shortlist: IBM model 1 over the training pairs (sparse tables, one EM pass a
// stream over precomputed table slots), its text file, and the union of lists decoding scores.
#include "attend/shortlist.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "attend/checkpoint.h"
#include "attend/error.h"
#include "attend/files.h"
#include "attend/nmt.h"

namespace attend::nmt {
namespace {

constexpr int64_t kSpecialIds = 4;  // pad, unk, bos, eos: always scored, never listed
constexpr int kVersion = 1;
constexpr const char* kMagic = "attend-shortlist";

void CheckVocabularySize(int64_t vocab_size, const std::string& where) {
  ATTEND_CHECK(vocab_size > kSpecialIds && vocab_size <= Shortlist::kMaxVocabulary, where,
               ": vocab_size ", vocab_size, " is not in ", kSpecialIds + 1, "..",
               Shortlist::kMaxVocabulary);
}

bool IsDigest(std::string_view d) {
  if (d.empty() || d.size() > 64) return false;
  for (char c : d)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void CheckOptions(const ShortlistOptions& o, const std::string& where) {
  ATTEND_CHECK(o.frequent >= 0, where, ": frequent must be >= 0, not ", o.frequent);
  ATTEND_CHECK(o.per_source >= 0, where, ": per_source must be >= 0, not ", o.per_source);
  ATTEND_CHECK(o.iterations >= 1, where, ": iterations must be >= 1, not ", o.iterations);
}

// A piece of a malformed line for a message: quoted, at most 40 bytes of it.
std::string Quote(std::string_view s) {
  std::string q(1, '\'');
  q.append(s.substr(0, 40));
  q.append(s.size() > 40 ? "...'" : "'");
  return q;
}

// A non-negative decimal number that fills `token`.
int64_t ParseNumber(std::string_view token, const std::string& where, const char* what) {
  ATTEND_CHECK(!token.empty(), where, ": ", what, " is missing");
  ATTEND_CHECK(token.size() <= 18, where, ": ", what, " ", Quote(token),
               " is not a number (or too large)");
  int64_t v = 0;
  for (char c : token) {
    ATTEND_CHECK(c >= '0' && c <= '9', where, ": ", what, " ", Quote(token), " is not a number");
    v = v * 10 + (c - '0');
  }
  return v;
}

// "key=N" or "key=TEXT" as field `field` of the header.
std::string_view HeaderValue(std::string_view token, std::string_view key, int field,
                             const std::string& where) {
  ATTEND_CHECK(
      token.size() > key.size() && token.substr(0, key.size()) == key && token[key.size()] == '=',
      where, ": expected '", key, "=...' as field ", field, " of the header, found ", Quote(token));
  return token.substr(key.size() + 1);
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

// Target ids separated by single spaces: each in kSpecialIds..vocab_size-1, none twice, at most
// `limit` of them.
std::vector<int64_t> ParseTargetList(std::string_view list, int64_t vocab_size, int64_t limit,
                                     const char* limit_name, const std::string& where) {
  std::vector<int64_t> ids;
  if (list.empty()) return ids;
  for (std::string_view token : Split(list, ' ')) {
    ATTEND_CHECK(!token.empty(), where, ": expected target ids separated by single spaces");
    const int64_t id = ParseNumber(token, where, "target id");
    ATTEND_CHECK(id < vocab_size, where, ": target id ", id, " is outside the vocabulary (",
                 vocab_size, " ids)");
    ATTEND_CHECK(id >= kSpecialIds, where, ": target id ", id,
                 " is one of the special ids 0..3, which every shortlist scores");
    ids.push_back(id);
  }
  ATTEND_CHECK(static_cast<int64_t>(ids.size()) <= limit, where, ": ", ids.size(),
               " target ids, more than the header's ", limit_name, "=", limit);
  std::vector<int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  ATTEND_CHECK(dup == sorted.end(), where, ": target id ", *dup, " is listed twice");
  return ids;
}

std::string Join(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s;
}

// IBM model 1's corpus in the form its EM passes stream over. Each pair keeps its distinct
// source ids (with their counts) and distinct target ids (with theirs): a repeated token adds
// the same terms again, so it is counted instead of revisited. The translation table t(t | s)
// is sparse: row s (row vocab_size: the NULL word) holds the target ids co-occurring with s,
// ascending. slots[] gives, for each pair, the table entry of every (distinct target j,
// distinct source k) as slots[slot_off[p] + j * (S + 1) + k], k = S being the NULL word.
struct Model1 {
  int64_t vocab_size = 0;
  std::vector<int64_t> src_off, tgt_off;  // per pair, into the id and count arrays
  std::vector<int32_t> src_id, src_count, tgt_id, tgt_count;
  std::vector<int64_t> src_len;    // source tokens per pair (repeats included)
  std::vector<int64_t> slot_off;   // per pair, into slots
  std::vector<uint32_t> slots;     // table entries
  std::vector<int64_t> row_off;    // vocab_size + 2: row r's entries
  std::vector<int32_t> row_tgt;    // the target id of each entry
  std::vector<int64_t> frequency;  // per target id: its tokens in the targets
  std::vector<double> prob, count;

  size_t pairs() const { return src_len.size(); }

  void Index(const std::vector<std::vector<int64_t>>& sources,
             const std::vector<std::vector<int64_t>>& targets) {
    const size_t n = sources.size();
    const int64_t v = vocab_size;
    ATTEND_CHECK(n < (size_t{1} << 32), "Shortlist::Build: ", n, " pairs, more than 2^32 - 1");
    src_off.assign(n + 1, 0);
    tgt_off.assign(n + 1, 0);
    src_len.resize(n);
    frequency.assign(static_cast<size_t>(v), 0);
    // Distinct ids of each side of each pair, in order of first appearance.
    std::vector<int64_t> stamp(static_cast<size_t>(v), -1);
    std::vector<int32_t> local(static_cast<size_t>(v), 0);
    auto distinct = [&](const std::vector<int64_t>& ids, int64_t mark, const char* side, size_t p,
                        std::vector<int32_t>& out_id, std::vector<int32_t>& out_count) {
      const size_t start = out_id.size();
      for (size_t i = 0; i < ids.size(); ++i) {
        const int64_t id = ids[i];
        ATTEND_CHECK(id >= 0 && id < v, "Shortlist::Build: ", side, " ", p, ", position ", i,
                     ": id ", id, " is outside the vocabulary (", v, " ids)");
        if (stamp[id] != mark) {
          stamp[id] = mark;
          local[id] = static_cast<int32_t>(out_id.size() - start);
          out_id.push_back(static_cast<int32_t>(id));
          out_count.push_back(1);
        } else {
          ++out_count[start + static_cast<size_t>(local[id])];
        }
      }
    };
    for (size_t p = 0; p < n; ++p) {
      distinct(sources[p], 2 * static_cast<int64_t>(p), "source", p, src_id, src_count);
      distinct(targets[p], 2 * static_cast<int64_t>(p) + 1, "target", p, tgt_id, tgt_count);
      src_off[p + 1] = static_cast<int64_t>(src_id.size());
      tgt_off[p + 1] = static_cast<int64_t>(tgt_id.size());
      src_len[p] = static_cast<int64_t>(sources[p].size());
      for (int64_t t : targets[p]) ++frequency[t];
    }
    slot_off.assign(n + 1, 0);
    for (size_t p = 0; p < n; ++p) {
      const int64_t s = src_off[p + 1] - src_off[p], t = tgt_off[p + 1] - tgt_off[p];
      slot_off[p + 1] = slot_off[p] + (s + 1) * t;
    }
    slots.assign(static_cast<size_t>(slot_off[n]), 0);

    // Which pairs hold each source id, and as which of their distinct sources (k).
    std::vector<int64_t> post_off(static_cast<size_t>(v) + 1, 0);
    for (int32_t s : src_id) ++post_off[static_cast<size_t>(s) + 1];
    for (int64_t s = 0; s < v; ++s) post_off[s + 1] += post_off[s];
    std::vector<uint32_t> post_pair(src_id.size()), post_k(src_id.size());
    {
      std::vector<int64_t> fill(post_off.begin(), post_off.end() - 1);
      for (size_t p = 0; p < n; ++p)
        for (int64_t k = src_off[p]; k < src_off[p + 1]; ++k) {
          const int64_t at = fill[src_id[k]]++;
          post_pair[at] = static_cast<uint32_t>(p);
          post_k[at] = static_cast<uint32_t>(k - src_off[p]);
        }
    }

    // Row s: the targets of s's pairs, ascending; then every slot of (target, s) in them.
    row_off.assign(static_cast<size_t>(v) + 2, 0);
    std::vector<int32_t> seen(static_cast<size_t>(v), -1);
    std::vector<uint32_t> position(static_cast<size_t>(v), 0);
    std::vector<int32_t> row;
    auto add_row = [&](int64_t r, const std::vector<int32_t>& ids) {
      const int64_t start = static_cast<int64_t>(row_tgt.size());
      ATTEND_CHECK(start + static_cast<int64_t>(ids.size()) < (int64_t{1} << 32),
                   "Shortlist::Build: more than 2^32 co-occurring (source, target) id pairs");
      for (size_t i = 0; i < ids.size(); ++i)
        position[ids[i]] = static_cast<uint32_t>(start + static_cast<int64_t>(i));
      row_tgt.insert(row_tgt.end(), ids.begin(), ids.end());
      row_off[r + 1] = static_cast<int64_t>(row_tgt.size());
    };
    for (int64_t s = 0; s < v; ++s) {
      row.clear();
      for (int64_t e = post_off[s]; e < post_off[s + 1]; ++e) {
        const size_t p = post_pair[e];
        for (int64_t j = tgt_off[p]; j < tgt_off[p + 1]; ++j)
          if (seen[tgt_id[j]] != s) {
            seen[tgt_id[j]] = static_cast<int32_t>(s);
            row.push_back(tgt_id[j]);
          }
      }
      std::sort(row.begin(), row.end());
      add_row(s, row);
      for (int64_t e = post_off[s]; e < post_off[s + 1]; ++e) {
        const size_t p = post_pair[e];
        const int64_t width = src_off[p + 1] - src_off[p] + 1;
        uint32_t* out = slots.data() + slot_off[p] + post_k[e];
        for (int64_t j = tgt_off[p]; j < tgt_off[p + 1]; ++j)
          out[(j - tgt_off[p]) * width] = position[tgt_id[j]];
      }
    }
    // The NULL word co-occurs with every target id of the corpus.
    row.clear();
    for (int64_t t = 0; t < v; ++t)
      if (frequency[t] > 0) row.push_back(static_cast<int32_t>(t));
    add_row(v, row);
    for (size_t p = 0; p < n; ++p) {
      const int64_t s = src_off[p + 1] - src_off[p];
      uint32_t* out = slots.data() + slot_off[p] + s;
      for (int64_t j = tgt_off[p]; j < tgt_off[p + 1]; ++j)
        out[(j - tgt_off[p]) * (s + 1)] = position[tgt_id[j]];
    }

    // Uniform over each row's co-occurring targets.
    prob.resize(row_tgt.size());
    count.assign(row_tgt.size(), 0.0);
    for (int64_t r = 0; r <= v; ++r) {
      const int64_t len = row_off[r + 1] - row_off[r];
      for (int64_t e = row_off[r]; e < row_off[r + 1]; ++e)
        prob[e] = 1.0 / static_cast<double>(len);
    }
  }

  // The E-step: the corpus log-likelihood under `prob`; with `accumulate`, each (target, source)
  // pair's expected alignment counts added to `count`.
  double Expect(bool accumulate) {
    double log_likelihood = 0.0;
    for (size_t p = 0; p < pairs(); ++p) {
      const int64_t s = src_off[p + 1] - src_off[p];
      const int32_t* a = src_count.data() + src_off[p];
      const double log_positions = std::log(static_cast<double>(src_len[p] + 1));
      for (int64_t j = tgt_off[p]; j < tgt_off[p + 1]; ++j) {
        const uint32_t* slot = slots.data() + slot_off[p] + (j - tgt_off[p]) * (s + 1);
        double z = prob[slot[s]];
        for (int64_t k = 0; k < s; ++k) z += a[k] * prob[slot[k]];
        if (!(z > 0.0)) continue;  // every entry underflowed: nothing to share out
        const double b = tgt_count[j];
        log_likelihood += b * (std::log(z) - log_positions);
        if (!accumulate) continue;
        const double scale = b / z;
        count[slot[s]] += scale * prob[slot[s]];
        for (int64_t k = 0; k < s; ++k) count[slot[k]] += scale * a[k] * prob[slot[k]];
      }
    }
    return log_likelihood;
  }

  // The M-step: each row's counts normalised into t(. | s); counts reset.
  void Maximize() {
    for (size_t r = 0; r + 1 < row_off.size(); ++r) {
      double sum = 0.0;
      for (int64_t e = row_off[r]; e < row_off[r + 1]; ++e) sum += count[e];
      if (sum > 0.0)
        for (int64_t e = row_off[r]; e < row_off[r + 1]; ++e) prob[e] = count[e] / sum;
    }
    std::fill(count.begin(), count.end(), 0.0);
  }
};

}  // namespace

std::string VocabularyDigest(const std::string& vocab_bytes) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x",
                static_cast<unsigned>(io::Crc32(vocab_bytes.data(), vocab_bytes.size())));
  return hex;
}

Shortlist Shortlist::Build(const std::vector<std::vector<int64_t>>& sources,
                           const std::vector<std::vector<int64_t>>& targets, int64_t vocab_size,
                           const std::string& vocab_digest, const ShortlistOptions& options,
                           std::vector<double>* log_likelihood) {
  const std::string where = "Shortlist::Build";
  ATTEND_CHECK(sources.size() == targets.size(), where, ": ", sources.size(), " sources but ",
               targets.size(), " targets");
  CheckVocabularySize(vocab_size, where);
  ATTEND_CHECK(IsDigest(vocab_digest), where, ": the vocabulary digest ", Quote(vocab_digest),
               " is not 1 to 64 lowercase hex digits");
  CheckOptions(options, where);

  Model1 m;
  m.vocab_size = vocab_size;
  m.Index(sources, targets);
  if (log_likelihood != nullptr) log_likelihood->clear();
  for (int64_t it = 0; it < options.iterations; ++it) {
    const double ll = m.Expect(/*accumulate=*/true);
    if (log_likelihood != nullptr) log_likelihood->push_back(ll);
    m.Maximize();
  }
  if (log_likelihood != nullptr) log_likelihood->push_back(m.Expect(/*accumulate=*/false));

  Shortlist out;
  out.vocab_size_ = vocab_size;
  out.digest_ = vocab_digest;
  out.options_ = options;
  // The most frequent targets (ties: the lower id first).
  std::vector<int64_t> ids;
  for (int64_t t = kSpecialIds; t < vocab_size; ++t)
    if (m.frequency[t] > 0) ids.push_back(t);
  const auto more_frequent = [&](int64_t a, int64_t b) {
    return m.frequency[a] != m.frequency[b] ? m.frequency[a] > m.frequency[b] : a < b;
  };
  const size_t keep = static_cast<size_t>(std::min<int64_t>(options.frequent, ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), more_frequent);
  out.frequent_.assign(ids.begin(), ids.begin() + keep);
  // Each source id's best targets by t(t | s).
  std::vector<std::pair<double, int64_t>> row;
  for (int64_t s = 0; s < vocab_size; ++s) {
    row.clear();
    for (int64_t e = m.row_off[s]; e < m.row_off[s + 1]; ++e)
      if (m.row_tgt[e] >= kSpecialIds) row.emplace_back(m.prob[e], m.row_tgt[e]);
    const size_t k = static_cast<size_t>(std::min<int64_t>(options.per_source, row.size()));
    if (k == 0) continue;
    std::partial_sort(row.begin(), row.begin() + k, row.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::vector<int64_t> list(k);
    for (size_t i = 0; i < k; ++i) list[i] = row[i].second;
    out.sources_.push_back(s);
    out.candidates_.push_back(std::move(list));
  }
  return out;
}

std::string Shortlist::ToText() const {
  std::ostringstream os;
  os << kMagic << ' ' << kVersion << " vocab_size=" << vocab_size_ << " digest=" << digest_
     << " frequent=" << options_.frequent << " per_source=" << options_.per_source
     << " iterations=" << options_.iterations << "\nfrequent\t" << Join(frequent_) << '\n';
  for (size_t k = 0; k < sources_.size(); ++k)
    os << sources_[k] << '\t' << Join(candidates_[k]) << '\n';
  return os.str();
}

Shortlist Shortlist::Parse(const std::string& text, const std::string& source_name) {
  std::vector<std::string_view> lines = Split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the last line's newline
  auto where = [&](size_t i) { return "shortlist " + source_name + ":" + std::to_string(i + 1); };
  ATTEND_CHECK(!lines.empty(), where(0), ": empty, no header line");

  // attend-shortlist 1 vocab_size=N digest=HEX frequent=N per_source=N iterations=N
  Shortlist out;
  out.name_ = source_name;
  {
    const std::string at = where(0);
    const std::vector<std::string_view> f = Split(lines[0], ' ');
    ATTEND_CHECK(f[0] == kMagic, at, ": not a shortlist (the first line should start with '",
                 kMagic, "')");
    ATTEND_CHECK(f.size() >= 2, at, ": the header has no version");
    const int64_t version = ParseNumber(f[1], at, "the version");
    ATTEND_CHECK(version == kVersion, at, ": version ", version,
                 " is not supported (this build reads version ", kVersion, ")");
    static constexpr const char* kKeys[] = {"vocab_size", "digest", "frequent", "per_source",
                                            "iterations"};
    constexpr size_t kFields = 2 + std::size(kKeys);
    ATTEND_CHECK(f.size() >= kFields, at, ": the header ends after ", f.size(),
                 " fields; expected '", kKeys[f.size() - 2], "=...' next");
    ATTEND_CHECK(
        f.size() == kFields, at, ": trailing characters after the header: ",
        Quote(lines[0].substr(static_cast<size_t>(f[kFields].data() - lines[0].data()) - 1)));
    std::string_view values[std::size(kKeys)];
    for (size_t i = 0; i < std::size(kKeys); ++i)
      values[i] = HeaderValue(f[2 + i], kKeys[i], static_cast<int>(3 + i), at);
    out.vocab_size_ = ParseNumber(values[0], at, "vocab_size");
    CheckVocabularySize(out.vocab_size_, at);
    ATTEND_CHECK(IsDigest(values[1]), at, ": the digest ", Quote(values[1]),
                 " is not 1 to 64 lowercase hex digits");
    out.digest_ = std::string(values[1]);
    out.options_.frequent = ParseNumber(values[2], at, "frequent");
    out.options_.per_source = ParseNumber(values[3], at, "per_source");
    out.options_.iterations = ParseNumber(values[4], at, "iterations");
    CheckOptions(out.options_, at);
  }

  // frequent<TAB>ids
  ATTEND_CHECK(lines.size() >= 2, where(1), ": missing the 'frequent<TAB>ids' line");
  {
    const std::string at = where(1);
    constexpr std::string_view kFrequent = "frequent\t";
    ATTEND_CHECK(lines[1].substr(0, kFrequent.size()) == kFrequent, at,
                 ": expected 'frequent<TAB>ids', found ", Quote(lines[1]));
    out.frequent_ = ParseTargetList(lines[1].substr(kFrequent.size()), out.vocab_size_,
                                    out.options_.frequent, "frequent", at);
  }

  // <source id><TAB>ids, one line per source id, in any order.
  std::vector<std::pair<int64_t, std::vector<int64_t>>> lists;
  std::unordered_map<int64_t, size_t> line_of;
  for (size_t i = 2; i < lines.size(); ++i) {
    const std::string at = where(i);
    const std::string_view line = lines[i];
    ATTEND_CHECK(!line.empty(), at, ": an empty line");
    const size_t tab = line.find('\t');
    ATTEND_CHECK(tab != std::string_view::npos, at,
                 ": expected '<source id><TAB><target ids>', found ", Quote(line));
    const int64_t source = ParseNumber(line.substr(0, tab), at, "source id");
    ATTEND_CHECK(source < out.vocab_size_, at, ": source id ", source,
                 " is outside the vocabulary (", out.vocab_size_, " ids)");
    const auto [first, fresh] = line_of.emplace(source, i);
    ATTEND_CHECK(fresh, at, ": a second line for source id ", source, " (the first is line ",
                 first->second + 1, ")");
    std::vector<int64_t> ids = ParseTargetList(line.substr(tab + 1), out.vocab_size_,
                                               out.options_.per_source, "per_source", at);
    ATTEND_CHECK(!ids.empty(), at, ": source id ", source, " has no target ids");
    lists.emplace_back(source, std::move(ids));
  }
  std::sort(lists.begin(), lists.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [source, ids] : lists) {
    out.sources_.push_back(source);
    out.candidates_.push_back(std::move(ids));
  }
  return out;
}

std::function<std::vector<int64_t>(const std::vector<std::vector<int64_t>>&)> LoadOutputIds(
    const std::string& path, const Vocabulary& vocab) {
  auto shortlist = std::make_shared<const Shortlist>(Shortlist::Load(path));
  shortlist->CheckVocabulary(vocab.size(), VocabularyDigest(vocab.bytes()));
  return [shortlist](const std::vector<std::vector<int64_t>>& sources) {
    return shortlist->Targets(sources);
  };
}

Shortlist Shortlist::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTEND_CHECK(in.good(), "shortlist ", path, ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  ATTEND_CHECK(!in.bad(), "shortlist ", path, ": cannot read the file");
  return Parse(ss.str(), path);
}

void Shortlist::Save(const std::string& path) const { io::WriteFileAtomic(path, ToText()); }

void Shortlist::CheckVocabulary(int64_t vocab_size, const std::string& vocab_digest) const {
  ATTEND_CHECK(vocab_size == vocab_size_ && vocab_digest == digest_, "shortlist",
               name_.empty() ? "" : " " + name_, " was built for another vocabulary (", vocab_size_,
               " pieces, digest ", digest_, "), not this one (", vocab_size, " pieces, digest ",
               vocab_digest, ")");
}

const std::vector<int64_t>& Shortlist::candidates(int64_t source_id) const {
  static const std::vector<int64_t> kNone;
  ATTEND_CHECK(source_id >= 0 && source_id < vocab_size_, "Shortlist::candidates: source id ",
               source_id, " is outside the vocabulary (", vocab_size_, " ids)");
  const auto it = std::lower_bound(sources_.begin(), sources_.end(), source_id);
  if (it == sources_.end() || *it != source_id) return kNone;
  return candidates_[static_cast<size_t>(it - sources_.begin())];
}

std::vector<int64_t> Shortlist::Targets(const std::vector<std::vector<int64_t>>& sources) const {
  // One mark per vocabulary id, then the marked ids in order: linear in the vocabulary and the
  // lists, where sorting the concatenated lists (tens of thousands of ids a batch) was not.
  std::vector<char> mark(static_cast<size_t>(vocab_size_), 0), seen(mark.size(), 0);
  for (int64_t id = 0; id < kSpecialIds && id < vocab_size_; ++id) mark[id] = 1;
  for (int64_t id : frequent_) mark[id] = 1;
  for (size_t i = 0; i < sources.size(); ++i)
    for (size_t j = 0; j < sources[i].size(); ++j) {
      const int64_t id = sources[i][j];
      ATTEND_CHECK(id >= 0 && id < vocab_size_, "Shortlist::Targets: sentence ", i, ", position ",
                   j, ": source id ", id, " is outside the vocabulary (", vocab_size_, " ids)");
      if (seen[id]) continue;
      seen[id] = 1;
      for (int64_t t : candidates(id)) mark[t] = 1;
    }
  std::vector<int64_t> out;
  for (int64_t id = 0; id < vocab_size_; ++id)
    if (mark[id]) out.push_back(id);
  return out;
}

bool operator==(const Shortlist& a, const Shortlist& b) {
  return a.vocab_size_ == b.vocab_size_ && a.digest_ == b.digest_ &&
         a.options_.frequent == b.options_.frequent &&
         a.options_.per_source == b.options_.per_source &&
         a.options_.iterations == b.options_.iterations && a.frequent_ == b.frequent_ &&
         a.sources_ == b.sources_ && a.candidates_ == b.candidates_;
}

ShortlistCoverage MeasureCoverage(const Shortlist& shortlist,
                                  const std::vector<std::vector<int64_t>>& sources,
                                  const std::vector<std::vector<int64_t>>& references,
                                  int64_t batch_size) {
  ATTEND_CHECK(batch_size >= 1, "MeasureCoverage: batch_size must be >= 1, not ", batch_size);
  ATTEND_CHECK(shortlist.vocab_size() > 0, "MeasureCoverage: an empty shortlist");
  ATTEND_CHECK(references.empty() || references.size() == sources.size(),
               "MeasureCoverage: ", sources.size(), " sources but ", references.size(),
               " references");
  ShortlistCoverage c;
  c.sentences = static_cast<int64_t>(sources.size());
  int64_t tokens = 0, inside = 0;
  for (size_t start = 0; start < sources.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(sources.size(), start + static_cast<size_t>(batch_size));
    const std::vector<std::vector<int64_t>> batch(sources.begin() + start, sources.begin() + end);
    const std::vector<int64_t> targets = shortlist.Targets(batch);
    ++c.batches;
    c.mean_targets += static_cast<double>(targets.size());
    if (references.empty()) continue;
    for (size_t i = start; i < end; ++i)
      for (int64_t id : references[i]) {
        ++tokens;
        inside += std::binary_search(targets.begin(), targets.end(), id) ? 1 : 0;
      }
  }
  if (c.batches > 0) c.mean_targets /= static_cast<double>(c.batches);
  c.mean_share = c.mean_targets / static_cast<double>(shortlist.vocab_size());
  if (tokens > 0) c.reference_recall = static_cast<double>(inside) / static_cast<double>(tokens);
  return c;
}

}  // namespace attend::nmt
