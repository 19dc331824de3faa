// UTF-8 decoding and Python's Unicode rules (whitespace, str.lower, general categories), looked
// up in tables generated from Python's Unicode data (unicode_tables_gen.py).
#include "text/unicode.h"

#include "attend/text.h"

#include <algorithm>
#include <iterator>

#include "attend/error.h"

namespace attend::text {
namespace {

struct CodeRange {
  char32_t lo, hi;
};
struct LowerMapping {
  char32_t from, first, second;  // second is 0 when the mapping is a single code point
};

#include "text/unicode_tables.inc"

template <size_t N>
bool InRanges(const CodeRange (&table)[N], char32_t c) {
  // First range whose upper end is >= c; c is inside it when it also starts at or before c.
  const CodeRange* it = std::lower_bound(std::begin(table), std::end(table), c,
                                         [](const CodeRange& r, char32_t v) { return r.hi < v; });
  return it != std::end(table) && it->lo <= c;
}

bool IsCaseIgnorable(char32_t c) { return InRanges(kCaseIgnorableRanges, c); }
bool IsCased(char32_t c) { return InRanges(kCasedRanges, c); }

// CPython's handle_capital_sigma: Σ lowers to ς when a cased letter precedes it and none follows
// it, skipping case-ignorable characters on both sides.
char32_t LowerSigma(std::u32string_view text, size_t i) {
  size_t j = i;
  while (j > 0 && IsCaseIgnorable(text[j - 1])) --j;
  bool final_sigma = j > 0 && IsCased(text[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < text.size() && IsCaseIgnorable(text[k])) ++k;
    final_sigma = k == text.size() || !IsCased(text[k]);
  }
  return final_sigma ? U'\u03C2' : U'\u03C3';
}

}  // namespace

size_t FirstInvalidUtf8(std::string_view text) {
  const int64_t bad = DecodeUtf8(text, nullptr);
  return bad < 0 ? std::string_view::npos : static_cast<size_t>(bad);
}

bool IsValidUtf8(std::string_view text) { return DecodeUtf8(text, nullptr) < 0; }

char32_t DecodeAt(std::string_view text, size_t i, size_t* length) {
  const auto c = static_cast<unsigned char>(text[i]);
  size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (i + n > text.size()) n = 1;
  char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  *length = n;
  return cp;
}

int64_t DecodeUtf8(std::string_view text, std::u32string* out) {
  if (out != nullptr) out->reserve(out->size() + text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      if (out != nullptr) out->push_back(b);
      ++i;
      continue;
    }
    int len = 0;
    char32_t c = 0, min = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2, c = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, c = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, c = b & 0x07, min = 0x10000;
    }
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char cont = s[i + k];
      ok = (cont & 0xC0) == 0x80;
      c = (c << 6) | (cont & 0x3F);
    }
    ok = ok && c >= min && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF);
    if (!ok) return static_cast<int64_t>(i);
    if (out != nullptr) out->push_back(c);
    i += len;
  }
  return -1;
}

std::u32string Decode(std::string_view text, std::string_view what) {
  std::u32string out;
  const int64_t bad = DecodeUtf8(text, &out);
  if (bad >= 0) {
    static const char kHex[] = "0123456789abcdef";
    const unsigned char b = static_cast<unsigned char>(text[bad]);
    const char byte[] = {'0', 'x', kHex[b >> 4], kHex[b & 15], '\0'};
    ATTEND_CHECK(false, what, ": invalid UTF-8 at byte ", bad, " (", byte, ")");
  }
  return out;
}

void AppendUtf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string Encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, out);
  return out;
}

bool IsSpace(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return InRanges(kSpaceRanges, c);
}
bool IsPunctuation(char32_t c) { return InRanges(kPunctuationRanges, c); }
bool IsSymbol(char32_t c) { return InRanges(kSymbolRanges, c); }
bool IsNumber(char32_t c) { return InRanges(kNumberRanges, c); }
const char* TablesUnicodeVersion() { return kUnicodeVersion; }

std::u32string Lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out.push_back(c >= U'A' && c <= U'Z' ? c + 32 : c);
      continue;
    }
    if (c == U'\u03A3') {
      out.push_back(LowerSigma(text, i));
      continue;
    }
    const LowerMapping* it =
        std::lower_bound(std::begin(kLowerMappings), std::end(kLowerMappings), c,
                         [](const LowerMapping& m, char32_t v) { return m.from < v; });
    if (it != std::end(kLowerMappings) && it->from == c) {
      out.push_back(it->first);
      if (it->second != 0) out.push_back(it->second);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string NormalizeSpaces(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i == text.size()) break;
    if (!out.empty()) out.push_back(U' ');
    while (i < text.size() && !IsSpace(text[i])) out.push_back(text[i++]);
  }
  return out;
}

std::u32string_view RStrip(std::u32string_view text) {
  size_t end = text.size();
  while (end > 0 && IsSpace(text[end - 1])) --end;
  return text.substr(0, end);
}

}  // namespace attend::text
