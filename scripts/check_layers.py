#!/usr/bin/env python3
"""Checks that every #include in src/, include/, tools/, examples/ and python/ points down the
layer diagram.

The diagram (docs/design.md, "Layers"), lowest first; a file may include its own module and
any module of a lower rank, never one of its own rank or above:

  engine (library `attend`)
    0 core       Tensor, Shape, DType, storage, Error
    1 backend    CPU kernels: reference (scalar) and simd (Highway); GEMM dispatch
    2 autograd   graph nodes and the backward engine
    3 ops        differentiable ops, functional RNN cells, conv and pool included
    4 nn         modules
    5 optim, attention
    6 io         atomic files, safetensors, checkpoints
    7 engine     attend/attend.h, the engine's umbrella header
  toolkit (library `attend_mt`)
    8 text, models    UTF-8 and Unicode, line streams | seq2seq models
  8.5 audio      WAV files, resampling, log-mel features (checks transcripts' UTF-8 with text)
  8.5 vision     images: PNG/JPEG files, resizing, Fashion-MNIST's IDX files
    8 train      the one training loop of the tasks (attend/train.h)
    9 data, metrics, viz
   10 nmt        vocabularies, batching, training, search
   10 tasks      the catalogue's systems beyond translation (attend/tasks/*.h), one file each
   11 serve      `attend serve`: the translation service and its HTTP server (library attend_serve)
   12 tools      the `attend` command; examples/, one program per task; python/, the Python
                 module (pybind11)

Two more rules:
- a module's internal headers (internal.h, *_internal.h) are its own;
- the toolkit reaches the engine through its public headers (include/attend/) alone; the one
  exception is io/untrusted_json.h, a header over nlohmann-json that the public headers must
  not expose.

Usage: scripts/check_layers.py [ROOT]   (prints each violation; exits 1 when there is one)
"""
import os
import re
import sys

RANKS = {
    "core": 0, "backend": 1, "autograd": 2, "ops": 3, "nn": 4, "optim": 5, "attention": 5,
    "io": 6, "engine": 7,
    "text": 8, "audio": 8.5, "vision": 8.5, "models": 8, "train": 8, "data": 9, "metrics": 9, "viz": 9, "nmt": 10, "tasks": 10, "serve": 11, "tools": 12,
    "examples": 12, "python": 12,
}
TOOLKIT_RANK = RANKS["text"]
# Public headers (include/attend/...) and the module each belongs to.
PUBLIC = {
    "error.h": "core", "tensor.h": "core", "external.h": "core",
    "autograd.h": "autograd",
    "ops.h": "ops",
    "ops/conv.h": "ops", "ops/rnn.h": "ops", "ops/image.h": "ops",
    "nn.h": "nn", "nn/conv.h": "nn", "nn/rnn.h": "nn", "nn/advanced_lstm.h": "nn",
    "optim.h": "optim",
    "attention.h": "attention", "additive_attention.h": "attention",
    "attention_models.h": "attention",
    "files.h": "io", "checkpoint.h": "io", "dist.h": "train",
    "attend.h": "engine",
    "text.h": "text", "audio.h": "audio", "vision.h": "vision",
    "models.h": "models", "classifier.h": "models",
    "corpus.h": "data",
    "metrics.h": "metrics",
    "viz.h": "viz",
    "nmt.h": "nmt", "classify.h": "nmt", "shortlist.h": "nmt",
    "train.h": "train",
}
TOOLKIT_MAY_INCLUDE = {"io/untrusted_json.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of_file(rel):
    parts = rel.split("/")
    if parts[0] == "include":
        name = "/".join(parts[2:])
        if name.startswith("tasks/"):
            return "tasks"
        if name not in PUBLIC:
            raise SystemExit(f"check_layers: {rel} is not in the table of public headers "
                             "(scripts/check_layers.py PUBLIC): say which module it belongs to")
        return PUBLIC[name]
    if parts[0] == "tools":
        return "tools"
    if parts[0] == "examples":
        return "examples"
    if parts[0] == "python":
        return "python"
    if parts[0] == "src":
        if parts[1] not in RANKS:
            raise SystemExit(f"check_layers: src/{parts[1]}/ is not a module of the diagram "
                             "(scripts/check_layers.py RANKS): give it a rank")
        return parts[1]
    return None


def module_of_include(path):
    """(module, public) of an include path, or (None, False) for headers outside the project."""
    if path.startswith("attend/"):
        name = path[len("attend/"):]
        if name.startswith("tasks/"):
            return "tasks", True
        return PUBLIC.get(name, "?"), True
    top = path.split("/")[0]
    if top in RANKS:
        return top, False
    return None, False


def is_internal(path):
    base = os.path.basename(path)
    return base == "internal.h" or base.endswith("_internal.h")


def check(root):
    problems = []
    files = []
    for top in ("src", "include", "tools", "examples", "python"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith((".h", ".cc", ".inc")):
                    files.append(os.path.relpath(os.path.join(dirpath, n), root))
    for rel in sorted(files):
        mod = module_of_file(rel)
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            target, public = module_of_include(inc)
            if target is None:
                continue  # a header of this directory or outside the project (hwy/, ...)
            where = f"{rel}:{line}: {mod} includes \"{inc}\""
            if target == "?":
                problems.append(f"{where}: not a public header of the table")
            elif target == mod:
                continue
            elif RANKS[target] >= RANKS[mod]:
                problems.append(f"{where} ({target}, rank {RANKS[target]}), which is not below "
                                f"{mod} (rank {RANKS[mod]})")
            elif is_internal(inc):
                problems.append(f"{where}: internal to {target}")
            elif (RANKS[mod] >= TOOLKIT_RANK and RANKS[target] < TOOLKIT_RANK and not public
                  and inc not in TOOLKIT_MAY_INCLUDE):
                problems.append(f"{where}: the toolkit uses the engine through include/attend/")
    return problems, len(files)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems, n = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the layers "
              "(docs/design.md, \"Layers\")")
        return 1
    print(f"check_layers: {n} files, every include points down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
