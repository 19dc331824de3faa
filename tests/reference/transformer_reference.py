# PyTorch oracle cases for the Transformer translation model: logits, loss and gradients.
"""PyTorch oracle for attend's Transformer (src/models/transformer.cc): the model of
tests/reference/models/transformer_model.py (torch's own nn.TransformerEncoderLayer /
nn.TransformerDecoderLayer, batch_first, ReLU), with dropout 0.

Run as `/usr/bin/python3 tests/reference/transformer_reference.py --out FILE` (Debian's
python3-torch); tests/models/test_transformer.cc loads every weight by name into the C++ model's
StateDict and compares. The file format is the one of ops_reference.py. Per case the op key gives
the configuration, e.g. "transformer|pre_norm=1|share=0|src_vocab=17|tgt_vocab=19|d_model=16|
heads=4|ff=24|layers=2|max_positions=32|label_smoothing=0.1", and the tensors are named:
  src, src_lengths, tgt_in, tgt_out   the batch (i64; 0 = padding, 2 = BOS, 3 = EOS)
  p:<name>          every parameter under the C++ model's name (torch's layer names: encoder.
                    layers.0.self_attn.in_proj_weight, ..., embed.weight or src_embed.weight,
                    tgt_embed.weight, output.weight, output.bias)
  logits            [B, T, V]
  attention         the last decoder layer's cross-attention weights averaged over heads [B, T, S]
  loss              cross-entropy over the non-pad targets with label smoothing (scalar)
  grad:<name>       d loss / d parameter
Cases with "transparent=1" use transparent attention (the parameter transparent.logits, drawn
at random like the other matrices so that the mix is not uniform). Cases with "guided=1" add
guided alignment on head align_head of decoder layer align_layer, weighted align_weight:
  align_targets     [B, T, S] the reference rows, each linked row normalised to sum 1
  head_weights      that head's cross-attention [B, T, S]
  align_loss        -sum(align_targets * log(max(head_weights, 1e-18))) / linked rows
and loss / grad:<name> are then those of loss + align_weight * align_loss.
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
    sys.exit("transformer_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402
# The model itself (shared with bench/torch_reference/transformer.py): models/transformer_model.py.
from transformer_model import Transformer, PAD, BOS, EOS  # noqa: E402

F32, F64 = torch.float32, torch.float64


def set_parameters(b, model, d):
    """Every parameter drawn from the builder's generator: matrices U(-a, a) with a = 1/sqrt(fan
    in), embeddings N(0, 1/d), LayerNorm gains 1 + N(0, 0.1^2), biases N(0, 0.1^2)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed" in name:
                v = b.randn(*p.shape, dtype=F64) / math.sqrt(d)
            elif p.dim() == 2:
                a = 1.0 / math.sqrt(p.shape[1])
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


def alignment_targets(b, src_lengths, tgt_lengths, s, t):
    """Reference rows [B, T, S]: each real target token (eos excluded) linked with probability
    0.7 to one or two real source positions, each linked row normalised to sum 1."""
    a = torch.zeros(len(src_lengths), t, s, dtype=F64)
    for i, (sl, tl) in enumerate(zip(src_lengths, tgt_lengths)):
        for r in range(tl - 1):
            if torch.rand((), generator=b.gen).item() < 0.3:
                continue
            for j in b.randint(0, sl, 1 + int(torch.rand((), generator=b.gen).item() < 0.5)):
                a[i, r, j] = 1.0
    rows = a.sum(-1, keepdim=True)
    return (a / rows.clamp(min=1.0)).to(F32)


def transformer_case(b, name, pre_norm, share, src_vocab, tgt_vocab, d=16, heads=4, ff=24,
                     layers=2, max_pos=32, src_lengths=(7, 4, 5), tgt_lengths=(6, 3, 5),
                     smoothing=0.1, transparent=False, guided=None, decoder_depth=0):
    """guided: (layer, head, weight) of guided alignment, or None."""
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    model = Transformer(pre_norm, share, src_vocab, tgt_vocab, d, heads, ff, layers, max_pos,
                        dropout=0.0, transparent=transparent, decoder_depth=decoder_depth)
    if guided is not None:
        model.capture_head(guided[0], guided[1])
    model.capture_cross_attention()
    set_parameters(b, model, d)
    src, src_len, tgt_in, tgt_out = make_batch(b, src_vocab, tgt_vocab, list(src_lengths),
                                               list(tgt_lengths))
    logits = model(src, src_len, tgt_in)
    v = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, v), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=smoothing)
    tensors = [("src", src), ("src_lengths", src_len), ("tgt_in", tgt_in), ("tgt_out", tgt_out)]
    extra = {}
    if guided is not None:
        targets = alignment_targets(b, src_lengths, tgt_lengths, src.shape[1], tgt_in.shape[1])
        linked = int((targets.sum(-1) > 0).sum())
        weights = model.captured_head
        align = -(targets * weights.clamp(min=1e-18).log()).sum() / linked
        loss = loss + guided[2] * align
        tensors += [("align_targets", targets), ("head_weights", weights.detach()),
                    ("align_loss", align.detach())]
        extra = dict(guided=True, align_layer=guided[0], align_head=guided[1],
                     align_weight=guided[2])
    loss.backward()
    params = list(model.named_parameters())
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors += [("logits", logits.detach()), ("attention", model.captured.detach()),
                ("loss", loss.detach())]
    for n, p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad:" + n, g.detach()))
    key = op_key("transformer", pre_norm=pre_norm, share=share, src_vocab=src_vocab,
                 tgt_vocab=tgt_vocab, d_model=d, heads=heads, ff=ff, layers=layers,
                 max_positions=max_pos, label_smoothing=smoothing, transparent=transparent,
                 decoder_depth=decoder_depth, **extra)
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    for pre_norm in (True, False):
        for share in (True, False):
            tag = ("pre" if pre_norm else "post") + ("_shared" if share else "_separate")
            transformer_case(b, tag, pre_norm, share, 19, 19 if share else 23)
    # One layer, two heads, a longer target than source, no label smoothing.
    transformer_case(b, "pre_separate_1layer_long_target", True, False, 13, 11, d=8, heads=2,
                     ff=12, layers=1, src_lengths=(3, 5), tgt_lengths=(9, 4), smoothing=0.0)
    # Transparent attention with both norm placements, three layers (four sources per mix).
    transformer_case(b, "pre_shared_transparent", True, True, 19, 19, layers=3, transparent=True)
    transformer_case(b, "post_separate_transparent", False, False, 17, 21, transparent=True)
    # A deep encoder under a shallow decoder (the transparent paper's shape), and the reverse.
    transformer_case(b, "post_shared_transparent_deep_encoder", False, True, 19, 19, layers=4,
                     transparent=True, decoder_depth=1)
    transformer_case(b, "pre_separate_deep_decoder", True, False, 17, 21, layers=1,
                     decoder_depth=3)
    # Guided alignment on a head of the first layer (not the one `attention` reads), on the last
    # layer of a transparent model, and on the one-layer model.
    transformer_case(b, "pre_shared_guided_layer0_head2", True, True, 19, 19,
                     guided=(0, 2, 0.5))
    transformer_case(b, "post_separate_transparent_guided", False, False, 17, 21,
                     transparent=True, guided=(1, 1, 0.1))
    transformer_case(b, "pre_separate_1layer_guided", True, False, 13, 11, d=8, heads=2, ff=12,
                     layers=1, src_lengths=(3, 5), tgt_lengths=(9, 4), smoothing=0.0,
                     guided=(0, 0, 1.0))
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240621)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
