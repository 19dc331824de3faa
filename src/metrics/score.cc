// Score formatting shared by the metrics: sacreBLEU's score line, signature, JSON object and the
// aligned multi-metric output, with Python's float formatting rules.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "attend/error.h"
#include "metrics/internal.h"

#ifndef ATTEND_VERSION_STRING
#define ATTEND_VERSION_STRING "0.0.0"
#endif

namespace attend::metrics {
namespace detail {

std::string FixedPoint(double value, int width) {
  ATTEND_CHECK(width >= 0 && width <= 30, "score format: width must be in [0, 30], got ", width);
  char buf[64];
  // printf rounds the exact binary value half-to-even, as Python's format() does.
  const int n = std::snprintf(buf, sizeof(buf), "%.*f", width, value);
  ATTEND_ASSERT(n > 0 && n < static_cast<int>(sizeof(buf)), "FixedPoint overflow");
  return std::string(buf, n);
}

std::string PythonFloatRepr(double value) {
  if (value == 0.0) return std::signbit(value) ? "-0.0" : "0.0";
  char buf[64];
  // Shortest round-trip digits, as Python's repr uses, in d.ddde±XX form.
  const auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  ATTEND_ASSERT(res.ec == std::errc(), "to_chars failed");
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::atoi(sci.c_str() + e + 1);
  const int decpt = exponent + 1;  // digits d1 d2 ... = 0.d1d2... * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    std::string out;
    if (decpt <= 0) {
      out = "0." + std::string(-decpt, '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out = digits + std::string(decpt - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
    return sign + out;
  }
  std::string mantissa = digits.substr(0, 1);
  if (digits.size() > 1) mantissa += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + mantissa + exp_buf;
}

}  // namespace detail

namespace {

// json.dumps(..., ensure_ascii=False) string escaping.
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  return out + "\"";
}

}  // namespace

namespace detail {
std::string ProjectVersion() { return ATTEND_VERSION_STRING; }
}  // namespace detail

std::string SignatureVersion() {
  return std::string(kSacrebleuVersion) + "+attend-" + detail::ProjectVersion();
}

std::string Signature::Format(bool short_form) const {
  std::string out;
  for (const SignatureField& f : fields) {
    if (!out.empty()) out += '|';
    out += short_form ? f.abbr : f.key;
    out += ':';
    out += f.value;
  }
  return out;
}

std::string Score::FormatScore(int width) const { return detail::FixedPoint(score, width); }

std::string Score::Format(int width, bool with_signature, bool short_signature) const {
  std::string out = name;
  if (with_signature) out.append("|").append(signature.Format(short_signature));
  out.append(" = ").append(FormatScore(width));
  if (!verbose.empty()) out.append(" ").append(verbose);
  return out;
}

std::string Score::Json(int width) const {
  // The score is rounded through its printed form first, as sacreBLEU does (float(f"{:.{w}f}")).
  const double rounded = std::strtod(FormatScore(width).c_str(), nullptr);
  const std::string sig = signature.Format(false);
  std::string out = "{\n";
  out += " \"name\": " + JsonString(name) + ",\n";
  out += " \"score\": " + detail::PythonFloatRepr(rounded) + ",\n";
  out += " \"signature\": " + JsonString(sig);
  if (!verbose.empty()) out += ",\n \"verbose_score\": " + JsonString(verbose);
  for (const SignatureField& f : signature.fields) {
    out += ",\n " + JsonString(f.key) + ": " + JsonString(f.value);
  }
  for (const auto& [key, value] : json_counts) {
    out += ",\n " + JsonString(key) + ": " + std::to_string(value);
  }
  return out + "\n}";
}

std::string FormatScores(const std::vector<const Score*>& scores, int width, bool json,
                         bool short_signature) {
  ATTEND_CHECK(!scores.empty(), "FormatScores: no scores to format");
  std::vector<std::string> lines;
  for (const Score* s : scores) {
    ATTEND_CHECK(s != nullptr, "FormatScores: null score");
    lines.push_back(json ? s->Json(width) : s->Format(width, true, short_signature));
  }
  std::string out;
  if (json) {
    if (lines.size() == 1) return lines[0] + "\n";
    out = "[\n";
    for (size_t i = 0; i < lines.size(); ++i)
      out += lines[i] + (i + 1 < lines.size() ? ",\n" : "\n");
    return out + "]\n";
  }
  if (lines.size() == 1) return lines[0] + "\n";
  // sacreBLEU's print_single_results: right-align what stands before " = ".
  size_t w = 0;
  std::vector<size_t> lens;
  for (const std::string& line : lines) {
    lens.push_back(line.find('=') - 1);
    w = std::max(w, lens.back());
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    out += std::string(w - lens[i], ' ') + lines[i] + "\n";
  }
  return out;
}

}  // namespace attend::metrics
