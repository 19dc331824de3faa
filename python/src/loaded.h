// What every class holding a loaded checkpoint shows Python (Translator, Transcriber, Captioner):
// its path, model, architecture, configuration and vocabulary size.
#pragma once

#include <pybind11/pybind11.h>

#include "attend/models.h"
#include "attend/nmt.h"
#include "bind.h"

namespace attend::python {

// C has path() and loaded() (an nmt::LoadedModel); returns `cls` for the rest of the chain.
template <typename C, typename... Options>
py::class_<C, Options...> DefLoadedModel(py::class_<C, Options...> cls, const char* vocab_doc) {
  cls.def_property_readonly("path", &C::path, "The checkpoint's path")
      .def_property_readonly(
          "model", [](const C& c) { return c.loaded().model; },
          "The model, an attend.models.Seq2Seq module sharing these weights")
      .def_property_readonly(
          "arch", [](const C& c) { return models::NameOf(c.loaded().model->config().arch); },
          "The model's architecture")
      .def_property_readonly(
          "config", [](const C& c) { return c.loaded().model->config().ToJson(); },
          "The model's configuration as JSON")
      .def_property_readonly(
          "vocab_size", [](const C& c) { return c.loaded().vocab.size(); }, vocab_doc);
  return cls;
}

}  // namespace attend::python
