// Users' parallel data: line readers for plain text and TSV with UTF-8 and length checks that
// name file:line, and the atomic text writer shared with the corpus builder.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "attend/corpus.h"
#include "attend/error.h"

namespace attend::io {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

std::string ReadAll(const std::string& path) {
  if (path == "-") {
    std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    ATTEND_CHECK(!std::cin.bad(), "<stdin>: read error");
    return s;
  }
  std::error_code ec;
  ATTEND_CHECK(std::filesystem::exists(path, ec), path, ": no such file");
  ATTEND_CHECK(!std::filesystem::is_directory(path, ec), path, ": is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  ATTEND_CHECK(in.good(), path, ": cannot open the file: ", ErrnoText());
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ATTEND_CHECK(!in.bad(), path, ": read error: ", ErrnoText());
  return s;
}

// Checks one line (without its newline) and reports problems as "file:line: ...".
// Returns false when the line is empty and empty lines are skipped.
bool CheckLine(const std::string& name, size_t line_no, uint64_t file_offset, std::string_view line,
               const ReadOptions& options) {
  ATTEND_CHECK(line.size() <= options.max_bytes, name, ":", line_no, ": the line is ", line.size(),
               " bytes long, over the limit of ", options.max_bytes, " bytes (max_bytes)");
  const size_t bad = FirstInvalidUtf8(line);
  ATTEND_CHECK(bad == std::string_view::npos, name, ":", line_no, ": invalid UTF-8 at byte ", bad,
               " of the line (byte ", file_offset + bad, " of the file)");
  if (line.empty()) {
    ATTEND_CHECK(options.skip_empty, name, ":", line_no,
                 ": empty line (pass skip_empty / --skip-empty to skip such lines)");
    return false;
  }
  return true;
}

// Splits into lines; the last line needs no "\n". Each line loses a trailing "\r".
// `keep_empty` keeps empty lines in place (parallel files stay aligned; the pair is dropped later).
std::vector<std::string> SplitChecked(const std::string& name, const std::string& text,
                                      const ReadOptions& options, bool keep_empty) {
  std::vector<std::string> lines;
  size_t pos = 0;
  // A UTF-8 byte-order mark is not part of the first sentence.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  size_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ReadOptions line_options = options;
    if (keep_empty) line_options.skip_empty = true;
    if (CheckLine(name, line_no, pos, line, line_options) || keep_empty) lines.emplace_back(line);
    pos = end + 1;
  }
  return lines;
}

std::string DisplayName(const std::string& path) { return path == "-" ? "<stdin>" : path; }

}  // namespace

size_t FirstInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // a continuation byte, C0/C1 (overlong) or F5..FF
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

bool IsValidUtf8(std::string_view text) { return FirstInvalidUtf8(text) == std::string_view::npos; }

std::vector<std::string> ReadLines(const std::string& path, const ReadOptions& options) {
  return SplitChecked(DisplayName(path), ReadAll(path), options, /*keep_empty=*/false);
}

std::vector<SentencePair> ReadParallelText(const std::string& src_path, const std::string& tgt_path,
                                           const ReadOptions& options) {
  ATTEND_CHECK(!(src_path == "-" && tgt_path == "-"),
               "ReadParallelText: the source and the target cannot both be stdin");
  // Empty lines are kept in place while splitting so that line i of one file still faces line i
  // of the other; they are rejected or skipped below, as pairs.
  const std::vector<std::string> src =
      SplitChecked(DisplayName(src_path), ReadAll(src_path), options, /*keep_empty=*/true);
  const std::vector<std::string> tgt =
      SplitChecked(DisplayName(tgt_path), ReadAll(tgt_path), options, /*keep_empty=*/true);
  ATTEND_CHECK(src.size() == tgt.size(), "parallel text: ", DisplayName(src_path), " has ",
               src.size(), " lines but ", DisplayName(tgt_path), " has ", tgt.size());
  std::vector<SentencePair> pairs;
  pairs.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i].empty() || tgt[i].empty()) {
      ATTEND_CHECK(options.skip_empty, DisplayName(src[i].empty() ? src_path : tgt_path), ":",
                   i + 1, ": empty line (pass skip_empty / --skip-empty to skip such pairs)");
      continue;
    }
    pairs.push_back({src[i], tgt[i]});
  }
  return pairs;
}

std::vector<SentencePair> ReadTsv(const std::string& path, const ReadOptions& options) {
  const std::string name = DisplayName(path);
  // Each side gets the length limit; the whole line may hold two sides and the tab.
  ReadOptions line_options = options;
  line_options.max_bytes = options.max_bytes * 2 + 1;
  const std::vector<std::string> lines =
      SplitChecked(name, ReadAll(path), line_options, /*keep_empty=*/true);
  std::vector<SentencePair> pairs;
  pairs.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) {
      ATTEND_CHECK(options.skip_empty, name, ":", i + 1,
                   ": empty line (pass skip_empty / --skip-empty to skip such lines)");
      continue;
    }
    const size_t tab = line.find('\t');
    const size_t tabs = static_cast<size_t>(std::count(line.begin(), line.end(), '\t'));
    ATTEND_CHECK(tabs == 1, name, ":", i + 1, ": expected exactly one tab (source<TAB>target), found ",
                 tabs);
    SentencePair p{line.substr(0, tab), line.substr(tab + 1)};
    for (const std::string* side : {&p.src, &p.tgt}) {
      ATTEND_CHECK(side->size() <= options.max_bytes, name, ":", i + 1, ": the ",
                   side == &p.src ? "source" : "target", " is ", side->size(),
                   " bytes long, over the limit of ", options.max_bytes, " bytes (max_bytes)");
    }
    if (p.src.empty() || p.tgt.empty()) {
      ATTEND_CHECK(options.skip_empty, name, ":", i + 1, ": empty ",
                   p.src.empty() ? "source" : "target",
                   " (pass skip_empty / --skip-empty to skip such lines)");
      continue;
    }
    pairs.push_back(std::move(p));
  }
  return pairs;
}

namespace {

void SyncDirectory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string JoinLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string out;
  size_t total = 0;
  for (const std::string& l : lines) total += l.size() + 1;
  out.reserve(total);
  for (size_t i = 0; i < lines.size(); ++i) {
    ATTEND_CHECK(lines[i].find('\n') == std::string::npos, "WriteLinesAtomic ", path, ": line ",
                 i + 1, " contains a newline");
    out += lines[i];
    out += '\n';
  }
  return out;
}

}  // namespace

StagedFiles::~StagedFiles() {
  for (const auto& [path, tmp] : staged_) ::unlink(tmp.c_str());
}

void StagedFiles::Add(const std::string& path, std::string_view contents) {
  // A unique temporary name in the same directory: rename() is atomic only within a file system.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  ATTEND_CHECK(fd >= 0, path, ": cannot create a temporary file in ",
               std::filesystem::path(path).parent_path().string(), ": ", ErrnoText());
  staged_.emplace_back(path, tmp);  // removed by the destructor unless committed
  bool closed = false;
  try {
    ATTEND_CHECK(::fchmod(fd, 0644) == 0, tmp, ": chmod failed: ", ErrnoText());
    size_t done = 0;
    while (done < contents.size()) {
      const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ATTEND_CHECK(n > 0, tmp, ": write failed: ", ErrnoText());
      done += static_cast<size_t>(n);
    }
    ATTEND_CHECK(::fsync(fd) == 0, tmp, ": fsync failed: ", ErrnoText());
    closed = true;  // even a failed close releases the descriptor
    ATTEND_CHECK(::close(fd) == 0, tmp, ": close failed: ", ErrnoText());
  } catch (...) {
    if (!closed) ::close(fd);
    throw;
  }
}

void StagedFiles::AddLines(const std::string& path, const std::vector<std::string>& lines) {
  Add(path, JoinLines(path, lines));
}

void StagedFiles::Commit() {
  // A path that is a directory would stop the renames half-way: refused before the first.
  for (const auto& [path, tmp] : staged_) {
    struct stat st;
    ATTEND_CHECK(::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode), path,
                 ": is a directory; nothing was written");
  }
  while (!staged_.empty()) {
    const auto& [path, tmp] = staged_.front();
    ATTEND_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, path, ": renaming ", tmp,
                 " failed: ", ErrnoText());
    SyncDirectory(path);
    staged_.erase(staged_.begin());
  }
}

void WriteFileAtomic(const std::string& path, std::string_view contents) {
  StagedFiles file;
  file.Add(path, contents);
  file.Commit();
}

void WriteLinesAtomic(const std::string& path, const std::vector<std::string>& lines) {
  WriteFileAtomic(path, JoinLines(path, lines));
}

}  // namespace attend::io
