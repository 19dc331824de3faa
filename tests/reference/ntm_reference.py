# PyTorch oracle cases for the Neural Turing Machine of the copy task (src/tasks/ntm.cc).
"""PyTorch oracle for attend's Neural Turing Machine (attend/tasks/ntm.h, src/tasks/ntm.cc): a
mirror written from the paper (Graves, Wayne and Danihelka 2014, section 3) with the choices the
C++ model states: an LSTM cell controller reading [x_t; r_{t-1}], one Linear giving both heads'
parameters (read: key, beta, g, shift, gamma; write: the same, then erase and add), memory
starting at 1e-6, both heads' weights starting on location 0, the read head reading the memory
the previous step left before the write head erases and adds, the output Linear over [h_t; r_t].

Run as `/usr/bin/python3 tests/reference/ntm_reference.py --out FILE` (Debian's python3-torch);
tests/tasks/test_ntm.cc loads every weight by name and compares. The file format is the one of
ops_reference.py. Per case the op key gives the configuration, "ntm|memory_size=6|memory_width=4|
hidden=5", and the tensors are named:
  input, target, mask, lengths   the copy batch (as MakeCopyBatch lays it out)
  p:<name>          every parameter under the C++ model's name
  logits            [B, T, 8]
  read_weights, write_weights    [B, T, N] the heads' weights at every step
  loss              binary cross-entropy over the output phase (scalar)
  grad:<name>       d loss / d parameter
"""
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("ntm_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F32, F64 = torch.float32, torch.float64
BITS = 8
EPS_SHARPEN = 1e-12
EPS_COSINE = 1e-8


class Ntm(torch.nn.Module):
    def __init__(self, n, m, hidden):
        super().__init__()
        self.n, self.m = n, m
        self.controller = torch.nn.LSTMCell(BITS + 1 + m, hidden)
        self.heads = torch.nn.Linear(hidden, 4 * m + 12)
        self.output = torch.nn.Linear(hidden + m, BITS)

    def address(self, memory, raw, prev):
        m = self.m
        key = raw[:, :m]
        beta = F.softplus(raw[:, m])
        g = torch.sigmoid(raw[:, m + 1])
        s = torch.softmax(raw[:, m + 2:m + 5], dim=-1)
        gamma = 1 + F.softplus(raw[:, m + 5])
        # K[u, v] with the norms taken as sqrt(|x|^2 + eps), as attention::CosineScore does.
        kn = key / torch.sqrt((key * key).sum(-1, keepdim=True) + EPS_COSINE)
        mn = memory / torch.sqrt((memory * memory).sum(-1, keepdim=True) + EPS_COSINE)
        cos = torch.einsum("bm,bnm->bn", kn, mn)
        wc = torch.softmax(beta[:, None] * cos, dim=-1)
        wg = g[:, None] * wc + (1 - g[:, None]) * prev
        # circular convolution: w~_i = sum_j wg_j s(i - j), s over shifts -1, 0, +1
        wt = (s[:, 0:1] * torch.roll(wg, -1, dims=1) + s[:, 1:2] * wg
              + s[:, 2:3] * torch.roll(wg, 1, dims=1))
        p = (wt + EPS_SHARPEN) ** gamma[:, None]
        return p / p.sum(-1, keepdim=True)

    def forward(self, x):
        b, t, _ = x.shape
        n, m = self.n, self.m
        memory = torch.full((b, n, m), 1e-6, dtype=x.dtype)
        w_read = torch.zeros(b, n, dtype=x.dtype)
        w_read[:, 0] = 1.0
        w_write = w_read.clone()
        r = torch.einsum("bn,bnm->bm", w_read, memory)
        h = torch.zeros(b, self.controller.hidden_size, dtype=x.dtype)
        c = torch.zeros_like(h)
        outs, reads, writes = [], [], []
        for step in range(t):
            h, c = self.controller(torch.cat([x[:, step], r], 1), (h, c))
            raw = self.heads(h)
            w_read = self.address(memory, raw[:, :m + 6], w_read)
            r = torch.einsum("bn,bnm->bm", w_read, memory)
            wr = raw[:, m + 6:]
            w_write = self.address(memory, wr, w_write)
            erase = torch.sigmoid(wr[:, m + 6:2 * m + 6])
            add = torch.tanh(wr[:, 2 * m + 6:3 * m + 6])
            ww = w_write[:, :, None]
            memory = memory * (1 - ww * erase[:, None, :]) + ww * add[:, None, :]
            outs.append(self.output(torch.cat([h, r], 1)))
            reads.append(w_read.detach())
            writes.append(w_write.detach())
        return torch.stack(outs, 1), torch.stack(reads, 1), torch.stack(writes, 1)


def set_parameters(b, model):
    """Matrices U(-a, a) with a = 1.5/sqrt(fan in) (larger than the default, so that strengths,
    gates, shifts and sharpenings vary well away from their starting values), biases N(0, 0.5^2)."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                a = 1.5 / math.sqrt(p.shape[1])
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            else:
                v = 0.5 * torch.randn(p.shape, generator=b.gen, dtype=F64)
            p.copy_(v.to(F32))


def copy_batch(b, lengths):
    """As MakeCopyBatch: T = 2 max + 1; vectors at 0..L-1, delimiter at L, targets at L+1..2L."""
    bsz, t = len(lengths), 2 * max(lengths) + 1
    x = torch.zeros(bsz, t, BITS + 1)
    y = torch.zeros(bsz, t, BITS)
    mask = torch.zeros(bsz, t, 1)
    for i, n in enumerate(lengths):
        bits = torch.randint(0, 2, (n, BITS), generator=b.gen).to(F32)
        x[i, :n, :BITS] = bits
        x[i, n, BITS] = 1.0
        y[i, n + 1:2 * n + 1] = bits
        mask[i, n + 1:2 * n + 1] = 1.0
    return x, y, mask, torch.tensor(lengths, dtype=torch.int64)


def ntm_case(b, name, n=6, m=4, hidden=5, lengths=(3, 2)):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    model = Ntm(n, m, hidden)
    set_parameters(b, model)
    x, y, mask, lens = copy_batch(b, list(lengths))
    logits, reads, writes = model(x)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    loss = (bce * mask).sum() / (mask.sum() * BITS)
    loss.backward()
    tensors = [("input", x), ("target", y), ("mask", mask), ("lengths", lens)]
    params = list(model.named_parameters())
    tensors += [("p:" + k, p.detach()) for k, p in params]
    tensors += [("logits", logits.detach()), ("read_weights", reads), ("write_weights", writes),
                ("loss", loss.detach())]
    for k, p in params:
        tensors.append(("grad:" + k, p.grad.detach()))
    b.cases.append((name, op_key("ntm", memory_size=n, memory_width=m, hidden=hidden), tensors))


def build_cases(seed):
    b = Builder(seed)
    ntm_case(b, "n6_m4_h5")
    # Wider memory, one sequence long enough to wrap the heads around the memory.
    ntm_case(b, "n5_m7_h6_wraps", n=5, m=7, hidden=6, lengths=(4, 1, 2))
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261204)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
