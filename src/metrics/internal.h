// Internal pieces shared by the metrics' translation units: tokenizers on code points, the
// project version and the Python float formatting that sacreBLEU's output relies on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attend/metrics.h"

namespace attend::metrics::detail {

// sacreBLEU's tokenizer __call__ on decoded text; the result has single spaces between tokens
// for 13a and intl, and is returned as is for none and char (BLEU splits it on whitespace later).
std::u32string TokenizeCodePoints(std::u32string_view line, Tokenizer tokenizer);

// One sentence's references as streams of one line each, for the Sentence* scores.
inline std::vector<Stream> OneLineStreams(const std::vector<std::string>& references) {
  std::vector<Stream> streams;
  for (const std::string& ref : references) streams.push_back({ref});
  return streams;
}

// The project's version, "0.1.0" (the WER and CER signatures' "attend-0.1.0").
std::string ProjectVersion();

// Python's f"{value:.{width}f}".
std::string FixedPoint(double value, int width);
// Python's repr(float) (shortest round trip; exponent form outside [1e-4, 1e16)), as json.dumps
// writes floats.
std::string PythonFloatRepr(double value);

// The size of the multiset intersection of two sorted lists (alignment links, brackets).
template <typename T>
int64_t CountCommon(const std::vector<T>& a, const std::vector<T>& b) {
  int64_t n = 0;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++n, ++i, ++j;
    }
  }
  return n;
}

// part / whole, with 0 / 0 read as agreement on nothing (1) when the other side is empty too,
// and part / 0 otherwise as 0 (precision and recall of alignments and brackets).
inline double Ratio(int64_t part, int64_t whole, bool other_side_empty) {
  if (whole == 0) return other_side_empty ? 1.0 : 0.0;
  return static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace attend::metrics::detail
