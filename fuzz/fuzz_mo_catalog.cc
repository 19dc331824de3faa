// The GNU gettext .mo reader on arbitrary bytes: ReadMoCatalog from a file (as `attend corpus
// debian` reads catalogs) and ParseMoCatalog from memory must agree, and an accepted catalog is
// well formed: UTF-8 everywhere when its charset is supported, one form per singular entry, and
// its Plural-Forms gives a valid singular index or -1.
#include "attend/corpus.h"
#include "fuzz_support.h"

namespace {

bool SameEntry(const attend::data::MoEntry& a, const attend::data::MoEntry& b) {
  return a.has_context == b.has_context && a.context == b.context && a.msgid == b.msgid &&
         a.msgid_plural == b.msgid_plural && a.is_plural == b.is_plural && a.msgstr == b.msgstr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("mo");
  const std::string_view bytes = fuzz::AsView(data, size);
  const std::string& path = file.Write(bytes);

  data::MoCatalog from_file, from_memory;
  const bool file_ok = fuzz::Accepts([&] { from_file = data::ReadMoCatalog(path); });
  const bool memory_ok = fuzz::Accepts([&] { from_memory = data::ParseMoCatalog(bytes, path); });
  FUZZ_CHECK(file_ok == memory_ok, "ReadMoCatalog %s the file, ParseMoCatalog %s its bytes",
             file_ok ? "accepts" : "refuses", memory_ok ? "accepts" : "refuses");
  if (!file_ok) return 0;

  const data::MoCatalog& cat = from_file;
  FUZZ_CHECK(cat.big_endian == from_memory.big_endian && cat.revision == from_memory.revision &&
             cat.charset == from_memory.charset && cat.header == from_memory.header &&
             cat.plural_forms == from_memory.plural_forms &&
             cat.entries.size() == from_memory.entries.size());
  for (size_t i = 0; i < cat.entries.size(); ++i)
    FUZZ_CHECK(SameEntry(cat.entries[i], from_memory.entries[i]), "entry %zu differs", i);

  FUZZ_CHECK(cat.revision >> 16 <= 1, "major revision %u accepted", cat.revision >> 16);
  if (!cat.charset_supported) {
    FUZZ_CHECK(cat.entries.empty(), "unsupported charset '%s' with entries", cat.charset.c_str());
  }
  for (const data::MoEntry& e : cat.entries) {
    FUZZ_CHECK(!e.msgstr.empty());
    FUZZ_CHECK(e.is_plural || e.msgstr.size() == 1);
    FUZZ_CHECK(e.has_context || e.context.empty());
    FUZZ_CHECK(e.is_plural || e.msgid_plural.empty());
    if (cat.converted_from_latin1) {
      // ISO-8859-1 converts to valid UTF-8 whatever the bytes.
      FUZZ_CHECK(text::IsValidUtf8(e.msgid) && text::IsValidUtf8(e.context) &&
                 text::IsValidUtf8(e.msgid_plural));
      for (const std::string& form : e.msgstr) FUZZ_CHECK(text::IsValidUtf8(form));
    }
  }
  const int singular = data::SingularPluralIndex(cat);
  FUZZ_CHECK(singular >= -1, "SingularPluralIndex %d", singular);
  // What the corpus builder does next with each entry (src/io/debian_corpus.cc): the singular
  // form, valid UTF-8 only, then the cleaning rules.
  for (const data::MoEntry& e : cat.entries) {
    const int index = e.is_plural ? singular : 0;
    if (index < 0 || static_cast<size_t>(index) >= e.msgstr.size()) continue;
    const std::string& target = e.msgstr[static_cast<size_t>(index)];
    if (!text::IsValidUtf8(e.msgid) || !text::IsValidUtf8(target)) continue;
    std::string src = data::NormalizeWhitespace(e.msgid);
    std::string tgt = data::NormalizeWhitespace(target);
    data::StripAccelerators(src, tgt);
    for (const std::string* side : {&src, &tgt}) {
      const std::string clean = data::NormalizeWhitespace(*side);
      FUZZ_CHECK(text::IsValidUtf8(clean), "cleaning made invalid UTF-8");
      FUZZ_CHECK(clean.empty() || (clean.front() != ' ' && clean.back() != ' '));
      FUZZ_CHECK(clean.find("  ") == std::string::npos);
      data::IsFormatOnly(clean);
    }
    data::Fnv1a64(src);
  }
  return 0;
}
