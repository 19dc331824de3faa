"""The Neural Turing Machine's training step in PyTorch (bench/tasks/ntm.cc's models and batch):
memory 128 x 20, LSTM controller 100, one read and one write head, against an LSTM with about as
many parameters; batch 16 sequences of length 20 (the longest training length), so input
[16, 41, 9], targets [16, 41, 8] and mask [16, 41, 1] over the 20 output steps. The loss is the
binary cross-entropy over the masked bits; the items are output bits, 16 x 20 x 8.

tests/reference/ntm_reference.py mirrors the NTM only; the baseline (LstmCopyModel) is below."""
import types

import torch
import torch.nn.functional as F

from ntm_reference import BITS, Ntm, copy_batch

N, M, HIDDEN = 128, 20, 100


def matched_lstm_hidden(n_hidden, m):
    """As tasks::MatchedLstmHidden: the LSTM size whose parameter count is closest to the NTM's
    (the first of two equally close)."""
    inputs = BITS + 1
    ntm = (4 * n_hidden * (inputs + m + n_hidden + 2) + (4 * m + 12) * (n_hidden + 1)
           + BITS * (n_hidden + m + 1))
    best, best_gap = 1, None
    for k in range(1, 8193):
        lstm = 4 * k * (inputs + k + 2) + BITS * (k + 1)
        if best_gap is None or abs(lstm - ntm) < best_gap:
            best, best_gap = k, abs(lstm - ntm)
        if lstm > ntm:
            break
    return best


class LstmCopy(torch.nn.Module):
    """The baseline without memory: one LSTM layer over the inputs and a Linear readout."""

    def __init__(self, hidden):
        super().__init__()
        self.lstm = torch.nn.LSTM(BITS + 1, hidden, batch_first=True)
        self.output = torch.nn.Linear(hidden, BITS)

    def forward(self, x):
        return (self.output(self.lstm(x)[0]),)


def make(controller):
    torch.manual_seed(1)
    b = types.SimpleNamespace(gen=torch.Generator().manual_seed(1))
    x, y, mask, _ = copy_batch(b, [20] * 16)
    model = Ntm(N, M, HIDDEN) if controller == "ntm" else LstmCopy(matched_lstm_hidden(HIDDEN, M))

    def loss():
        bce = F.binary_cross_entropy_with_logits(model(x)[0], y, reduction="none")
        return (bce * mask).sum() / (mask.sum() * BITS)

    return model, loss, 16 * 20 * BITS


CASES = {"ntm_ntm": lambda: make("ntm"), "ntm_lstm": lambda: make("lstm")}
