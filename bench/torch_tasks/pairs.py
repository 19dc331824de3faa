"""The sentence-pair system's training step in PyTorch (bench/tasks/pairs.cc's models and batch).

Vocabulary 2,855 words, strings padded to 12 words, embeddings 50, 64 filters of width 3 or GRUs
of 64 per direction, attention 32, classifier 64, MwAN's four attention functions; batch 32 pairs,
both strings of every pair 4 words long (the training split's mean). Items are pairs.
"""
import torch
import torch.nn.functional as F

import pairs_reference
from pairs_reference import Abcnn, Mwan

BATCH, MAX_LEN, LEN, VOCAB = 32, 12, 4, 2855
EMBED, HIDDEN, WIDTH, ATTN, CLASSIFIER = 50, 64, 3, 32, 64


def f32_length_mask(lengths, n, extra=0):
    """The reference's length mask in f32: the oracle runs in f64, the bench trains in f32 as
    attend does, and an f64 mask would lift the whole forward to f64."""
    return (torch.arange(n)[None, :] < (lengths[:, None] + extra)).to(torch.float32)


pairs_reference.length_mask = f32_length_mask


def make(name):
    torch.manual_seed(1)
    if name in ("siamese", "abcnn1", "abcnn2", "abcnn3"):
        model = Abcnn(name, VOCAB, MAX_LEN, EMBED, HIDDEN, WIDTH, CLASSIFIER)
    else:
        model = Mwan(name, VOCAB, MAX_LEN, EMBED, HIDDEN, ATTN, CLASSIFIER,
                     ["concat", "bilinear", "dot", "minus"])
    # The reference makes its own weights in f64; uniform initial values in f32 stand in for
    # attend's initialisation (the step's cost does not depend on them).
    model = model.float()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.uniform_(-0.1, 0.1)
            else:
                p.normal_(0.0, 0.1)
    a = torch.zeros(BATCH, MAX_LEN, dtype=torch.int64)
    b = torch.zeros(BATCH, MAX_LEN, dtype=torch.int64)
    a[:, :LEN] = torch.randint(1, VOCAB, (BATCH, LEN))  # 0 is padding
    b[:, :LEN] = torch.randint(1, VOCAB, (BATCH, LEN))
    la = torch.full((BATCH,), LEN, dtype=torch.int64)
    lb = torch.full((BATCH,), LEN, dtype=torch.int64)
    label = torch.arange(BATCH) % 2
    return model, lambda: F.cross_entropy(model(a, b, la, lb)[0], label), BATCH


CASES = {
    "pairs_abcnn1": lambda: make("abcnn1"),
    "pairs_abcnn2": lambda: make("abcnn2"),
    "pairs_abcnn3": lambda: make("abcnn3"),
    "pairs_siamese": lambda: make("siamese"),
    "pairs_mwan": lambda: make("mwan"),
    "pairs_siamese_gru": lambda: make("siamese-gru"),
}
