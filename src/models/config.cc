// ModelConfig as JSON (stored in every checkpoint) and the factory over the architectures.
#include <type_traits>

#include <nlohmann/json.hpp>

#include "attend/error.h"
#include "attend/models.h"
#include "io/untrusted_json.h"

namespace attend::models {
namespace {

// The (name, member) table both directions walk, so a new option is added in one place.
template <typename Config, typename F>
void ForEachField(Config& c, F&& f) {
  f("arch", c.arch);
  f("src_vocab", c.src_vocab);
  f("tgt_vocab", c.tgt_vocab);
  f("dropout", c.dropout);
  f("cell", c.cell);
  f("embed_dim", c.embed_dim);
  f("hidden_dim", c.hidden_dim);
  f("encoder_layers", c.encoder_layers);
  f("decoder_layers", c.decoder_layers);
  f("score", c.score);
  f("attention_dim", c.attention_dim);
  f("window", c.window);
  f("window_size", c.window_size);
  f("max_source_len", c.max_source_len);
  f("input_feeding", c.input_feeding);
  f("teacher_forcing", c.teacher_forcing);
  f("d_model", c.d_model);
  f("heads", c.heads);
  f("ff_dim", c.ff_dim);
  f("layers", c.layers);
  f("pre_norm", c.pre_norm);
  f("share_embeddings", c.share_embeddings);
  f("max_positions", c.max_positions);
}

bool OneOf(const std::string& v, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (v == o) return true;
  }
  return false;
}

}  // namespace

std::string ModelConfig::ToJson() const {
  nlohmann::json j;
  ForEachField(*this, [&](const char* name, const auto& value) { j[name] = value; });
  return j.dump();
}

ModelConfig ModelConfig::FromJson(const std::string& text) {
  // Checkpoints carry this text: nesting is bounded and quoted values are cut short.
  const nlohmann::json j = io::ParseUntrustedJson(text, "model config");
  ATTEND_CHECK(j.is_object(), "model config: not a JSON object");
  ModelConfig c;
  ForEachField(c, [&](const char* name, auto& value) {
    auto it = j.find(name);
    if (it == j.end()) return;  // older configs: the default
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, int64_t>) {
      // nlohmann would convert a float with a plain cast: undefined behaviour past int64's range
      // (found by fuzz/fuzz_model_config.cc), 2.5 silently read as 2 below it.
      ATTEND_CHECK(!it->is_number_float(), "model config: key '", name,
                   "' must be an integer, not ", it->dump());
      ATTEND_CHECK(!it->is_number_unsigned() || it->template get<uint64_t>() <= INT64_MAX,
                   "model config: key '", name, "' is out of range: ", it->dump());
    }
    try {
      it->get_to(value);
    } catch (const nlohmann::json::exception&) {
      ATTEND_CHECK(false, "model config: key '", name,
                   "' has the wrong type: ", io::JsonExcerpt(*it));
    }
  });
  c.Validate();
  return c;
}

void ModelConfig::Validate() const {
  // Every size and count is at most 2^24 (16.7M): far above any model here, and low enough that
  // the constructors' products of two of them cannot overflow.
  constexpr int64_t kMaxSize = int64_t{1} << 24;
  ForEachField(*this, [&](const char* name, const auto& value) {
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, int64_t>) {
      ATTEND_CHECK(value <= kMaxSize, "model config: ", name, " ", value, " exceeds the limit ",
                   kMaxSize);
    }
  });
  ATTEND_CHECK(OneOf(arch, {"rnn", "rnn-attention", "transformer"}), "model config: arch '", arch,
               "' is not one of rnn, rnn-attention, transformer");
  ATTEND_CHECK(src_vocab > 4 && tgt_vocab > 4, "model config: vocabulary sizes ", src_vocab, ", ",
               tgt_vocab, " must exceed the 4 reserved ids");
  ATTEND_CHECK(dropout >= 0.0 && dropout < 1.0, "model config: dropout ", dropout,
               " is not in [0, 1)");
  if (arch == "transformer") {
    ATTEND_CHECK(d_model > 0 && heads > 0 && d_model % heads == 0, "model config: d_model ",
                 d_model, " is not a positive multiple of heads ", heads);
    ATTEND_CHECK(ff_dim > 0 && layers > 0 && max_positions > 0,
                 "model config: ff_dim, layers and max_positions must be positive");
  } else {
    ATTEND_CHECK(OneOf(cell, {"gru", "lstm"}), "model config: cell '", cell,
                 "' is not gru or lstm");
    ATTEND_CHECK(embed_dim > 0 && hidden_dim > 0 && encoder_layers > 0 && decoder_layers > 0,
                 "model config: embed_dim, hidden_dim and the layer counts must be positive");
    ATTEND_CHECK(OneOf(score, {"additive", "dot", "general", "concat", "location"}),
                 "model config: score '", score,
                 "' is not one of additive, dot, general, concat, location");
    ATTEND_CHECK(OneOf(window, {"global", "local-m", "local-p"}), "model config: window '", window,
                 "' is not one of global, local-m, local-p");
    ATTEND_CHECK(window_size > 0 && attention_dim > 0 && max_source_len > 0,
                 "model config: window_size, attention_dim and max_source_len must be positive");
    ATTEND_CHECK(teacher_forcing >= 0.0 && teacher_forcing <= 1.0, "model config: teacher_forcing ",
                 teacher_forcing, " is not in [0, 1]");
  }
}

std::shared_ptr<Seq2Seq> MakeModel(const ModelConfig& config, Generator& gen) {
  config.Validate();
  if (config.arch == "transformer") return MakeTransformer(config, gen);
  return MakeRnnSeq2Seq(config, gen);
}

}  // namespace attend::models
