# PyTorch oracle cases for the models of the Sparse Attentive Backtracking system (src/tasks/sab.cc).
"""PyTorch oracle for attend's SAB system (attend/tasks/sab.h, src/tasks/sab.cc): the three models
of the copy and pixel tasks, each a recurrent layer and a Linear readout of every step's state:
  sab             the SparseAttentiveBacktracking mirror of structures_reference.py
  lstm-full       torch.nn.LSTM over the whole sequence
  lstm-truncated  torch.nn.LSTM run in chunks of ktrunc steps, each chunk starting from the
                  previous chunk's final (h, c) detached (truncated BPTT, Williams and Peng 1990)
and the loss, the cross-entropy over the scored steps (target -1 elsewhere).

Run as `/usr/bin/python3 tests/reference/sab_reference.py --out FILE` (Debian's python3-torch);
tests/tasks/test_sab.cc loads every weight by name and compares. The file format is the one of
ops_reference.py. Per case the op key gives the configuration,
"sab_model|model=sab|inputs=10|hidden=5|classes=8|ktop=2|katt=3|ktrunc=4", and the tensors are:
  input [B, T, C], target i64 [B * T]
  p:<name>          every parameter under the C++ model's name
  logits            [B, T, classes]
  loss              the cross-entropy (scalar)
  grad:<name>       d loss / d parameter
  grad:input        d loss / d input
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
    sys.exit("sab_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402
from structures_reference import SparseAttentiveBacktracking, MIN_TOPK_GAP  # noqa: E402

F32, F64 = torch.float32, torch.float64
SYMBOLS, ALPHABET = 10, 8


class SabNet(torch.nn.Module):
    def __init__(self, model, inputs, hidden, classes, ktop, katt, ktrunc):
        super().__init__()
        self.model, self.ktrunc = model, ktrunc
        if model == "sab":
            self.sab = SparseAttentiveBacktracking(inputs, hidden, ktop, katt, ktrunc)
        else:
            self.lstm = torch.nn.LSTM(inputs, hidden, batch_first=True)
        self.readout = torch.nn.Linear(hidden, classes)

    def forward(self, x):
        if self.model == "sab":
            h = self.sab(x)[0][0]
        elif self.model == "lstm-full":
            h = self.lstm(x)[0]
        else:
            outs, state = [], None
            for start in range(0, x.shape[1], self.ktrunc):
                out, (hn, cn) = self.lstm(x[:, start:start + self.ktrunc], state)
                outs.append(out)
                state = (hn.detach(), cn.detach())
            h = torch.cat(outs, 1)
        return self.readout(h)


def set_parameters(b, model, dtype):
    """Matrices U(-a, a) with a = 1.5/sqrt(fan in), biases N(0, 0.5^2): larger than the defaults,
    so that gates and attention scores vary well away from their starting values."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                a = 1.5 / math.sqrt(p.shape[1])
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            else:
                v = 0.5 * torch.randn(p.shape, generator=b.gen, dtype=F64)
            p.copy_(v.to(dtype))


def copy_batch(b, bsz, gap, dtype):
    """As MakeSabCopyBatch: symbols at 0..9, blanks, the delimiter at 10 + gap, targets after."""
    t = 2 * SYMBOLS + gap + 1
    delim = SYMBOLS + gap
    x = torch.zeros(bsz, t, ALPHABET + 2, dtype=dtype)
    y = torch.full((bsz, t), -1, dtype=torch.int64)
    for i in range(bsz):
        s = torch.randint(0, ALPHABET, (SYMBOLS,), generator=b.gen)
        for step in range(t):
            ch = ALPHABET
            if step < SYMBOLS:
                ch = int(s[step])
            if step == delim:
                ch = ALPHABET + 1
            x[i, step, ch] = 1.0
            if step > delim:
                y[i, step] = s[step - delim - 1]
    return x, y.reshape(-1)


def pixel_batch(b, bsz, steps, dtype):
    """As MakeSabPixelBatch: one value per step, the label scored at the last step."""
    x = torch.randn(bsz, steps, 1, generator=b.gen, dtype=F64).to(dtype)
    y = torch.full((bsz, steps), -1, dtype=torch.int64)
    y[:, -1] = torch.randint(0, 10, (bsz,), generator=b.gen)
    return x, y.reshape(-1)


def sab_case(b, name, model, dtype=F32, hidden=5, ktop=2, katt=3, ktrunc=4, task="copy"):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    if task == "copy":
        x, y = copy_batch(b, 2, 3, dtype)
        classes = ALPHABET
    else:
        x, y = pixel_batch(b, 3, 16, dtype)
        classes = 10
    net = SabNet(model, x.shape[2], hidden, classes, ktop, katt, ktrunc).to(dtype)
    set_parameters(b, net, dtype)
    x.requires_grad_(True)
    logits = net(x)
    if model == "sab" and net.sab.min_gap < MIN_TOPK_GAP:
        raise SystemExit("%s: top-k gap %.3g below %.3g; change the seed or sizes"
                         % (name, net.sab.min_gap, MIN_TOPK_GAP))
    loss = F.cross_entropy(logits.reshape(-1, classes), y, ignore_index=-1)
    loss.backward()
    tensors = [("input", x.detach()), ("target", y)]
    params = list(net.named_parameters())
    tensors += [("p:" + k, p.detach()) for k, p in params]
    tensors += [("logits", logits.detach()), ("loss", loss.detach())]
    tensors += [("grad:" + k, p.grad.detach()) for k, p in params]
    tensors.append(("grad:input", x.grad.detach()))
    key = op_key("sab_model", model=model, inputs=x.shape[2], hidden=hidden, classes=classes,
                 ktop=ktop, katt=katt, ktrunc=ktrunc)
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    # The copy layout (24 steps): memories every 3 steps, truncation every 4.
    sab_case(b, "sab_copy", "sab", hidden=6)
    sab_case(b, "lstm_full_copy", "lstm-full")
    sab_case(b, "lstm_truncated_copy", "lstm-truncated")
    # A truncation that does not divide the length: the last chunk is shorter.
    sab_case(b, "lstm_truncated_copy_k5", "lstm-truncated", ktrunc=5)
    # The pixel layout, scored at the last step only, in f64 too.
    sab_case(b, "sab_pixels", "sab", hidden=5, ktop=1, katt=4, ktrunc=3, task="pixels")
    sab_case(b, "sab_pixels_f64", "sab", dtype=F64, hidden=6, ktop=2, katt=2, ktrunc=5,
             task="pixels")
    sab_case(b, "lstm_truncated_pixels_f64", "lstm-truncated", dtype=F64, hidden=4, ktrunc=6,
             task="pixels")
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261204)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
