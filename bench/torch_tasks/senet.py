"""SENet's training step in PyTorch (bench/tasks/senet.cc's model and batch)."""
import torch
import torch.nn.functional as F

from senet_reference import Senet


def make(se):
    torch.manual_seed(1)
    model = Senet([32, 64, 128], 4, se)
    x = torch.randn(64, 1, 28, 28)
    y = torch.arange(64) % 10
    return model, lambda: F.cross_entropy(model(x)[0], y), 64


CASES = {"senet_se": lambda: make(True), "senet_none": lambda: make(False)}
