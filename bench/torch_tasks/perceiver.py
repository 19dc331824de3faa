"""The Perceiver's training step in PyTorch (bench/tasks/perceiver.cc's models and batch): 32
images [32, 28, 28] uniform in [0, 1) and their labels [32]; the Perceiver of 32 latents x 64
(1 cross-attention head, 2 latent blocks of 4 heads, 8 Fourier bands per axis up to frequency
14, MLP ratio 2, one pass) or the baseline CNN of 32/64/128 channels; cross-entropy of the
logits; the items are images.

The Perceiver is tests/reference/perceiver_reference.py's. Its blocks ask every attention layer
for its weights, which the tests compare but the trainer never asks for (attend's training step
passes no weights tensor), so here the attention layers are told not to compute them. The
reference has no CNN; SmallCnn below is attend's tasks::SmallCnn (src/tasks/perceiver.cc)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from perceiver_reference import Perceiver


class SmallCnn(nn.Module):
    """conv 3x3 (c) ReLU, max-pool 2 | conv 3x3 (2c) ReLU, max-pool 2 | conv 3x3 (4c) ReLU |
    mean over the cells | linear; images [B, S, S] to logits [B, classes]."""

    def __init__(self, c, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * c, 4 * c, 3, padding=1)
        self.head = nn.Linear(4 * c, classes)

    def forward(self, images):
        x = F.max_pool2d(torch.relu(self.conv1(images.unsqueeze(1))), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.conv3(x))
        return self.head(x.mean(dim=(2, 3))), None


def without_weights(model):
    """Every nn.MultiheadAttention of `model` returns (output, None), skipping the weights."""
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            forward = m.forward
            m.forward = lambda q, k, v, forward=forward, **kw: forward(q, k, v, need_weights=False)
    return model


def make(kind):
    torch.manual_seed(1)
    if kind == "perceiver":
        model = without_weights(Perceiver(side=28, classes=10, latents=32, dim=64, cross_heads=1,
                                          self_heads=4, self_layers=2, repeats=1, bands=8,
                                          max_freq=28.0, ratio=2))
    else:
        model = SmallCnn(32, 10)
    images = torch.rand(32, 28, 28)
    labels = torch.arange(32) % 10
    return model, lambda: F.cross_entropy(model(images)[0], labels), 32


CASES = {"perceiver_perceiver": lambda: make("perceiver"), "perceiver_cnn": lambda: make("cnn")}
