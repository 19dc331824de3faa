// Text: UTF-8 validity and streams of text lines with bounded memory (src/text/). The Unicode
// rules behind the metrics and heatmaps (decoding, categories, case) are in src/text/unicode.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attend::text {

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view text);
// Offset of the first byte of the first invalid sequence, or std::string_view::npos.
size_t FirstInvalidUtf8(std::string_view text);

// A reader that hands out one line at a time and says whether the next one is already there,
// so a filter in a pipe can answer line by line.
class LineReader {
 public:
  struct Line {
    std::string text;   // without "\n" and a trailing "\r"; at most max_bytes bytes
    size_t number = 0;  // 1-based
    size_t bytes = 0;   // the line's length in the input (more than text.size() when cropped)
    bool cropped() const { return bytes > text.size(); }
  };

  // path "-" reads stdin. A line longer than max_bytes is cropped to at most max_bytes at a UTF-8
  // character boundary; the rest of it is read and dropped, so memory stays bounded whatever
  // the input. A UTF-8 byte-order mark at the start is dropped. attend::Error for a missing,
  // unreadable or directory path.
  LineReader(const std::string& path, size_t max_bytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line; false at the end of the input (a last line without "\n" is a line).
  bool Next(Line* line);
  // True when Next would not wait for input: a whole line is buffered, the input has ended, or
  // bytes are waiting to be read.
  bool Ready();
  const std::string& name() const { return name_; }  // the path, or "<stdin>"

 private:
  bool Fill();  // reads more; false at the end of the input

  int fd_ = -1;
  bool own_fd_ = false, eof_ = false, at_start_ = true;
  size_t max_bytes_, number_ = 0, pos_ = 0;
  std::string name_, buf_;
};

}  // namespace attend::text
