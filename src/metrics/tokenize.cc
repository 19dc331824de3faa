// sacreBLEU's BLEU tokenizers (13a, none, intl, char) on code points, Python's lowercase, and a
// UTF-8 validity check.
#include <functional>

#include "attend/error.h"
#include "metrics/internal.h"
#include "text/unicode.h"

namespace attend::metrics {
namespace {

void ReplaceAll(std::u32string& text, std::u32string_view from, std::u32string_view to) {
  // Python's str.replace: non-overlapping occurrences, left to right.
  std::u32string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::u32string::npos) break;
    out.append(text, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(text, pos, std::u32string::npos);
  text = std::move(out);
}

// re.sub of a two-character pattern (first)(second): scans left to right; after a match the
// search resumes past both characters, as Python's non-overlapping substitution does.
enum class Spacing { kAfterBoth, kBeforeBoth };  // '\1 \2 ' or ' \1 \2'
std::u32string SubstitutePairs(std::u32string_view text, const std::function<bool(char32_t)>& first,
                               const std::function<bool(char32_t)>& second, Spacing spacing) {
  std::u32string out;
  out.reserve(text.size() + text.size() / 4);
  size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
      if (spacing == Spacing::kAfterBoth) {
        out.push_back(text[i]);
        out.push_back(U' ');
        out.push_back(text[i + 1]);
        out.push_back(U' ');
      } else {
        out.push_back(U' ');
        out.push_back(text[i]);
        out.push_back(U' ');
        out.push_back(text[i + 1]);
      }
      i += 2;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

bool IsAsciiDigit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool IsPeriodOrComma(char32_t c) { return c == U'.' || c == U','; }

// The character class of 13a's first rule: [\{-\~\[-\` -\&\(-\+\:-\@\/].
bool Is13aSeparated(char32_t c) {
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

std::u32string Tokenize13a(std::u32string_view input) {
  std::u32string line(input);
  // The language-independent part of mteval-v13a.
  ReplaceAll(line, U"<skipped>", U"");
  ReplaceAll(line, U"-\n", U"");
  ReplaceAll(line, U"\n", U" ");
  if (line.find(U'&') != std::u32string::npos) {
    ReplaceAll(line, U"&quot;", U"\"");
    ReplaceAll(line, U"&amp;", U"&");
    ReplaceAll(line, U"&lt;", U"<");
    ReplaceAll(line, U"&gt;", U">");
  }
  // Padded with spaces so that a final period is separated from a number too.
  std::u32string padded;
  padded.reserve(line.size() * 2 + 2);
  padded.push_back(U' ');
  for (char32_t c : line) {
    if (Is13aSeparated(c)) {
      padded.push_back(U' ');
      padded.push_back(c);
      padded.push_back(U' ');
    } else {
      padded.push_back(c);
    }
  }
  padded.push_back(U' ');
  auto not_digit = [](char32_t c) { return !IsAsciiDigit(c); };
  std::u32string s = SubstitutePairs(padded, not_digit, IsPeriodOrComma, Spacing::kAfterBoth);
  s = SubstitutePairs(s, IsPeriodOrComma, not_digit, Spacing::kBeforeBoth);
  s = SubstitutePairs(
      s, IsAsciiDigit, [](char32_t c) { return c == U'-'; }, Spacing::kAfterBoth);
  return text::NormalizeSpaces(s);
}

std::u32string TokenizeIntl(std::u32string_view line) {
  auto not_number = [](char32_t c) { return !text::IsNumber(c); };
  std::u32string s = SubstitutePairs(line, not_number, text::IsPunctuation, Spacing::kAfterBoth);
  s = SubstitutePairs(s, text::IsPunctuation, not_number, Spacing::kBeforeBoth);
  std::u32string out;
  out.reserve(s.size() + s.size() / 4);
  for (char32_t c : s) {
    if (text::IsSymbol(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return text::NormalizeSpaces(out);
}

std::u32string TokenizeChar(std::u32string_view line) {
  std::u32string out;
  out.reserve(line.size() * 2);
  for (size_t i = 0; i < line.size(); ++i) {
    if (i > 0) out.push_back(U' ');
    out.push_back(line[i]);
  }
  return out;
}

}  // namespace

namespace detail {
std::u32string TokenizeCodePoints(std::u32string_view line, Tokenizer tokenizer) {
  switch (tokenizer) {
    case Tokenizer::k13a: return Tokenize13a(line);
    case Tokenizer::kNone: return std::u32string(line);
    case Tokenizer::kIntl: return TokenizeIntl(line);
    case Tokenizer::kChar: return TokenizeChar(line);
  }
  ATTEND_ASSERT(false, "unknown tokenizer");
}
}  // namespace detail

Tokenizer ParseTokenizer(std::string_view name) {
  if (name == "13a") return Tokenizer::k13a;
  if (name == "none") return Tokenizer::kNone;
  if (name == "intl") return Tokenizer::kIntl;
  if (name == "char") return Tokenizer::kChar;
  ATTEND_CHECK(false, "BLEU tokenizer: unknown name '", name,
               "' (expected 13a, none, intl or char; sacreBLEU's zh, ja-mecab, ko-mecab and spm "
               "tokenizers are not built)");
}

std::string_view TokenizerName(Tokenizer tokenizer) {
  switch (tokenizer) {
    case Tokenizer::k13a: return "13a";
    case Tokenizer::kNone: return "none";
    case Tokenizer::kIntl: return "intl";
    case Tokenizer::kChar: return "char";
  }
  ATTEND_ASSERT(false, "unknown tokenizer");
}

std::string Tokenize(std::string_view line, Tokenizer tokenizer) {
  return text::Encode(
      detail::TokenizeCodePoints(text::Decode(line, "Tokenize: input line"), tokenizer));
}

std::string Lowercase(std::string_view text) {
  return text::Encode(text::Lower(text::Decode(text, "Lowercase: input text")));
}

std::vector<std::string> SplitScoringLines(std::string_view contents, std::string_view name) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    const std::string where = std::string(name) + ":" + std::to_string(lines.size() + 1);
    const std::u32string line = text::Decode(contents.substr(pos, end - pos), where);
    lines.push_back(text::Encode(text::RStrip(line)));
    pos = end + 1;
  }
  return lines;
}

int64_t FindInvalidUtf8(std::string_view text) { return text::DecodeUtf8(text, nullptr); }

}  // namespace attend::metrics
