// The toolkit's Unicode rules: UTF-8 decoding and encoding, and Python's whitespace, lowercase
// and general-category rules from tables generated out of Python's own Unicode data. Used by
// the metrics (sacreBLEU's tokenisers), the heatmaps' labels and the corpus builder; the public
// UTF-8 checks (attend/text.h) are defined with them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace attend::text {

// Appends the code points of `text` to `out` (when not null) and returns -1, or returns the offset
// of the first byte that does not start a valid sequence (overlong forms, surrogates and values
// past U+10FFFF are invalid, as in Python's strict decoder).
int64_t DecodeUtf8(std::string_view text, std::u32string* out);
// Decodes valid UTF-8 into code points; throws attend::Error naming `what` and the byte offset
// when `text` is not valid UTF-8.
std::u32string Decode(std::string_view text, std::string_view what);
// The code point that starts at text[i] and its length in bytes, for text already known to be
// valid UTF-8 (on invalid input: a best effort that never reads past the end).
char32_t DecodeAt(std::string_view text, size_t i, size_t* length);
void AppendUtf8(char32_t c, std::string& out);
std::string Encode(std::u32string_view text);

bool IsSpace(char32_t c);        // Python's str.isspace()
bool IsPunctuation(char32_t c);  // general category P*
bool IsSymbol(char32_t c);       // general category S*
bool IsNumber(char32_t c);       // general category N*
// Python's str.lower(): full case mapping plus the Final_Sigma context rule for U+03A3.
std::u32string Lower(std::u32string_view text);
const char* TablesUnicodeVersion();

// Python's ' '.join(text.split()) and text.rstrip(), on code points.
std::u32string NormalizeSpaces(std::u32string_view text);
std::u32string_view RStrip(std::u32string_view text);

}  // namespace attend::text
