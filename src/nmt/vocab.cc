// The joint subword vocabulary: SentencePiece models trained, loaded and applied.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "attend/files.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"

namespace attend::nmt {

struct Vocabulary::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string bytes;
};

Vocabulary::Vocabulary() : impl_(std::make_unique<Impl>()) {}
Vocabulary::~Vocabulary() = default;
Vocabulary::Vocabulary(Vocabulary&&) noexcept = default;
Vocabulary& Vocabulary::operator=(Vocabulary&&) noexcept = default;

namespace {

// Feeds the training sentences to SentencePiece from memory (no temporary file).
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& s) : s_(s) {}
  bool done() const override { return i_ >= s_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return s_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& s_;
  size_t i_ = 0;
};

void CheckSpecialIds(const sentencepiece::SentencePieceProcessor& sp, const std::string& source) {
  ATTEND_CHECK(
      sp.pad_id() == models::SpecialIds::kPad && sp.unk_id() == models::SpecialIds::kUnk &&
          sp.bos_id() == models::SpecialIds::kBos && sp.eos_id() == models::SpecialIds::kEos,
      "vocabulary ", source, ": ids of pad/unk/bos/eos are ", sp.pad_id(), "/", sp.unk_id(), "/",
      sp.bos_id(), "/", sp.eos_id(),
      "; they must be 0/1/2/3 (train it with --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3)");
}

// ---- the normalizer tables of an untrusted model ----
//
// SentencePiece (0.1.97) trusts a model's precompiled_charsmap: a corrupt one makes Encode read
// outside the table (a SEGV, found by fuzz/fuzz_vocab.cc), and a table length within 4 bytes of
// the end overruns the blob while loading. So the tables are checked here first: the protobuf
// fields are walked to every NormalizerSpec (ModelProto fields 3 and 5) and its charsmap (field
// 2), laid out as u32 trie size, the Darts-clone double array (u32 units), then NUL-terminated
// replacement strings.

// Reads a protobuf varint from the front of `s`.
bool ReadVarint(std::string_view& s, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !s.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(s.front());
    s.remove_prefix(1);
    *v |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Calls f(field, payload) for each length-delimited field of the message `s`; false when `s` is
// not a well-formed sequence of fields.
template <typename F>
bool ForEachBytesField(std::string_view s, F&& f) {
  while (!s.empty()) {
    uint64_t key = 0, n = 0;
    if (!ReadVarint(s, &key)) return false;
    switch (key & 7) {
      case 0:
        if (!ReadVarint(s, &n)) return false;
        break;
      case 1:
      case 5: {
        const size_t width = (key & 7) == 1 ? 8 : 4;
        if (s.size() < width) return false;
        s.remove_prefix(width);
        break;
      }
      case 2:
        if (!ReadVarint(s, &n) || n > s.size()) return false;
        if (!f(key >> 3, s.substr(0, n))) return false;
        s.remove_prefix(n);
        break;
      default: return false;  // groups: never in a SentencePiece model
    }
  }
  return true;
}

// Empty when `charsmap` is safe to hand to SentencePiece, else what is wrong with it. Every node
// reachable from the root must keep its 256 child slots (and its value slot) inside the array,
// and every value must start a NUL-terminated string of the replacement blob.
std::string CheckCharsMap(std::string_view charsmap) {
  if (charsmap.empty()) return "";  // no table (the identity normalization)
  uint32_t trie_bytes = 0;
  if (charsmap.size() < 4) return "the table is shorter than its 4-byte length";
  std::memcpy(&trie_bytes, charsmap.data(), 4);
  if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > charsmap.size() - 4)
    return "trie size " + std::to_string(trie_bytes) + " does not fit the table of " +
           std::to_string(charsmap.size()) + " bytes";
  const size_t n = trie_bytes / 4;
  const std::string_view strings = charsmap.substr(4 + trie_bytes);
  auto unit = [&](size_t i) {
    uint32_t u;
    std::memcpy(&u, charsmap.data() + 4 + 4 * i, 4);
    return u;
  };
  // Darts-clone's unit layout (darts.h): offset, label, leaf flag, value.
  auto offset = [](uint32_t u) -> size_t { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  std::vector<uint8_t> seen(n, 0);
  std::vector<size_t> stack = {0};
  seen[0] = 1;
  while (!stack.empty()) {
    const size_t pos = stack.back();
    stack.pop_back();
    const uint32_t u = unit(pos);
    const size_t base = pos ^ offset(u);
    if ((base | 0xff) >= n) return "trie node " + std::to_string(pos) + " points outside the trie";
    if (pos != 0 && ((u >> 8) & 1) != 0) {
      const size_t value = unit(base) & 0x7fffffffu;
      if (value >= strings.size() || strings.find('\0', value) == std::string_view::npos)
        return "trie value " + std::to_string(value) + " is not a string of the table";
    }
    for (uint32_t c = 0; c < 256; ++c) {
      const size_t child = base ^ c;
      if ((unit(child) & ((1u << 31) | 0xffu)) == c && !seen[child]) {
        seen[child] = 1;
        stack.push_back(child);
      }
    }
  }
  return "";
}

// Checks what SentencePiece trusts in a model before it is handed over: the normalization
// tables (CheckCharsMap), and the pieces, which its Darts trie takes as NUL-terminated keys and
// throws on (across a noexcept boundary: std::terminate) when one is empty or holds a NUL byte
// (found by fuzz/fuzz_vocab.cc).
void CheckModelProto(const std::string& bytes, const std::string& source) {
  std::string problem;
  int64_t piece_index = 0;
  const bool parsed = ForEachBytesField(bytes, [&](uint64_t field, std::string_view message) {
    if (field == 1) {  // ModelProto.pieces: a SentencePiece message, its text in field 1
      bool has_text = false;
      const bool ok = ForEachBytesField(message, [&](uint64_t piece_field, std::string_view text) {
        if (piece_field != 1) return true;
        has_text = !text.empty() && text.find('\0') == std::string_view::npos;
        return true;
      });
      if (!ok) return false;
      if (!has_text && problem.empty())
        problem = "piece " + std::to_string(piece_index) + " is empty or holds a NUL byte";
      ++piece_index;
      return true;
    }
    if (field != 3 && field != 5) return true;  // normalizer_spec, denormalizer_spec
    return ForEachBytesField(message, [&](uint64_t spec_field, std::string_view charsmap) {
      if (spec_field == 2 && problem.empty())
        if (std::string p = CheckCharsMap(charsmap); !p.empty())
          problem = "normalization table: " + p;
      return true;
    });
  });
  ATTEND_CHECK(parsed, "vocabulary ", source,
               ": not a valid SentencePiece model (malformed protobuf)");
  ATTEND_CHECK(problem.empty(), "vocabulary ", source, ": not a valid SentencePiece model (",
               problem, ")");
}

}  // namespace

Vocabulary Vocabulary::Train(const std::vector<std::string>& sentences,
                             const VocabularyOptions& o) {
  ATTEND_CHECK(!sentences.empty(), "vocabulary: no sentences to train on");
  ATTEND_CHECK(o.size > 4, "vocabulary: size ", o.size, " must exceed the 4 reserved ids");
  ATTEND_CHECK(o.model_type == "unigram" || o.model_type == "bpe" || o.model_type == "char" ||
                   o.model_type == "word",
               "vocabulary: model type '", o.model_type, "' is not unigram, bpe, char or word");
  sentencepiece::SetRandomGeneratorSeed(o.seed);
  std::ostringstream args;
  args << "--model_type=" << o.model_type << " --vocab_size=" << o.size
       << " --character_coverage=" << o.character_coverage
       << " --input_sentence_size=" << o.max_sentences << " --shuffle_input_sentence=true"
       << " --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 --hard_vocab_limit=false"
       << " --num_threads=1 --minloglevel=2 --max_sentence_length=8192";
  VectorIterator it(sentences);
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args.str(), &it, &proto);
  ATTEND_CHECK(status.ok(), "vocabulary: SentencePiece training failed: ", status.ToString());
  return FromBytes(proto, "(trained)");
}

Vocabulary Vocabulary::FromBytes(const std::string& bytes, const std::string& source) {
  CheckModelProto(bytes, source);
  Vocabulary v;
  const auto status = v.impl_->sp.LoadFromSerializedProto(bytes);
  ATTEND_CHECK(status.ok(), "vocabulary ", source, ": not a valid SentencePiece model (",
               status.ToString(), ")");
  ATTEND_CHECK(v.impl_->sp.GetPieceSize() > 4, "vocabulary ", source, ": only ",
               v.impl_->sp.GetPieceSize(), " pieces");
  CheckSpecialIds(v.impl_->sp, source);
  v.impl_->bytes = bytes;
  return v;
}

Vocabulary Vocabulary::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTEND_CHECK(in.good(), "vocabulary ", path, ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return FromBytes(ss.str(), path);
}

void Vocabulary::Save(const std::string& path) const { io::WriteFileAtomic(path, impl_->bytes); }

std::string Vocabulary::bytes() const { return impl_->bytes; }
int64_t Vocabulary::size() const { return impl_->sp.GetPieceSize(); }

std::vector<int64_t> Vocabulary::Encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = impl_->sp.Encode(text, &ids);
  ATTEND_CHECK(status.ok(), "vocabulary: cannot encode '", text, "': ", status.ToString());
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::string Vocabulary::Decode(const std::vector<int64_t>& ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  for (int64_t id : ids) {
    ATTEND_CHECK(id >= 0 && id < size(), "vocabulary: id ", id, " is outside 0..", size() - 1);
    if (id > models::SpecialIds::kEos) v.push_back(static_cast<int>(id));
  }
  std::string text;
  const auto status = impl_->sp.Decode(v, &text);
  ATTEND_CHECK(status.ok(), "vocabulary: cannot decode: ", status.ToString());
  return text;
}

std::string Vocabulary::Piece(int64_t id) const {
  ATTEND_CHECK(id >= 0 && id < size(), "vocabulary: id ", id, " is outside 0..", size() - 1);
  return impl_->sp.IdToPiece(static_cast<int>(id));
}

std::vector<std::string> Vocabulary::Pieces(const std::vector<int64_t>& ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int64_t id : ids) out.push_back(Piece(id));
  return out;
}

}  // namespace attend::nmt
