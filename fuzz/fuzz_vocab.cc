// The vocabulary loader on arbitrary bytes: Vocabulary::Load from a file (`attend translate
// --vocab`, a model directory's vocab.model) and Vocabulary::FromBytes (the checkpoint's stored
// vocabulary) must agree, and an accepted vocabulary keeps the reserved ids and encodes, decodes
// and names pieces without failing. The protobuf parsing and the normalizer are SentencePiece's
// (Debian's library, not instrumented here): crashes inside it still show, coverage does not.
#include "attend/corpus.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("vocab");
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string& path = file.Write(bytes);

  nmt::Vocabulary from_file, from_bytes;
  const bool file_ok = fuzz::Accepts([&] { from_file = nmt::Vocabulary::Load(path); });
  const bool bytes_ok =
      fuzz::Accepts([&] { from_bytes = nmt::Vocabulary::FromBytes(bytes, "fuzz"); });
  FUZZ_CHECK(file_ok == bytes_ok, "Load %s the file, FromBytes %s its bytes",
             file_ok ? "accepts" : "refuses", bytes_ok ? "accepts" : "refuses");
  if (!file_ok) return 0;
  const nmt::Vocabulary& vocab = from_file;
  const int64_t n = vocab.size();
  FUZZ_CHECK(n > 4 && n == from_bytes.size() && vocab.bytes() == bytes);

  for (int64_t id = 0; id < std::min<int64_t>(n, 64); ++id) vocab.Piece(id);
  vocab.Piece(n - 1);
  // Text as training and translation hand it over: valid UTF-8 (the corpus readers check).
  for (const std::string text : {"Hello, world!", "Öffnen   die Datei _File\tnow", "x",
                                 "  \xe2\x80\x83 \xef\xbc\xa1\xef\xbd\x82 \xf0\x9f\x98\x80 "}) {
    std::vector<int64_t> ids;
    if (!fuzz::Accepts([&] { ids = vocab.Encode(text); })) continue;
    for (const int64_t id : ids)
      FUZZ_CHECK(id >= 0 && id < n, "Encode gave id %lld", (long long)id);
    fuzz::Accepts([&] { vocab.Decode(ids); });
    vocab.Pieces(ids);
  }
  // Any id sequence a model may emit decodes (ids 0..3 are skipped).
  std::vector<int64_t> all;
  for (int64_t id = 0; id < std::min<int64_t>(n, 256); ++id) all.push_back(id);
  all.push_back(n - 1);
  fuzz::Accepts([&] { vocab.Decode(all); });
  return 0;
}
