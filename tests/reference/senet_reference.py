# PyTorch oracle cases for the SENet task's CNN: logits, excitations, loss and gradients.
"""PyTorch oracle for attend's SENet classifier (src/tasks/senet.cc, tasks::SenetModel): per
stage conv 3x3 (padding 1) -> ReLU -> squeeze-and-excitation (Hu et al. 2018: s = sigmoid(W2
relu(W1 mean_hw(x))), y = x * s) -> 2x2 max-pool (all stages but the last), then global average
pooling and a linear classifier over 10 classes; or the same CNN without the SE blocks.

Run as `/usr/bin/python3 tests/reference/senet_reference.py --out FILE` (Debian's python3-torch);
tests/tasks/test_senet.cc loads every weight by name into the C++ model and compares. The file
format is the one of ops_reference.py. The op key gives the configuration, e.g.
"senet|channels=4,6,5|reduction=2|se=1|dtype=f32", and the tensors are named:
  x                 the images [B, 1, H, W]
  labels            i64 [B]
  p:<name>          every parameter under the C++ model's name (conv1.weight, se1.fc1.bias, ...)
  logits            [B, 10]
  gate<k>           block k's excitation [B, C_k] (SE cases only), k = 1, 2, ...
  loss              the mean cross-entropy (scalar)
  grad:x            d loss / d x
  grad:<name>       d loss / d parameter
"""
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import torch  # noqa: E402
    import torch.nn as nn  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("senet_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F32, F64 = torch.float32, torch.float64
CLASSES = 10


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):  # [B, C, H, W] -> (y, s [B, C])
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * s[:, :, None, None], s


class Senet(nn.Module):
    """Registered in attend's order: conv1, se1, conv2, se2, ..., classifier."""

    def __init__(self, channels, reduction, se):
        super().__init__()
        self.stages = len(channels)
        self.se = se
        c_in = 1
        for k, c in enumerate(channels, 1):
            self.add_module("conv%d" % k, nn.Conv2d(c_in, c, 3, padding=1))
            if se:
                self.add_module("se%d" % k, SqueezeExcitation(c, reduction))
            c_in = c
        self.classifier = nn.Linear(c_in, CLASSES)

    def forward(self, x):
        gates = []
        h = x
        for k in range(1, self.stages + 1):
            h = torch.relu(getattr(self, "conv%d" % k)(h))
            if self.se:
                h, s = getattr(self, "se%d" % k)(h)
                gates.append(s)
            if k < self.stages:
                h = F.max_pool2d(h, 2)
        return self.classifier(h.mean(dim=(2, 3))), gates


def set_parameters(b, model, dtype):
    """Weights U(-a, a) with a = 1/sqrt(fan in) (torch's own scale), biases N(0, 0.1^2), all
    drawn from the builder's generator so the cases do not depend on torch's default init."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                a = 1.0 / math.sqrt(p[0].numel())
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            else:
                v = 0.1 * b.randn(*p.shape, dtype=F64)
            p.copy_(v.to(dtype))


def senet_case(b, name, channels, reduction, se, batch, height, width, dtype=F32):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    model = Senet(channels, reduction, se).to(dtype)
    set_parameters(b, model, dtype)
    x = b.randn(batch, 1, height, width, dtype=dtype).requires_grad_(True)
    labels = b.randint(0, CLASSES, batch)
    logits, gates = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors = [("x", x.detach()), ("labels", labels)]
    params = list(model.named_parameters())
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors.append(("logits", logits.detach()))
    tensors += [("gate%d" % (k + 1), g.detach()) for k, g in enumerate(gates)]
    tensors += [("loss", loss.detach()), ("grad:x", x.grad.detach())]
    tensors += [("grad:" + n, p.grad.detach()) for n, p in params]
    key = op_key("senet", channels=list(channels), reduction=reduction, se=se,
                 dtype="f64" if dtype == F64 else "f32")
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    # Three stages (two pools, 12 -> 6 -> 3), reduction 2.
    senet_case(b, "se_3stages", [4, 6, 5], 2, True, 3, 12, 12)
    # Odd sides (the pools drop the last row/column), reduction 1, in float64.
    senet_case(b, "se_2stages_odd_f64", [3, 4], 1, True, 2, 9, 7, dtype=F64)
    # A reduction that does not divide the width (C / r rounds down), one stage (no pool).
    senet_case(b, "se_1stage_r3", [7], 3, True, 2, 5, 6)
    # The same CNN without squeeze-and-excitation.
    senet_case(b, "plain_3stages", [4, 6, 5], 2, False, 3, 12, 12)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261204)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
