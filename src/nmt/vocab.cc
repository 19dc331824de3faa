// The joint subword vocabulary: SentencePiece models trained, loaded and applied.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "attend/corpus.h"
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
  ATTEND_CHECK(sp.pad_id() == models::SpecialIds::kPad && sp.unk_id() == models::SpecialIds::kUnk &&
                   sp.bos_id() == models::SpecialIds::kBos &&
                   sp.eos_id() == models::SpecialIds::kEos,
               "vocabulary ", source, ": ids of pad/unk/bos/eos are ", sp.pad_id(), "/",
               sp.unk_id(), "/", sp.bos_id(), "/", sp.eos_id(),
               "; they must be 0/1/2/3 (train it with --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3)");
}

}  // namespace

Vocabulary Vocabulary::Train(const std::vector<std::string>& sentences,
                             const VocabularyOptions& o) {
  ATTEND_CHECK(!sentences.empty(), "vocabulary: no sentences to train on");
  ATTEND_CHECK(o.size > 4, "vocabulary: size ", o.size, " must exceed the 4 reserved ids");
  ATTEND_CHECK(o.model_type == "unigram" || o.model_type == "bpe", "vocabulary: model type '",
               o.model_type, "' is not unigram or bpe");
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
