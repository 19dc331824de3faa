// Users' parallel data: line readers for plain text and TSV with UTF-8 and length checks that
// name file:line.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "attend/corpus.h"
#include "attend/error.h"

namespace attend::data {
namespace {

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
  const size_t bad = text::FirstInvalidUtf8(line);
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
    ATTEND_CHECK(tabs == 1, name, ":", i + 1,
                 ": expected exactly one tab (source<TAB>target), found ", tabs);
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

}  // namespace attend::data
