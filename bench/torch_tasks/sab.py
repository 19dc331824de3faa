"""Sparse Attentive Backtracking's training step in PyTorch (bench/tasks/sab.cc's models and
batches): hidden 64, ktop 5, katt 10, ktrunc 10, batch 32;
  copy    input [32, 121, 10] one-hot (10 symbols of 8, a gap of 100 blanks, the delimiter, 10
          blanks), targets [32 * 121], -1 except the last 10 steps; 8 classes
  pixels  input [32, 196, 1] (a 14 x 14 image, one pixel per step), targets [32 * 196], -1 except
          the last step; 10 classes
The loss is the cross-entropy over the scored steps; the items are sequence steps (32 x steps)."""
import types

import torch
import torch.nn.functional as F

from sab_reference import SabNet, copy_batch, pixel_batch


def make(task, model):
    torch.manual_seed(1)
    # The reference's batch builders draw from b.gen.
    b = types.SimpleNamespace(gen=torch.Generator().manual_seed(1))
    if task == "copy":
        x, y = copy_batch(b, 32, 100, torch.float32)
        classes = 8
    else:
        x, y = pixel_batch(b, 32, 196, torch.float32)
        classes = 10
    net = SabNet(model, x.shape[2], 64, classes, 5, 10, 10)

    def loss():
        return F.cross_entropy(net(x).reshape(-1, classes), y, ignore_index=-1)

    return net, loss, 32 * x.shape[1]


CASES = {
    "sab_copy_sab": lambda: make("copy", "sab"),
    "sab_copy_full": lambda: make("copy", "lstm-full"),
    "sab_copy_truncated": lambda: make("copy", "lstm-truncated"),
    "sab_pixels_sab": lambda: make("pixels", "sab"),
    "sab_pixels_full": lambda: make("pixels", "lstm-full"),
    "sab_pixels_truncated": lambda: make("pixels", "lstm-truncated"),
}
