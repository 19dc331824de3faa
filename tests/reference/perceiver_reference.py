# PyTorch oracle cases for the Perceiver of src/tasks/perceiver.cc: logits, weights, loss, grads.
"""PyTorch oracle for attend's Perceiver (include/attend/tasks/perceiver.h), written here from the
paper (Jaegle et al. 2021) with torch.nn.MultiheadAttention, nn.LayerNorm and nn.Linear.

Run as `/usr/bin/python3 tests/reference/perceiver_reference.py --out FILE` (Debian's
python3-torch); tests/tasks/test_perceiver.cc loads every weight by name into the C++ model and
compares. The file format is the one of ops_reference.py. Per case the op key gives the
configuration ("perceiver|image_size=5|classes=4|latents=3|dim=8|..."), and the tensors are:
  images            [B, S, S] in [0, 1]
  labels            i64 [B]
  positions         the Fourier features of the grid [S * S, 2 (2K + 1)]
  p:<name>          every parameter under the C++ model's name
  logits            [B, classes]
  cross_weights     the first cross-attention's weights [B, N, S * S]
  loss              mean cross-entropy (scalar)
  grad:<name>       d loss / d parameter
Unlike the C++ model, the mirror builds the input array [B, S * S, 1 + F] with torch.cat and
projects it with one nn.Linear.
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
    sys.exit("perceiver_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F32, F64 = torch.float32, torch.float64


def fourier_features(side, bands, max_freq):
    """Per pixel (row-major), for the y axis then the x axis: [p, sin(f_k pi p).., cos(f_k pi p)..]
    with p in [-1, 1] and f_k = linspace(1, max_freq / 2, K) (the paper's Fourier features)."""
    p = torch.linspace(-1.0, 1.0, side, dtype=F64)
    f = torch.linspace(1.0, max_freq / 2.0, bands, dtype=F64)
    yy, xx = torch.meshgrid(p, p, indexing="ij")
    feats = []
    for axis in (yy.reshape(-1), xx.reshape(-1)):
        arg = axis[:, None] * f[None, :] * math.pi
        feats += [axis[:, None], torch.sin(arg), torch.cos(arg)]
    return torch.cat(feats, dim=1)


class Block(nn.Module):
    def __init__(self, dim, heads, ratio, cross):
        super().__init__()
        self.cross = cross
        self.norm_q = nn.LayerNorm(dim)
        if cross:
            self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ratio * dim)
        self.fc2 = nn.Linear(ratio * dim, dim)

    def forward(self, z, x):
        q = self.norm_q(z)
        kv = self.norm_kv(x) if self.cross else q
        a, w = self.attn(q, kv, kv, need_weights=True, average_attn_weights=True)
        h = z + a
        return h + self.fc2(F.gelu(self.fc1(self.norm_mlp(h)))), w


class Perceiver(nn.Module):
    def __init__(self, side, classes, latents, dim, cross_heads, self_heads, self_layers,
                 repeats, bands, max_freq, ratio):
        super().__init__()
        self.repeats = repeats
        self.latents = nn.Parameter(torch.zeros(latents, dim))
        self.register_buffer("positions", fourier_features(side, bands, max_freq).to(F32))
        self.input_proj = nn.Linear(1 + 2 * (2 * bands + 1), dim)
        self.cross = nn.ModuleList(
            [Block(dim, cross_heads, ratio, True) for _ in range(min(repeats, 2))])
        self.self_blocks = nn.ModuleList(
            [Block(dim, self_heads, ratio, False) for _ in range(self_layers)])
        self.norm_out = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def named_for_attend(self):
        """Parameters under the C++ model's names (self_blocks.i -> self<i>, cross.i -> cross<i>)."""
        out = []
        for n, p in self.named_parameters():
            parts = n.split(".")
            if parts[0] in ("cross", "self_blocks"):
                n = ("cross" if parts[0] == "cross" else "self") + parts[1] + "." + ".".join(
                    parts[2:])
            out.append((n, p))
        return out

    def forward(self, images):
        b, s, _ = images.shape
        pix = images.reshape(b, s * s, 1)
        pos = self.positions.unsqueeze(0).expand(b, -1, -1)
        x = self.input_proj(torch.cat([pix, pos], dim=2))
        z = self.latents.unsqueeze(0).expand(b, -1, -1)
        first = None
        for r in range(self.repeats):
            z, w = self.cross[min(r, 1)](z, x)
            if r == 0:
                first = w
            for block in self.self_blocks:
                z, _ = block(z, None)
        return self.head(self.norm_out(z).mean(dim=1)), first


def set_parameters(b, model):
    """Matrices U(-a, a) with a = 1/sqrt(fan in), LayerNorm gains 1 + N(0, 0.1^2), biases
    N(0, 0.1^2), latents N(0, 1)."""
    with torch.no_grad():
        for name, p in model.named_for_attend():
            if name == "latents":
                v = b.randn(*p.shape, dtype=F64)
            elif p.dim() >= 2:
                a = 1.0 / math.sqrt(p[0].numel())
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            elif "norm" in name and name.endswith("weight"):
                v = 1.0 + 0.1 * b.randn(*p.shape, dtype=F64)
            else:
                v = 0.1 * b.randn(*p.shape, dtype=F64)
            p.copy_(v.to(F32))


def perceiver_case(b, name, side=5, classes=4, latents=3, dim=8, cross_heads=1, self_heads=2,
                   self_layers=1, repeats=1, bands=2, max_freq=0.0, ratio=2, batch=2):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    model = Perceiver(side, classes, latents, dim, cross_heads, self_heads, self_layers, repeats,
                      bands, max_freq if max_freq > 0 else float(side), ratio)
    set_parameters(b, model)
    images = torch.rand((batch, side, side), generator=b.gen, dtype=F64).to(F32)
    labels = b.randint(0, classes, batch)
    logits, weights = model(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    params = model.named_for_attend()
    tensors = [("images", images), ("labels", labels), ("positions", model.positions)]
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors += [("logits", logits.detach()), ("cross_weights", weights.detach()),
                ("loss", loss.detach())]
    for n, p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad:" + n, g.detach()))
    key = op_key("perceiver", image_size=side, classes=classes, latents=latents, dim=dim,
                 cross_heads=cross_heads, self_heads=self_heads, self_layers=self_layers,
                 repeats=repeats, bands=bands, max_freq=float(max_freq), mlp_ratio=ratio)
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    perceiver_case(b, "one_pass")
    # Three passes: cross0, then cross1 twice (shared), the latent blocks shared by all three;
    # several heads in the latent blocks, an explicit highest frequency.
    perceiver_case(b, "three_repeats_shared", side=6, classes=3, latents=4, dim=6, self_heads=3,
                   self_layers=2, repeats=3, bands=3, max_freq=4.0, batch=3)
    # No latent blocks, two cross-attention heads, one band.
    perceiver_case(b, "cross_only_two_heads", side=4, classes=5, latents=2, dim=4, cross_heads=2,
                   self_layers=0, repeats=2, bands=1, ratio=1)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261204)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
