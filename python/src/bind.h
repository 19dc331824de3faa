// The Python extension module attend._attend: one Bind* function per part, each in its own
// translation unit (pybind11 is heavy to compile; the parts rebuild on their own).
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "attend/tensor.h"

namespace attend::models {
struct ModelConfig;
}  // namespace attend::models

namespace attend::python {

namespace py = pybind11;

void BindTensor(py::module_& m);     // Tensor, NumPy exchange, creation, no_grad, Generator
void BindOps(py::module_& m);        // every public op (attend/ops.h, ops/*.h)
void BindNn(py::module_& m);         // attend.nn: modules, init, state dicts, safetensors
void BindOptim(py::module_& m);      // attend.optim: optimizers and schedules
void BindAttention(py::module_& m);  // attend.attention: every mechanism
void BindToolkit(py::module_& m);    // corpus, train, translate, score
void BindMedia(
    py::module_& m);  // speech and captioning: corpora, transcribe, caption; AER, brackets
void BindModels(py::module_& m);  // attend.models: the sequence models as modules

// The dtype named as NumPy and PyTorch name it ("float32", "float64", "int64", "bool"), and
// back; attend::Error for any other name.
const char* DTypeToName(DType dtype);
DType DTypeFromName(const std::string& name);
// A Python object as a tensor: an attend Tensor as it is, a NumPy array without a copy when its
// dtype and strides allow, anything else (lists, numbers, other arrays) copied through NumPy.
// `what` names the argument in error messages.
Tensor ToTensor(const py::handle& obj, const char* what = "argument");
// The process-wide generator that functions without an explicit one draw from
// (attend.manual_seed sets it).
Generator& DefaultGenerator();

// Sets the model option `key` (models::ModelConfig's name, or the command's flag for a bool:
// no_input_feeding=True) from a Python value; false when no option has that name. `what` names
// the caller in error messages.
bool SetModelOption(models::ModelConfig& config, const std::string& key, const py::handle& value,
                    const char* what);

}  // namespace attend::python
