// Word alignments: Pharaoh's text form ("0-0 1-2 2?1") and the alignment error rate of Och and
// Ney (2003), with its precision and recall, summed over a corpus.
#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "attend/error.h"
#include "attend/metrics.h"
#include "metrics/internal.h"

namespace attend::metrics {
namespace {

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// A token as an error message shows it: bytes that would garble a terminal become '?', and a
// runaway token is cut short.
std::string Shown(std::string_view token) {
  constexpr size_t kMax = 40;
  std::string out;
  for (size_t i = 0; i < token.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    out.push_back(c < 0x20 || c == 0x7f ? '?' : token[i]);
  }
  if (token.size() > kMax) out += "...";
  return out;
}

// A 0-based word index: decimal digits only (no sign, no '+'), within int64_t.
bool ParseIndex(std::string_view digits, int64_t* value) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *value);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

// Sorted, without repeats: each of A, S and P is a set of links.
AlignmentLinks AsSet(AlignmentLinks links) {
  std::sort(links.begin(), links.end());
  links.erase(std::unique(links.begin(), links.end()), links.end());
  return links;
}

}  // namespace

AlignmentLinks ParsePharaoh(std::string_view line, std::string_view where,
                            AlignmentLinks* possible) {
  if (possible != nullptr) possible->clear();
  AlignmentLinks sure;
  size_t pos = 0;
  int64_t number = 0;
  while (pos < line.size()) {
    while (pos < line.size() && IsBlank(line[pos])) ++pos;
    if (pos == line.size()) break;
    size_t end = pos;
    while (end < line.size() && !IsBlank(line[end])) ++end;
    const std::string_view token = line.substr(pos, end - pos);
    pos = end;
    ++number;
    const size_t sep = token.find_first_of("-?");
    int64_t s = 0, t = 0;
    ATTEND_CHECK(sep != std::string_view::npos && ParseIndex(token.substr(0, sep), &s) &&
                     ParseIndex(token.substr(sep + 1), &t),
                 where, ": link ", number, " '", Shown(token),
                 "' is not an alignment link (Pharaoh's \"s-t\", or \"s?t\" for a possible link: "
                 "0-based source and target word indices)");
    if (token[sep] == '?' && possible != nullptr) {
      possible->emplace_back(s, t);
    } else {
      sure.emplace_back(s, t);
    }
  }
  return sure;
}

std::string FormatPharaoh(const AlignmentLinks& links) {
  std::string out;
  for (const auto& [s, t] : links) {
    ATTEND_CHECK(s >= 0 && t >= 0, "FormatPharaoh: negative word index in link (", s, ", ", t, ")");
    if (!out.empty()) out += ' ';
    out += std::to_string(s) + "-" + std::to_string(t);
  }
  return out;
}

AlignmentScore AlignmentErrorRate(const std::vector<AlignmentLinks>& hypotheses,
                                  const std::vector<AlignmentLinks>& sure,
                                  const std::vector<AlignmentLinks>& possible) {
  ATTEND_CHECK(hypotheses.size() == sure.size(), "AlignmentErrorRate: ", hypotheses.size(),
               " hypothesis alignments but ", sure.size(), " reference alignments");
  ATTEND_CHECK(possible.empty() || possible.size() == sure.size(),
               "AlignmentErrorRate: ", possible.size(), " lines of possible links but ",
               sure.size(), " reference alignments (give one per sentence, or none)");
  AlignmentScore result;
  AlignmentCounts& c = result.counts;
  for (size_t k = 0; k < hypotheses.size(); ++k) {
    const AlignmentLinks a = AsSet(hypotheses[k]);
    const AlignmentLinks s = AsSet(sure[k]);
    AlignmentLinks p = s;
    if (!possible.empty()) p.insert(p.end(), possible[k].begin(), possible[k].end());
    p = AsSet(std::move(p));
    c.hypothesis += static_cast<int64_t>(a.size());
    c.sure += static_cast<int64_t>(s.size());
    c.possible += static_cast<int64_t>(p.size());
    c.hit_sure += detail::CountCommon(a, s);
    c.hit_possible += detail::CountCommon(a, p);
  }
  // Nothing proposed and nothing to find is a perfect score, not 0 / 0.
  const int64_t denominator = c.hypothesis + c.sure;
  result.aer = denominator == 0 ? 0.0
                                : 1.0 - static_cast<double>(c.hit_sure + c.hit_possible) /
                                            static_cast<double>(denominator);
  result.precision = detail::Ratio(c.hit_possible, c.hypothesis, c.sure == 0);
  result.recall = detail::Ratio(c.hit_sure, c.sure, c.hypothesis == 0);
  return result;
}

Score AlignmentScoreLine(const AlignmentScore& score, int width) {
  const AlignmentCounts& c = score.counts;
  Score out;
  out.name = "AER";
  out.score = 100.0 * score.aer;
  out.verbose = "(P = " + detail::FixedPoint(100.0 * score.precision, width) +
                " R = " + detail::FixedPoint(100.0 * score.recall, width) +
                " |A| = " + std::to_string(c.hypothesis) + " |S| = " + std::to_string(c.sure);
  if (c.possible != c.sure) out.verbose += " |P| = " + std::to_string(c.possible);
  out.verbose += ")";
  out.signature.fields = {{"version", "v", "attend-" + detail::ProjectVersion()}};
  out.json_counts = {{"hypothesis_links", c.hypothesis},
                     {"sure_links", c.sure},
                     {"possible_links", c.possible},
                     {"hit_sure", c.hit_sure},
                     {"hit_possible", c.hit_possible}};
  return out;
}

}  // namespace attend::metrics
