// ModelConfig as JSON (stored in every checkpoint) and the factory over the architectures.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/ops.h"
#include "io/untrusted_json.h"

namespace attend::models {

void ThrowParseError(std::string_view what, std::string_view name, const std::string& allowed) {
  ATTEND_CHECK(false, what, " '", name, "' is not one of ", allowed);
  __builtin_unreachable();
}

std::string ModelConfig::ToJson() const {
  nlohmann::json j;
  ForEachOption(*this, [&](const OptionInfo& o, const auto& value) {
    if constexpr (std::is_enum_v<std::decay_t<decltype(value)>>) j[o.name] = NameOf(value);
    else j[o.name] = value;
  });
  return j.dump();
}

ModelConfig ModelConfig::FromJson(const std::string& text) {
  // Checkpoints carry this text: nesting is bounded and quoted values are cut short.
  const nlohmann::json j = io::ParseUntrustedJson(text, "model config");
  ATTEND_CHECK(j.is_object(), "model config: not a JSON object");
  ModelConfig c;
  ForEachOption(c, [&](const OptionInfo& o, auto& value) {
    const char* name = o.name;
    auto it = j.find(name);
    if (it == j.end()) return;  // older configs: the default
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_enum_v<T>) {
      ATTEND_CHECK(it->is_string(), "model config: key '", name,
                   "' has the wrong type: ", io::JsonExcerpt(*it));
      value = ParseEnum<T>(it->template get_ref<const std::string&>(),
                           std::string("model config: ") + name);
      return;
    }
    if constexpr (std::is_same_v<T, int64_t>) {
      // nlohmann would convert a float with a plain cast: undefined behaviour past int64's range
      // (found by fuzz/fuzz_model_config.cc), 2.5 silently read as 2 below it.
      ATTEND_CHECK(!it->is_number_float(), "model config: key '", name,
                   "' must be an integer, not ", it->dump());
      ATTEND_CHECK(!it->is_number_unsigned() || it->template get<uint64_t>() <= INT64_MAX,
                   "model config: key '", name, "' is out of range: ", it->dump());
    }
    try {
      if constexpr (!std::is_enum_v<T>) it->get_to(value);
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
  ForEachOption(*this, [&](const OptionInfo& o, const auto& value) {
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, int64_t>) {
      ATTEND_CHECK(value <= kMaxSize, "model config: ", o.name, " ", value, " exceeds the limit ",
                   kMaxSize);
    }
  });
  ATTEND_CHECK(
      tgt_vocab > 4 && (token_source() ? src_vocab > 4 : src_vocab == 0),
      "model config: vocabulary sizes ", src_vocab, ", ", tgt_vocab,
      " must exceed the 4 reserved ids (the source's is 0 for speech features and images)");
  ATTEND_CHECK(feature_dim >= 0, "model config: feature_dim ", feature_dim, " is negative");
  ATTEND_CHECK(feature_dim == 0 || arch != Arch::kTransformer,
               "model config: speech features (feature_dim ", feature_dim,
               ") need an RNN architecture (rnn | rnn-attention)");
  ATTEND_CHECK(score != Score::kLocationAware || arch == Arch::kRnnAttention,
               "model config: the location-aware score needs --arch rnn-attention");
  ATTEND_CHECK(dropout >= 0.0 && dropout < 1.0, "model config: dropout ", dropout,
               " is not in [0, 1)");
  const bool rnn = arch == Arch::kRnn || arch == Arch::kRnnAttention;
  ATTEND_CHECK(wiring == Wiring::kLuong || arch == Arch::kRnnAttention, "model config: --wiring ",
               NameOf(wiring), " needs --arch rnn-attention");
  ATTEND_CHECK(encoder_self_attention == SelfAttend::kNone || rnn,
               "model config: --encoder-self-attention needs an RNN architecture (rnn | "
               "rnn-attention)");
  ATTEND_CHECK(cell != Cell::kAdvancedLstm || rnn,
               "model config: the advanced-lstm cell needs an RNN architecture (rnn | "
               "rnn-attention)");
  ATTEND_CHECK(history >= 1 && history <= 64, "model config: history ", history,
               " is not in 1..64");
  ATTEND_CHECK(!transparent || arch == Arch::kTransformer,
               "model config: --transparent needs --arch transformer");
  ATTEND_CHECK(feature_dim == 0 || arch != Arch::kPervasive,
               "model config: speech features need an RNN architecture (rnn | rnn-attention)");
  if (image()) {
    ATTEND_CHECK(feature_dim == 0, "model config: an image model reads no feature frames");
    ATTEND_CHECK(image_size >= 8 && image_size % 8 == 0 && image_size <= 1024,
                 "model config: image_size ", image_size, " must be a multiple of 8 in 8..1024");
    ATTEND_CHECK(image_channels == 1 || image_channels == 3, "model config: image_channels ",
                 image_channels, " must be 1 or 3");
    ATTEND_CHECK(cnn_channels > 0 && cnn_channels <= 512, "model config: cnn_channels ",
                 cnn_channels, " is not in 1..512");
    ATTEND_CHECK(regions > 0 && regions <= 256, "model config: regions ", regions,
                 " is not in 1..256");
    ATTEND_CHECK(attention_penalty >= 0.0 && std::isfinite(attention_penalty),
                 "model config: attention_penalty ", attention_penalty, " must be >= 0");
    ATTEND_CHECK(embed_dim > 0 && hidden_dim > 0 && attention_dim > 0,
                 "model config: embed_dim, hidden_dim and attention_dim must be positive");
  } else if (arch == Arch::kPervasive) {
    ATTEND_CHECK(embed_dim > 0 && dense_layers > 0 && dense_layers <= 256 && growth > 0 &&
                     kernel > 0 && kernel % 2 == 1 && kernel <= 15 && max_positions > 0,
                 "model config: pervasive needs embed_dim, growth, max_positions > 0, "
                 "dense_layers in 1..256 and an odd kernel in 1..15, got ",
                 embed_dim, ", ", growth, ", ", max_positions, ", ", dense_layers, ", ", kernel);
  } else if (arch == Arch::kTransformer) {
    ATTEND_CHECK(d_model > 0 && heads > 0 && d_model % heads == 0, "model config: d_model ",
                 d_model, " is not a positive multiple of heads ", heads);
    ATTEND_CHECK(ff_dim > 0 && layers > 0 && max_positions > 0,
                 "model config: ff_dim, layers and max_positions must be positive");
    ATTEND_CHECK(decoder_depth >= 0 && decoder_depth <= 1024, "model config: decoder_depth ",
                 decoder_depth, " is not in 0..1024");
  } else {
    ATTEND_CHECK(embed_dim > 0 && hidden_dim > 0 && encoder_layers > 0 && decoder_layers > 0,
                 "model config: embed_dim, hidden_dim and the layer counts must be positive");
    ATTEND_CHECK(window_size > 0 && attention_dim > 0 && max_source_len > 0,
                 "model config: window_size, attention_dim and max_source_len must be positive");
    ATTEND_CHECK(teacher_forcing >= 0.0 && teacher_forcing <= 1.0, "model config: teacher_forcing ",
                 teacher_forcing, " is not in [0, 1]");
    ATTEND_CHECK(pyramid_levels >= 0 && pyramid_levels <= 6, "model config: pyramid_levels ",
                 pyramid_levels, " is not in 0..6");
    ATTEND_CHECK(frame_stacking >= 1 && frame_stacking <= 16, "model config: frame_stacking ",
                 frame_stacking, " is not in 1..16");
    ATTEND_CHECK(location_filters > 0 && location_width > 0 && location_width % 2 == 1,
                 "model config: location_filters must be positive and location_width odd, got ",
                 location_filters, " and ", location_width);
    ATTEND_CHECK(sharpening > 0.0 && std::isfinite(sharpening), "model config: sharpening ",
                 sharpening, " must be positive");
  }
}

int64_t ModelConfig::ListenerSteps(int64_t frames) const {
  int64_t n = (frames + frame_stacking - 1) / frame_stacking;
  for (int64_t i = 0; i < pyramid_levels; ++i) n = (n + 1) / 2;
  return n;
}

int64_t Seq2Seq::AttendedLength(int64_t length) const {
  return config_.speech() ? config_.ListenerSteps(length) : length;
}

Tensor Seq2Seq::AuxiliaryLoss(const Batch&, const Tensor&) { return Tensor(); }

std::vector<std::vector<Seq2Seq::Box>> Seq2Seq::AttendedBoxes(const Batch&) { return {}; }

std::vector<std::vector<Seq2Seq::Box>> Seq2Seq::AttendedBoxes(const Tensor& src) {
  Batch b;
  b.src = src;
  return AttendedBoxes(b);
}

void Seq2Seq::SetDecodePrecision(nn::Precision precision) {
  if (precision != precision_) prepared_.reset();
  precision_ = precision;
}

void Seq2Seq::PrepareDecoding() {
  NoGradGuard no_grad;
  prepared_.reset();
  prepared_ = PackDecoder();
}

void Seq2Seq::RestrictOutput(DecoderState&, const std::vector<int64_t>&) {
  throw Error("model " + std::string(NameOf(config_.arch)) +
              ": a vocabulary shortlist is not supported (translation models rnn*, transformer)");
}

void CheckKeptIds(const std::vector<int64_t>& ids, int64_t vocab) {
  for (size_t i = 0; i < ids.size(); ++i) {
    ATTEND_CHECK(ids[i] >= 0 && ids[i] < vocab, "shortlist: target id ", ids[i],
                 " is outside the model's vocabulary [0, ", vocab, ")");
    ATTEND_CHECK(i == 0 || ids[i - 1] < ids[i], "shortlist: target ids must be sorted and unique (",
                 ids[i - 1], " before ", ids[i], ")");
  }
  ATTEND_CHECK(std::binary_search(ids.begin(), ids.end(), int64_t{SpecialIds::kEos}),
               "shortlist: the kept target ids must include eos (", SpecialIds::kEos,
               "), or no hypothesis could end");
}

std::vector<AttentionMap> Seq2Seq::AttentionMaps(const Batch& batch) {
  NoGradGuard no_grad;
  Tensor weights;
  Forward(batch, &weights);  // [B, T, S], undefined without attention
  if (!weights.defined()) return {};
  return {{"attention", "cross", "decoder", 0, weights.Unsqueeze(1)}};
}

std::shared_ptr<Seq2Seq> MakeModel(const ModelConfig& config, Generator& gen) {
  config.Validate();
  if (config.arch == Arch::kTransformer) return MakeTransformer(config, gen);
  if (config.image()) return MakeCaptioner(config, gen);
  if (config.arch == Arch::kPervasive) return MakePervasive(config, gen);
  return MakeRnnSeq2Seq(config, gen);
}

}  // namespace attend::models
