# PyTorch oracle cases for the GAU segmentation network: logits, channel weights, loss, gradients.
"""PyTorch oracle for attend's GAU segmentation network (src/tasks/gau.cc, tasks::GauModel).

Encoder: stage k = conv 3x3 (padding 1) -> ReLU, a 2x2 max-pool before every stage but the first.
Decoder: d = ReLU(conv 1x1 (deepest stage)); for each lower stage k, deepest first:
low = conv 3x3 (stage k); with GAU (Li et al. 2018, "Pyramid Attention Network for Semantic
Segmentation", sec. 3.2) w = ReLU(conv 1x1 (global average pool of d)) and low = low * w;
d = ReLU(F.interpolate(d, size of stage k, bilinear, align_corners=False) + low). Then a 1x1
convolution to 11 classes and the mean per-pixel cross-entropy.

Run as `/usr/bin/python3 tests/reference/gau_reference.py --out FILE` (Debian's python3-torch);
tests/tasks/test_gau.cc loads every weight by name into the C++ model and compares. The file
format is the one of ops_reference.py. The op key gives the configuration, e.g.
"gau|channels=3,4,5|decoder=4|gau=1|dtype=f32", and the tensors are named:
  x                 the images [B, 1, H, W]
  labels            i64 [B, H, W]
  p:<name>          every parameter under the C++ model's name (enc1.weight, gate2.bias, ...)
  logits            [B, 11, H, W]
  weight<k>         the channel weights w [B, D] of decoder level k, deepest first (GAU only)
  up                F.interpolate of x (bilinear, align_corners=False) to [2H + 1, 2W - 1]
  loss              the mean per-pixel cross-entropy (scalar)
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
    sys.exit("gau_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F32, F64 = torch.float32, torch.float64
CLASSES = 11


class GauNet(nn.Module):
    def __init__(self, channels, decoder, gau):
        super().__init__()
        self.stages = len(channels)
        self.gau = gau
        c_in = 1
        for k, c in enumerate(channels, 1):
            self.add_module("enc%d" % k, nn.Conv2d(c_in, c, 3, padding=1))
            c_in = c
        self.top = nn.Conv2d(c_in, decoder, 1)
        for k, c in enumerate(channels[:-1], 1):
            self.add_module("lateral%d" % k, nn.Conv2d(c, decoder, 3, padding=1))
            if gau:
                self.add_module("gate%d" % k, nn.Conv2d(decoder, decoder, 1))
        self.classifier = nn.Conv2d(decoder, CLASSES, 1)

    def forward(self, x):
        feats = []
        h = x
        for k in range(1, self.stages + 1):
            if k > 1:
                h = F.max_pool2d(h, 2)
            h = torch.relu(getattr(self, "enc%d" % k)(h))
            feats.append(h)
        d = torch.relu(self.top(feats[-1]))
        weights = []
        for k in range(self.stages - 1, 0, -1):
            low = getattr(self, "lateral%d" % k)(feats[k - 1])
            if self.gau:
                w = torch.relu(getattr(self, "gate%d" % k)(d.mean(dim=(2, 3), keepdim=True)))
                weights.append(w[:, :, 0, 0])
                low = low * w
            up = F.interpolate(d, size=low.shape[2:], mode="bilinear", align_corners=False)
            d = torch.relu(up + low)
        return self.classifier(d), weights


def set_parameters(b, model, dtype):
    """Weights U(-a, a) with a = 1/sqrt(fan in), biases N(0, 0.1^2) (the gates' N(1, 0.1^2), as
    attend starts them near 1), all drawn from the builder's generator."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                a = 1.0 / math.sqrt(p[0].numel())
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            else:
                v = 0.1 * b.randn(*p.shape, dtype=F64)
                if name.startswith("gate"):
                    v = v + 1.0
            p.copy_(v.to(dtype))


def gau_case(b, name, channels, decoder, gau, batch, height, width, dtype=F32):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    model = GauNet(channels, decoder, gau).to(dtype)
    set_parameters(b, model, dtype)
    x = b.randn(batch, 1, height, width, dtype=dtype).requires_grad_(True)
    labels = b.randint(0, CLASSES, batch, height, width)
    logits, weights = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    up = F.interpolate(x.detach(), size=(2 * height + 1, 2 * width - 1), mode="bilinear",
                       align_corners=False)
    tensors = [("x", x.detach()), ("labels", labels)]
    params = list(model.named_parameters())
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors.append(("logits", logits.detach()))
    tensors += [("weight%d" % (k + 1), w.detach()) for k, w in enumerate(weights)]
    tensors += [("up", up), ("loss", loss.detach()), ("grad:x", x.grad.detach())]
    tensors += [("grad:" + n, p.grad.detach()) for n, p in params]
    key = op_key("gau", channels=list(channels), decoder=decoder, gau=gau,
                 dtype="f64" if dtype == F64 else "f32")
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    # Three stages (16 -> 8 -> 4): two GAU levels, exact 2x upsampling.
    gau_case(b, "gau_3stages", [3, 4, 5], 4, True, 2, 16, 16)
    # Odd sides (the pools drop a row/column, so the upsampling is not 2x), in float64.
    gau_case(b, "gau_3stages_odd_f64", [2, 3, 4], 3, True, 2, 11, 9, dtype=F64)
    # Four stages, a wider decoder.
    gau_case(b, "gau_4stages", [3, 4, 4, 5], 6, True, 2, 16, 12)
    # The same network without the channel weights (plain skip connections).
    gau_case(b, "skip_3stages", [3, 4, 5], 4, False, 2, 16, 16)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261205)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
