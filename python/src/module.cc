// PYBIND11_MODULE: attend._attend, wrapped by the pure-Python package attend/__init__.py.
#include "bind.h"

#include "attend/error.h"

namespace attend::python {

PYBIND11_MODULE(_attend, m) {
  m.doc() = "attend: tensors, reverse-mode autograd and attention (the C++ library's bindings)";
  // attend::Error carries what was wrong and where; in Python it is attend.Error, a ValueError.
  py::register_exception<Error>(m, "Error", PyExc_ValueError).attr("__doc__") =
      "A bad argument or input, with what was wrong and where (the library's attend::Error).";
  BindTensor(m);
  BindOps(m);
  py::module_ nn = m.def_submodule("nn", "Modules, initialisers and state dicts");
  BindNn(nn);
  py::module_ optim = m.def_submodule("optim", "Optimizers and learning-rate schedules");
  BindOptim(optim);
  py::module_ attention = m.def_submodule("attention", "Every attention mechanism of the library");
  BindAttention(attention);
  BindToolkit(m);
  BindMedia(m);
  py::module_ models = m.def_submodule("models", "The sequence-to-sequence models as modules");
  BindModels(models);
}

}  // namespace attend::python
