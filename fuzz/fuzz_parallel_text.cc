// The parallel-text reader on arbitrary bytes: ReadParallelText over a source and a target file
// and ReadLines over each. Input layout: one byte of options (bit 0: skip_empty, bit 1: a small
// max_bytes), then the source file's bytes, a 0xFF byte (never part of valid UTF-8), the target's.
// Accepted data is valid UTF-8 without newlines, within the limit, and aligned line by line.
#include "attend/corpus.h"
#include "fuzz_support.h"

namespace {

void CheckLine(const std::string& line, const attend::data::ReadOptions& options) {
  FUZZ_CHECK(line.size() <= options.max_bytes, "a line of %zu bytes", line.size());
  FUZZ_CHECK(attend::text::IsValidUtf8(line), "invalid UTF-8 accepted");
  FUZZ_CHECK(line.find('\n') == std::string::npos, "a newline inside a line");
  FUZZ_CHECK(options.skip_empty || !line.empty(), "an empty line without skip_empty");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile src_file("src"), tgt_file("tgt");
  if (size == 0) return 0;
  data::ReadOptions options;
  options.skip_empty = (data[0] & 1) != 0;
  if (data[0] & 2) options.max_bytes = 16;
  const std::string_view rest = fuzz::AsView(data + 1, size - 1);
  const size_t split = rest.find('\xff');
  const std::string_view src = rest.substr(0, split);
  const std::string_view tgt = split == std::string_view::npos ? "" : rest.substr(split + 1);
  const std::string& src_path = src_file.Write(src);
  const std::string& tgt_path = tgt_file.Write(tgt);

  std::vector<std::string> src_lines, tgt_lines;
  const bool src_ok = fuzz::Accepts([&] { src_lines = data::ReadLines(src_path, options); });
  const bool tgt_ok = fuzz::Accepts([&] { tgt_lines = data::ReadLines(tgt_path, options); });
  for (const std::string& line : src_lines) CheckLine(line, options);
  for (const std::string& line : tgt_lines) CheckLine(line, options);

  std::vector<data::SentencePair> pairs;
  if (!fuzz::Accepts([&] { pairs = data::ReadParallelText(src_path, tgt_path, options); }))
    return 0;
  // The pair reader applies ReadLines' checks to each file, so each file alone reads too.
  FUZZ_CHECK(src_ok && tgt_ok, "the pair reader accepts a file ReadLines refuses");
  FUZZ_CHECK(pairs.size() <= src_lines.size() && pairs.size() <= tgt_lines.size());
  FUZZ_CHECK(
      options.skip_empty || (src_lines.size() == pairs.size() && tgt_lines.size() == pairs.size()),
      "without skip_empty every line makes a pair");
  for (size_t i = 0; i < pairs.size(); ++i) {
    CheckLine(pairs[i].src, options);
    CheckLine(pairs[i].tgt, options);
    FUZZ_CHECK(!pairs[i].src.empty() && !pairs[i].tgt.empty(), "a pair with an empty side");
    if (!options.skip_empty)
      FUZZ_CHECK(pairs[i].src == src_lines[i] && pairs[i].tgt == tgt_lines[i]);
  }
  return 0;
}
