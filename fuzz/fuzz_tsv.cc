// The TSV reader on arbitrary bytes: ReadTsv over a file of "source<TAB>target" lines. The first
// byte holds options (bit 0: skip_empty, bit 1: a small max_bytes); the rest is the file. Accepted
// pairs are valid UTF-8, tab- and newline-free, non-empty and within the limit on each side, and
// rejoined with a tab they are lines ReadLines accepts.
#include "attend/corpus.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("tsv");
  if (size == 0) return 0;
  data::ReadOptions options;
  options.skip_empty = (data[0] & 1) != 0;
  if (data[0] & 2) options.max_bytes = 16;
  const std::string& path = file.Write(fuzz::AsView(data + 1, size - 1));

  std::vector<data::SentencePair> pairs;
  if (!fuzz::Accepts([&] { pairs = data::ReadTsv(path, options); })) return 0;
  data::ReadOptions line_options = options;
  line_options.max_bytes = 2 * options.max_bytes + 1;
  std::vector<std::string> lines;
  FUZZ_CHECK(fuzz::Accepts([&] { lines = data::ReadLines(path, line_options); }),
             "ReadTsv accepts a file ReadLines refuses");
  FUZZ_CHECK(pairs.size() <= lines.size());
  for (const data::SentencePair& p : pairs) {
    for (const std::string* side : {&p.src, &p.tgt}) {
      FUZZ_CHECK(!side->empty() && side->size() <= options.max_bytes, "a side of %zu bytes",
                 side->size());
      FUZZ_CHECK(text::IsValidUtf8(*side), "invalid UTF-8 accepted");
      FUZZ_CHECK(side->find_first_of("\t\n") == std::string::npos, "a tab or newline in a side");
    }
  }
  if (!options.skip_empty) {
    FUZZ_CHECK(lines.size() == pairs.size(), "%zu lines but %zu pairs", lines.size(), pairs.size());
    for (size_t i = 0; i < pairs.size(); ++i)
      FUZZ_CHECK(lines[i] == pairs[i].src + "\t" + pairs[i].tgt, "line %zu differs", i + 1);
  }
  return 0;
}
