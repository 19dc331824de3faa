// Internal pieces shared by the metrics' translation units: tokenizers on code points, the
// project version and the Python float formatting that sacreBLEU's output relies on.
#pragma once

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

}  // namespace attend::metrics::detail
