// Labelled bracket precision, recall and F1 of linearised trees, counted as evalb counts them: a
// constituent is (label, first leaf, one past the last leaf), the brackets of a sentence are a
// multiset, and the totals are summed over the corpus before the ratios are taken.
#include <algorithm>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "attend/error.h"
#include "attend/metrics.h"
#include "metrics/internal.h"

namespace attend::metrics {
namespace {

struct Bracket {
  std::string_view label;
  int64_t start = 0, end = 0;  // leaves [start, end)
  bool operator<(const Bracket& o) const {
    return std::tie(label, start, end) < std::tie(o.label, o.start, o.end);
  }
  bool operator==(const Bracket& o) const {
    return label == o.label && start == o.start && end == o.end;
  }
};

struct Tree {
  std::vector<Bracket> brackets;  // those that closed, sorted
  int64_t leaves = 0;
  std::string problem;  // empty when the line is one well-formed tree
};

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// Reads a tree leniently: every ')' that closes an open '(' with an agreeing label (a bare ')' or
// ')LABEL' naming the open one) gives a bracket; the first thing wrong is kept in `problem` and
// the reading goes on, so that a hypothesis gets credit for what it closes correctly.
Tree ReadTree(std::string_view line) {
  Tree tree;
  auto note = [&tree](int64_t token, std::string what) {
    if (tree.problem.empty()) tree.problem = "token " + std::to_string(token) + ": " + what;
  };
  struct Open {
    std::string_view label;
    int64_t start;
  };
  std::vector<Open> open;
  int64_t roots = 0, token = 0;
  size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && IsBlank(line[pos])) ++pos;
    if (pos == line.size()) break;
    size_t end = pos;
    while (end < line.size() && !IsBlank(line[end])) ++end;
    const std::string_view t = line.substr(pos, end - pos);
    pos = end;
    ++token;
    if (t[0] == '(') {
      if (t.size() == 1) note(token, "'(' without a label");
      if (open.empty() && ++roots > 1) note(token, "a second tree after the first closed");
      open.push_back({t.substr(1), tree.leaves});
    } else if (t[0] == ')') {
      if (open.empty()) {
        note(token, "')' closes nothing");
        continue;
      }
      const Open o = open.back();
      open.pop_back();
      const std::string_view closing = t.substr(1);
      if (!closing.empty() && closing != o.label) {
        note(token, "')" + std::string(closing) + "' closes (" + std::string(o.label));
        continue;  // not closed correctly: no credit
      }
      if (tree.leaves == o.start) {
        note(token, "(" + std::string(o.label) + " holds no word");
        continue;
      }
      tree.brackets.push_back({o.label, o.start, tree.leaves});
    } else {
      if (open.empty()) note(token, "word '" + std::string(t.substr(0, 40)) + "' outside the tree");
      ++tree.leaves;
    }
  }
  if (!open.empty()) note(token, std::to_string(open.size()) + " bracket(s) left open");
  if (roots == 0) note(token, "no tree");
  std::sort(tree.brackets.begin(), tree.brackets.end());
  return tree;
}

}  // namespace

BracketScore BracketF1(const std::vector<std::string>& hypotheses,
                       const std::vector<std::string>& references) {
  ATTEND_CHECK(hypotheses.size() == references.size(), "BracketF1: ", hypotheses.size(),
               " hypothesis trees but ", references.size(), " reference trees");
  BracketScore s;
  for (size_t k = 0; k < hypotheses.size(); ++k) {
    const Tree ref = ReadTree(references[k]);
    ATTEND_CHECK(ref.problem.empty(), "BracketF1: reference line ", k + 1,
                 " is not a well-formed tree (", ref.problem, ")");
    const Tree hyp = ReadTree(hypotheses[k]);
    const int64_t matched = detail::CountCommon(hyp.brackets, ref.brackets);
    ++s.sentences;
    if (!hyp.problem.empty()) ++s.ill_formed;
    s.hypothesis_brackets += static_cast<int64_t>(hyp.brackets.size());
    s.reference_brackets += static_cast<int64_t>(ref.brackets.size());
    s.matched += matched;
    if (hyp.problem.empty() && hyp.leaves == ref.leaves && hyp.brackets == ref.brackets) ++s.exact;
  }
  s.precision = detail::Ratio(s.matched, s.hypothesis_brackets, s.reference_brackets == 0);
  s.recall = detail::Ratio(s.matched, s.reference_brackets, s.hypothesis_brackets == 0);
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  s.exact_match =
      s.sentences > 0 ? static_cast<double>(s.exact) / static_cast<double>(s.sentences) : 0.0;
  return s;
}

Score BracketScoreLine(const BracketScore& score, int width) {
  Score out;
  out.name = "BracketF1";
  out.score = 100.0 * score.f1;
  out.verbose = "(P = " + detail::FixedPoint(100.0 * score.precision, width) +
                " R = " + detail::FixedPoint(100.0 * score.recall, width) +
                " exact = " + detail::FixedPoint(100.0 * score.exact_match, 1) +
                "% n = " + std::to_string(score.sentences);
  if (score.ill_formed > 0) out.verbose += " ill-formed = " + std::to_string(score.ill_formed);
  out.verbose += ")";
  out.signature.fields = {{"version", "v", "attend-" + detail::ProjectVersion()}};
  out.json_counts = {{"sentences", score.sentences},
                     {"exact", score.exact},
                     {"hypothesis_brackets", score.hypothesis_brackets},
                     {"reference_brackets", score.reference_brackets},
                     {"matched", score.matched},
                     {"ill_formed", score.ill_formed}};
  return out;
}

}  // namespace attend::metrics
