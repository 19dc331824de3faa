// attend.models: the sequence-to-sequence models of `attend train` (models::MakeModel) as
// attend.nn modules, their batches, and the training loss the trainer computes, so a training
// loop written in Python runs the same C++ model as `attend train`.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "bind.h"

namespace attend::python {
namespace {

using models::Batch;
using models::Seq2Seq;

Batch MakeBatchFromLists(const std::vector<std::vector<int64_t>>& src,
                         const std::vector<std::vector<int64_t>>& tgt) {
  ATTEND_CHECK(!src.empty(), "make_batch: no sentences");
  ATTEND_CHECK(src.size() == tgt.size(), "make_batch: ", src.size(), " sources but ", tgt.size(),
               " targets");
  std::vector<nmt::Example> examples(src.size());
  std::vector<int64_t> order(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    ATTEND_CHECK(!src[i].empty(), "make_batch: source ", i, " is empty");
    for (const auto* ids : {&src[i], &tgt[i]})
      for (int64_t id : *ids)
        ATTEND_CHECK(id >= models::SpecialIds::kEos + 1 || id == models::SpecialIds::kUnk,
                     "make_batch: sentence ", i, " holds id ", id,
                     " (ids are the vocabulary's; 0, 2 and 3 are padding, begin and end, which "
                     "the batch adds itself)");
    examples[i].src = src[i];
    examples[i].tgt = tgt[i];
    examples[i].index = static_cast<int64_t>(i);
    order[i] = static_cast<int64_t>(i);
  }
  return nmt::MakeBatch(examples, order);
}

// Ids below the model's vocabulary: the embeddings would read past their tables otherwise.
void CheckIds(const Seq2Seq& model, const Batch& b) {
  const models::ModelConfig& c = model.config();
  ATTEND_CHECK(!c.speech() && !c.image(),
               "Seq2Seq: this is a speech or captioning model; make_batch builds token batches "
               "for translation models");
  auto check = [](const Tensor& t, int64_t vocab, const char* what) {
    const int64_t* p = t.data<int64_t>();
    for (int64_t i = 0; i < t.numel(); ++i)
      ATTEND_CHECK(p[i] < vocab, "Seq2Seq: the batch's ", what, " holds id ", p[i],
                   " but the model's vocabulary has ", vocab, " entries");
  };
  check(b.src, c.src_vocab, "source");
  check(b.tgt_in, c.tgt_vocab, "target");
}

py::object Forward(Seq2Seq& model, const Batch& batch, bool attention) {
  CheckIds(model, batch);
  Tensor weights;
  Tensor logits;
  {
    py::gil_scoped_release release;
    logits = model.Forward(batch, attention ? &weights : nullptr);
  }
  if (!attention) return py::cast(logits);
  return py::make_tuple(logits, weights.defined() ? py::cast(weights) : py::none());
}

}  // namespace

void BindModels(py::module_& m) {
  py::class_<Batch>(m, "Batch",
                    "A padded batch as the trainer builds it (nmt::MakeBatch): src [B, S], "
                    "tgt_in (begin + target) and tgt_out (target + end) [B, T], lengths [B].")
      .def_readonly("src", &Batch::src)
      .def_readonly("src_lengths", &Batch::src_lengths)
      .def_readonly("tgt_in", &Batch::tgt_in)
      .def_readonly("tgt_out", &Batch::tgt_out)
      .def_readonly("tgt_lengths", &Batch::tgt_lengths)
      .def_readonly("src_tokens", &Batch::src_tokens, "Real (non-padding) source tokens")
      .def_readonly("tgt_tokens", &Batch::tgt_tokens, "Real target tokens, end included")
      .def("__repr__", [](const Batch& b) {
        return "Batch(sentences=" + std::to_string(b.src.size(0)) +
               ", src_tokens=" + std::to_string(b.src_tokens) +
               ", tgt_tokens=" + std::to_string(b.tgt_tokens) + ")";
      });
  m.def("make_batch", &MakeBatchFromLists, py::arg("src"), py::arg("tgt"),
        "A batch of token id lists (a vocabulary's ids, without begin and end), padded as the "
        "trainer pads them.");

  py::class_<Seq2Seq, nn::Module, std::shared_ptr<Seq2Seq>>(
      m, "Seq2Seq",
      "A sequence-to-sequence model of `attend train` (rnn, rnn-attention, transformer, "
      "pervasive, ...), an attend.nn.Module.")
      .def("forward", &Forward, py::arg("batch"), py::kw_only(), py::arg("attention") = false,
           "Teacher-forced logits [B, T, target vocabulary]; with attention=True the pair "
           "(logits, weights [B, T, S]) (None for a model without attention).")
      .def("__call__", &Forward, py::arg("batch"), py::kw_only(), py::arg("attention") = false,
           "forward(batch)")
      .def(
          "loss",
          [](Seq2Seq& model, const Batch& batch, double label_smoothing) {
            ATTEND_CHECK(label_smoothing >= 0 && label_smoothing < 1,
                         "Seq2Seq.loss: label_smoothing=", label_smoothing, " must be in [0, 1)");
            CheckIds(model, batch);
            py::gil_scoped_release release;
            const Tensor logits = model.Forward(batch);
            Tensor loss = CrossEntropy(logits.View({-1, logits.size(2)}), batch.tgt_out.View({-1}),
                                       models::SpecialIds::kPad, label_smoothing);
            if (Tensor extra = model.AuxiliaryLoss(batch, logits); extra.defined())
              loss = Add(loss, extra);
            return loss;
          },
          py::arg("batch"), py::kw_only(), py::arg("label_smoothing") = 0.1,
          "The trainer's loss: token-level cross-entropy of the target (padding ignored, label "
          "smoothing as `attend train --label-smoothing`) plus the model's own terms.")
      .def_property_readonly(
          "config",
          [](const Seq2Seq& model) {
            return py::module_::import("json").attr("loads")(model.config().ToJson());
          },
          "The model's options as a dict (models::ModelConfig, as checkpoints store it).")
      .def("__repr__", [](const Seq2Seq& model) {
        return "Seq2Seq(arch=" + std::string(models::NameOf(model.config().arch)) +
               ", parameters=" + std::to_string(model.NumParameters()) + ")";
      });

  m.def(
      "make_model",
      [](const std::string& arch, int64_t src_vocab, int64_t tgt_vocab, int64_t seed,
         const py::kwargs& options) {
        ATTEND_CHECK(seed >= 0, "make_model: seed=", seed, " must be >= 0");
        ATTEND_CHECK(src_vocab > 4 && tgt_vocab > 4, "make_model: src_vocab=", src_vocab,
                     " and tgt_vocab=", tgt_vocab, " must be > 4 (ids 0-3 are special)");
        models::ModelConfig c;
        c.arch = models::ParseEnum<models::Arch>(arch, "arch");
        for (const auto& [k, v] : options) {
          const std::string key = k.cast<std::string>();
          ATTEND_CHECK(key != "arch" && key != "src_vocab" && key != "tgt_vocab" &&
                           SetModelOption(c, key, v, "make_model"),
                       "make_model: unknown option '", key,
                       "' (the model options of `attend train`, without dashes: hidden_dim=...)");
        }
        c.src_vocab = src_vocab;
        c.tgt_vocab = tgt_vocab;
        Generator gen(static_cast<uint64_t>(seed));
        py::gil_scoped_release release;
        return models::MakeModel(c, gen);
      },
      py::arg("arch") = "rnn-attention", py::kw_only(), py::arg("src_vocab"), py::arg("tgt_vocab"),
      py::arg("seed") = 1,
      "A new model as `attend train` builds it: arch and the model options of `attend train` as "
      "keywords without dashes (hidden_dim=..., score=\"dot\"), initialised from seed.");
  m.def(
      "load_model",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return nmt::LoadModel(path).model;
      },
      py::arg("path"), "The model of a checkpoint written by `attend train` (its weights loaded).");
}

}  // namespace attend::python
