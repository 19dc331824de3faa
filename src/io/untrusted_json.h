// JSON from files attend reads but may not have written (safetensors headers, checkpoint
// configs). nlohmann's parser is iterative, but dump() and the code walking a value recurse once
// per level: a 200 KB header nested 100,000 deep overflowed the stack. So nesting is bounded
// before parsing, and a value quoted in an error message is cut to a short excerpt.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "attend/error.h"

namespace attend::io {

// attend writes depth 3 at most (safetensors: header, entry, shape).
inline constexpr int kMaxJsonDepth = 64;

// At most `max_chars` of `text`, with the count of what was left out.
inline std::string Excerpt(std::string_view text, size_t max_chars = 80) {
  if (text.size() <= max_chars) return std::string(text);
  return std::string(text.substr(0, max_chars)) + "... (" +
         std::to_string(text.size() - max_chars) + " more bytes)";
}

// A parsed value (hence nested at most kMaxJsonDepth) as compact JSON, cut to `max_chars`.
inline std::string JsonExcerpt(const nlohmann::json& value, size_t max_chars = 80) {
  return Excerpt(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max_chars);
}

// The deepest nesting of arrays and objects in `text`, counted outside strings; stops counting
// past `limit`. Bytes the parser would reject anyway are not judged here.
inline int JsonNesting(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// Parses untrusted `text`; attend::Error names `where` and what is wrong (nesting deeper than
// kMaxJsonDepth, or the parser's message, cut short). `callback` as nlohmann's parse takes it.
inline nlohmann::json ParseUntrustedJson(std::string_view text, const std::string& where,
                                         nlohmann::json::parser_callback_t callback = nullptr) {
  ATTEND_CHECK(JsonNesting(text, kMaxJsonDepth) <= kMaxJsonDepth, where,
               ": JSON nested deeper than ", kMaxJsonDepth, " levels");
  try {
    return nlohmann::json::parse(text, std::move(callback));
  } catch (const nlohmann::json::exception& e) {
    // The parser's message quotes the token it stopped at, which can be the whole input.
    ATTEND_CHECK(false, where, ": not valid JSON (", Excerpt(e.what(), 200), ")");
  }
  return {};
}

}  // namespace attend::io
