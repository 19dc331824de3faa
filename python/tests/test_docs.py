"""The Python blocks of docs/python.md run as written (paths and step counts shrunk to a tiny
model trained here), so the walk-through cannot drift from the bindings."""
import os
import pathlib
import re

import pytest

import attend

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "python.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, re.S)


def block(marker):
    found = [b for b in BLOCKS if marker in b]
    assert len(found) == 1, marker
    return found[0]


def test_the_ten_line_example(capsys):
    code = block('src, tgt = ["I", "love", "you"]')
    assert len(code.strip().splitlines()) <= 11  # the import and ten lines
    exec(compile(code, "docs/python.md", "exec"), {})
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["I", "love", "you"]
    for row, word in zip(rows[1:], ["je", "t'", "aime"]):
        cells = row.split()
        assert cells[0] == word and abs(sum(float(x) for x in cells[1:]) - 1.0) < 0.02


def test_tensors_block():
    exec(compile(block("attend.from_numpy(a)"), "docs/python.md", "exec"), {})


def test_toolkit_and_heatmap_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = block("attend.build_synthetic_corpus")
    code = code.replace("max_steps=300", "max_steps=30, vocab_type='word', vocab_size=200, "
                        "embed_dim=16, hidden_dim=16, attention_dim=16, valid_every=30, "
                        "valid_sentences=2, threads=2")
    code = code.replace('seed=1)', 'seed=1, train=300, dev=10, test=10)')
    env = {}
    exec(compile(code, "docs/python.md", "exec"), env)
    ckpt = env["summary"]["checkpoint"]
    heat = block("import matplotlib").replace("runs/quickstart/best.ckpt", ckpt)
    heat = heat.replace("The file could not be opened.", "a small example")
    exec(compile(heat, "docs/python.md", "exec"), {})
    assert os.path.getsize(tmp_path / "attention.png") > 1000
    models = block("attend.models.make_model").replace("runs/quickstart/best.ckpt", ckpt)
    env = {}
    exec(compile(models, "docs/python.md", "exec"), env)
    assert tuple(env["weights"].shape) == (1, 3, 3) and env["loss"].item() > 0
    assert isinstance(env["trained"], attend.models.Seq2Seq)


def test_state_dict_block(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(block("attend.nn.LSTM(8, 16"), "docs/python.md", "exec"), {})
    assert (tmp_path / "lstm.safetensors").exists()


def test_module_subclass_block(capsys):
    exec(compile(block("class Net(attend.nn.Module)"), "docs/python.md", "exec"),
         {"attend": attend})
    out = capsys.readouterr().out
    assert "fc1.weight" in out and "scale" in out
