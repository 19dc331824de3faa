"""GAU's training step in PyTorch (bench/tasks/gau.cc's model and batch): 16 scenes, images
[16, 1, 64, 64] uniform in [0, 1) and per-pixel labels [16, 64, 64] in 0..10; encoder
16-32-64-64, decoder width 32, with global attention upsample (gau_gau) or plain skip
connections (gau_skip); the mean per-pixel cross-entropy; the items are scenes."""
import torch
import torch.nn.functional as F

from gau_reference import CLASSES, GauNet


def make(gau):
    torch.manual_seed(1)
    model = GauNet([16, 32, 64, 64], 32, gau)
    x = torch.rand(16, 1, 64, 64)
    labels = torch.randint(0, CLASSES, (16, 64, 64))
    return model, lambda: F.cross_entropy(model(x)[0], labels), 16


CASES = {"gau_gau": lambda: make(True), "gau_skip": lambda: make(False)}
