// The shortlist reader on arbitrary bytes: Shortlist::Parse, as `attend translate --shortlist`
// reads a file. An accepted shortlist keeps its promises (lists within the header's limits, ids
// in range and not special, no duplicates), writes a text that reads back equal and unchanged,
// and its Targets() for the listed sources is sorted, unique and holds ids 0..3.
#include <algorithm>
#include <set>

#include "attend/shortlist.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  const std::string text(reinterpret_cast<const char*>(data), size);
  nmt::Shortlist sl;
  if (!fuzz::Accepts([&] { sl = nmt::Shortlist::Parse(text, "fuzz"); })) return 0;

  const int64_t v = sl.vocab_size();
  FUZZ_CHECK(v > 4 && v <= nmt::Shortlist::kMaxVocabulary, "vocab_size %lld", (long long)v);
  auto check_list = [&](const std::vector<int64_t>& ids, int64_t limit) {
    FUZZ_CHECK(static_cast<int64_t>(ids.size()) <= limit, "%zu ids over %lld", ids.size(),
               (long long)limit);
    FUZZ_CHECK(std::set<int64_t>(ids.begin(), ids.end()).size() == ids.size(), "a duplicate id");
    for (int64_t id : ids) FUZZ_CHECK(id >= 4 && id < v, "id %lld accepted", (long long)id);
  };
  check_list(sl.frequent(), sl.options().frequent);
  FUZZ_CHECK(std::is_sorted(sl.sources().begin(), sl.sources().end()));
  std::vector<int64_t> listed;
  for (int64_t s : sl.sources()) {
    FUZZ_CHECK(s >= 0 && s < v, "source id %lld accepted", (long long)s);
    FUZZ_CHECK(!sl.candidates(s).empty(), "source id %lld without candidates", (long long)s);
    check_list(sl.candidates(s), sl.options().per_source);
    listed.push_back(s);
  }
  FUZZ_CHECK(std::adjacent_find(listed.begin(), listed.end()) == listed.end(), "a source twice");

  const std::string written = sl.ToText();
  nmt::Shortlist again;
  FUZZ_CHECK(fuzz::Accepts([&] { again = nmt::Shortlist::Parse(written, "written"); }),
             "ToText wrote a shortlist Parse refuses");
  FUZZ_CHECK(again == sl, "the round trip changed the shortlist");
  FUZZ_CHECK(again.ToText() == written, "ToText is not stable");

  const std::vector<int64_t> targets = sl.Targets({listed});
  FUZZ_CHECK(std::is_sorted(targets.begin(), targets.end()));
  FUZZ_CHECK(std::adjacent_find(targets.begin(), targets.end()) == targets.end());
  FUZZ_CHECK(targets.size() >= 4 && targets[0] == 0 && targets[3] == 3, "no special ids");
  FUZZ_CHECK(fuzz::Accepts([&] { sl.CheckVocabulary(v, sl.vocab_digest()); }));
  return 0;
}
