// Line streams with bounded memory (attend/text.h).
#include "attend/text.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "attend/error.h"

namespace attend::text {
namespace {

constexpr size_t kChunk = 1 << 16;

}  // namespace

LineReader::LineReader(const std::string& path, size_t max_bytes)
    : max_bytes_(max_bytes), name_(path == "-" ? "<stdin>" : path) {
  ATTEND_CHECK(max_bytes >= 4, "LineReader: max_bytes must be at least 4 (one character), got ",
               max_bytes);
  if (path == "-") {
    fd_ = STDIN_FILENO;
    return;
  }
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ATTEND_CHECK(fd_ >= 0, path, ": cannot open the file: ", ErrnoText());
  own_fd_ = true;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    ATTEND_CHECK(false, path, ": is a directory, not a text file");
  }
}

LineReader::~LineReader() {
  if (own_fd_ && fd_ >= 0) ::close(fd_);
}

bool LineReader::Fill() {
  if (eof_) return false;
  // Drop what was consumed before reading more: the buffer holds at most one chunk beyond the
  // current line's kept bytes.
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  const size_t old = buf_.size();
  buf_.resize(old + kChunk);
  ssize_t n;
  do {
    n = ::read(fd_, buf_.data() + old, kChunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    buf_.resize(old);
    ATTEND_CHECK(false, name_, ": read error: ", ErrnoText());
  }
  buf_.resize(old + static_cast<size_t>(n));
  if (n == 0) eof_ = true;
  return n > 0;
}

bool LineReader::Next(Line* line) {
  line->text.clear();
  line->bytes = 0;
  bool any = false;  // a byte (or "\n") of this line was seen
  for (;;) {
    if (pos_ == buf_.size() && !Fill()) break;
    if (at_start_) {
      // A byte-order mark can only be judged once three bytes (or the end) are here.
      if (buf_.size() - pos_ < 3 && !eof_) {
        const size_t have = buf_.size() - pos_;
        Fill();
        if (buf_.size() - pos_ > have || eof_) continue;
      }
      if (buf_.compare(pos_, 3, "\xEF\xBB\xBF") == 0) pos_ += 3;
      at_start_ = false;
      if (pos_ == buf_.size()) continue;
    }
    const char* begin = buf_.data() + pos_;
    const char* nl = static_cast<const char*>(std::memchr(begin, '\n', buf_.size() - pos_));
    const size_t len = nl ? static_cast<size_t>(nl - begin) : buf_.size() - pos_;
    // Keep one byte more than the limit: it tells whether a trailing "\r" was the line's end.
    const size_t room = max_bytes_ + 1 - std::min(max_bytes_ + 1, line->text.size());
    line->text.append(begin, std::min(len, room));
    line->bytes += len;
    any = true;
    pos_ += len + (nl ? 1 : 0);
    if (nl) break;
  }
  if (!any) return false;
  ++number_;
  line->number = number_;
  if (line->bytes > 0 && line->bytes == line->text.size() && line->text.back() == '\r') {
    line->text.pop_back();
    --line->bytes;
  } else if (line->bytes > line->text.size() || line->text.size() > max_bytes_) {
    // Cropped: cut at max_bytes, then back to the start of the character it splits.
    size_t cut = max_bytes_;
    while (cut > 0 && (static_cast<unsigned char>(line->text[cut]) & 0xC0) == 0x80) --cut;
    line->text.resize(cut);
  }
  return true;
}

bool LineReader::Ready() {
  if (eof_ || std::memchr(buf_.data() + pos_, '\n', buf_.size() - pos_) != nullptr) return true;
  pollfd p{fd_, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r != 0;  // data, hang-up or an error that Next will report
}

}  // namespace attend::text
