#!/usr/bin/python3
# PyTorch oracle cases for tests/attention/test_qkv_attention.cc: attend::attention::QkvScore.
"""PyTorch oracle for attend::attention::QkvScore (the encyclopedia's "encoder-decoder QKV" and,
with the keys as queries, its "encoder QKV"): q = W_q s, k_j = W_k h_j, v_j = W_v h_j, scores
q . k_j / sqrt(A), weights softmax over the unmasked keys, context sum_j alpha_j v_j. Written
from plain tensor ops (no module), in f32 and f64.

Writes the binary format of ops_reference.py: inputs x<i>, outputs y<i>, cotangents dy<i> and the
gradients dx<i> of sum_i(y_i * dy_i). Op keys and their inputs:
  qkv_scores           q [B, Tq, Dq], k [B, Tk, Dk], W_q [A, Dq], W_k [A, Dk]; y0 scores
  qkv_attend|mask      q, k, W_q, W_k, W_v [Dv, Dk][, mask]; y0 context [B, Tq, Dv], y1 weights.
                       mask none, full (bool [B, Tq, Tk]) or padding (bool [B, 1, Tk])
  qkv_self|mask        x [B, T, D] (query and keys), W_q [A, D], W_k [A, D], W_v [D, D], padding
                       mask bool [B, 1, T]; y0 context [B, T, D], y1 weights
No row is fully masked (torch gives NaN there; attend's zeros are tested in C++ alone). Run with
Debian's /usr/bin/python3 (python3-torch).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("qkv_attention_reference.py needs PyTorch (%s): run it with /usr/bin/python3" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F32, F64 = torch.float32, torch.float64

# Odd, pairwise different sizes: a swapped or transposed dim cannot pass by accident.
B, TQ, TK, DQ, DK, A, DV, T, D = 2, 3, 5, 4, 6, 7, 3, 6, 5


def scores(q, k, wq, wk):
    return (q @ wq.T) @ (k @ wk.T).transpose(1, 2) / math.sqrt(wq.shape[0])


def attend(q, k, wq, wk, wv, mask=None):
    s = scores(q, k, wq, wk)
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    w = torch.softmax(s, -1)
    return w @ (k @ wv.T), w


def full_mask(b, shape):
    """A random mask with at least one kept key in every row."""
    m = b.mask(*shape, p=0.4)
    keep = b.randint(0, shape[-1], *shape[:-1], 1)
    return m.scatter(len(shape) - 1, keep, False)


def padding_mask(b, batch, t):
    """[batch, 1, t]: true beyond a length in [1, t] (row 0 keeps every key)."""
    lengths = b.randint(1, t + 1, batch)
    lengths[0] = t
    return (torch.arange(t).view(1, t) >= lengths.view(batch, 1)).unsqueeze(1)


def cases(b, dt, tag):
    # Projections scaled so that the scores stay O(1): the softmax is neither flat nor one-hot.
    q, k = b.randn(B, TQ, DQ, dtype=dt), b.randn(B, TK, DK, dtype=dt)
    wq, wk = b.randn(A, DQ, dtype=dt, scale=0.6), b.randn(A, DK, dtype=dt, scale=0.5)
    wv = b.randn(DV, DK, dtype=dt, scale=0.5)
    b.add("qkv_scores_" + tag, op_key("qkv_scores"), [q, k, wq, wk], scores)
    b.add("qkv_attend_" + tag, op_key("qkv_attend", mask="none"), [q, k, wq, wk, wv],
          lambda q, k, wq, wk, wv: attend(q, k, wq, wk, wv))
    b.add("qkv_attend_full_" + tag, op_key("qkv_attend", mask="full"),
          [q, k, wq, wk, wv, full_mask(b, (B, TQ, TK))], attend)
    b.add("qkv_attend_padding_" + tag, op_key("qkv_attend", mask="padding"),
          [q, k, wq, wk, wv, padding_mask(b, B, TK)], attend)

    x = b.randn(B, T, D, dtype=dt)
    sq, sk = b.randn(A, D, dtype=dt, scale=0.6), b.randn(A, D, dtype=dt, scale=0.5)
    sv = b.randn(D, D, dtype=dt, scale=0.5)
    b.add("qkv_self_" + tag, op_key("qkv_self", mask="padding"),
          [x, sq, sk, sv, padding_mask(b, B, T)],
          lambda x, wq, wk, wv, m: attend(x, x, wq, wk, wv, m))


def build_cases(seed):
    b = Builder(seed)
    for dt, tag in ((F32, "f32"), (F64, "f64")):
        cases(b, dt, tag)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240801)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
