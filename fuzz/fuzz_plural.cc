// gettext's Plural-Forms evaluator on arbitrary bytes: EvaluatePluralExpression at the n values
// catalogs care about (the expression is the header's untrusted text), and SingularPluralIndex
// on a catalog whose whole Plural-Forms value is the input.
#include <limits>

#include "attend/corpus.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  const std::string_view text = fuzz::AsView(data, size);
  // A parse does not depend on n (n only feeds the arithmetic), so an expression that parses at
  // one n parses at every n, except for a division by zero that n produces.
  bool parsed_once = false;
  for (const uint64_t n :
       {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{5}, uint64_t{11}, uint64_t{22},
        uint64_t{101}, uint64_t{1000000}, std::numeric_limits<uint64_t>::max()}) {
    try {
      data::EvaluatePluralExpression(text, n);
      parsed_once = true;
    } catch (const Error& e) {
      // Either a syntax error (then at every n) or a division by zero at this n.
      const std::string_view what = e.what();
      FUZZ_CHECK(!parsed_once || what.find("division by zero") != std::string_view::npos,
                 "parsed at an earlier n, then: %s", e.what());
    }
  }

  data::MoCatalog cat;
  cat.plural_forms = std::string(text);
  const int index = data::SingularPluralIndex(cat);
  FUZZ_CHECK(index >= -1, "SingularPluralIndex %d", index);
  // And as a header line: the reader takes Plural-Forms from the header and the same rules apply.
  cat.plural_forms = "nplurals=3; plural=" + std::string(text) + ";";
  const int index3 = data::SingularPluralIndex(cat);
  FUZZ_CHECK(index3 >= -1 && index3 < 3, "SingularPluralIndex %d with nplurals=3", index3);
  return 0;
}
