# PyTorch oracle cases for the pervasive-attention model: logits, alignment, loss and gradients.
"""PyTorch oracle for attend's Pervasive Attention model (src/models/pervasive.cc): the model of
tests/reference/models/pervasive_model.py (channels first, the paper's masked k x k filter), with
dropout 0.

Run as `/usr/bin/python3 tests/reference/pervasive_reference.py --out FILE` (Debian's
python3-torch); tests/models/test_pervasive.cc loads every weight by name into the C++ model's
StateDict and compares. The file format is the one of ops_reference.py. Per case the op key gives
the configuration, e.g. "pervasive|src_vocab=13|tgt_vocab=17|embed_dim=8|dense_layers=3|growth=4|
kernel=3|max_positions=16|label_smoothing=0.1", and the tensors are named:
  src, src_lengths, tgt_in, tgt_out   the batch (i64; 0 = padding, 2 = BOS, 3 = EOS)
  p:<name>          every parameter under the C++ model's name
  logits            [B, T, V]
  attention         the implicit alignment [B, T, S]
  loss              cross-entropy over the non-pad targets with label smoothing (scalar)
  grad:<name>       d loss / d parameter
"""
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "models"))
try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("pervasive_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402
from pervasive_model import Pervasive, PAD, BOS, EOS  # noqa: E402

F32, F64 = torch.float32, torch.float64


def set_parameters(b, model):
    """Every parameter drawn from the builder's generator: matrices and filters U(-a, a) with
    a = 1/sqrt(fan in), embeddings and positions N(0, 0.5^2) (the padding rows zero), LayerNorm
    gains 1 + N(0, 0.1^2), biases N(0, 0.1^2)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed" in name or "positions" in name:
                v = 0.5 * b.randn(*p.shape, dtype=F64)
                if "embed" in name:
                    v[PAD] = 0.0
            elif p.dim() >= 2:
                a = 1.0 / math.sqrt(p[0].numel())
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            elif "norm" in name and name.endswith("weight"):
                v = 1.0 + 0.1 * b.randn(*p.shape, dtype=F64)
            else:
                v = 0.1 * b.randn(*p.shape, dtype=F64)
            p.copy_(v.to(F32))


def make_batch(b, src_vocab, tgt_vocab, src_lengths, tgt_lengths):
    """Padded src, and tgt_in = BOS y.., tgt_out = y.. EOS, with tgt_lengths = len(y) + 1."""
    bsz, s, t = len(src_lengths), max(src_lengths), max(tgt_lengths)
    src = torch.full((bsz, s), PAD, dtype=torch.int64)
    tgt_in = torch.full((bsz, t), PAD, dtype=torch.int64)
    tgt_out = torch.full((bsz, t), PAD, dtype=torch.int64)
    for i in range(bsz):
        src[i, :src_lengths[i]] = b.randint(4, src_vocab, src_lengths[i])
        n = tgt_lengths[i] - 1
        y = b.randint(4, tgt_vocab, n)
        tgt_in[i, 0] = BOS
        tgt_in[i, 1:n + 1] = y
        tgt_out[i, :n] = y
        tgt_out[i, n] = EOS
    return src, torch.tensor(src_lengths, dtype=torch.int64), tgt_in, tgt_out


def pervasive_case(b, name, src_vocab=13, tgt_vocab=17, e=8, layers=3, growth=4, kernel=3,
                   max_pos=16, src_lengths=(7, 4, 5), tgt_lengths=(6, 3, 5), smoothing=0.1):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    model = Pervasive(src_vocab, tgt_vocab, e, layers, growth, kernel, max_pos, dropout=0.0)
    set_parameters(b, model)
    src, src_len, tgt_in, tgt_out = make_batch(b, src_vocab, tgt_vocab, list(src_lengths),
                                               list(tgt_lengths))
    logits, alignment = model(src, src_len, tgt_in)
    v = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, v), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=smoothing)
    loss.backward()
    tensors = [("src", src), ("src_lengths", src_len), ("tgt_in", tgt_in), ("tgt_out", tgt_out)]
    params = list(model.named_parameters())
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors += [("logits", logits.detach()), ("attention", alignment), ("loss", loss.detach())]
    for n, p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad:" + n, g.detach()))
    key = op_key("pervasive", src_vocab=src_vocab, tgt_vocab=tgt_vocab, embed_dim=e,
                 dense_layers=layers, growth=growth, kernel=kernel, max_positions=max_pos,
                 label_smoothing=smoothing)
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    pervasive_case(b, "k3_3layers")
    # A 5x5 filter (two rows above the centre), a target longer than the source.
    pervasive_case(b, "k5_2layers_long_target", e=6, layers=2, growth=3, kernel=5,
                   src_lengths=(3, 5), tgt_lengths=(9, 4), smoothing=0.0)
    # 1x1 filters: no context but the max-pool; one sentence without padding.
    pervasive_case(b, "k1_2layers_unpadded", e=4, layers=2, growth=2, kernel=1,
                   src_lengths=(6,), tgt_lengths=(5,))
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20250302)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
