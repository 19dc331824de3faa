"""The documents system's training step in PyTorch (bench/tasks/documents.cc's models and batch).

Vocabulary 6,817 words, embeddings 64, word and sentence GRUs 32 per direction, attention 32,
2 stacked layers, 6 sections; batch 32 pages, each of 24 sentences of 8 words (192 words; 24 the
cap nearly every training page reaches, 8 the training split's mean sentence length). The flat
and mean models read the same 192 words as one sequence. Items are words.
"""
import torch
import torch.nn.functional as F

import documents_reference
from documents_reference import DocumentClassifier

# The mirror packs its padded sequences (nn.utils.rnn.pack_padded_sequence), as a PyTorch user
# must for variable lengths; on the CPU PyTorch's packed GRU backward costs grow with the square
# of the length (each step's slice adds a full-size gradient), which dominates the 192-word flat
# and mean models. The *_unpacked cases run the same GRUs unpacked: correct here only because
# every sequence of the synthetic batch has the same length, they are PyTorch's lower bound.
packed_gru = documents_reference.run_packed


def unpacked_gru(rnn, x, lengths):
    return rnn(x)[0]

BATCH, SENTENCES, WORDS, VOCAB = 32, 24, 8, 6817


def make(model_kind, attention, packed=True):
    documents_reference.run_packed = packed_gru if packed else unpacked_gru
    torch.manual_seed(1)
    model = DocumentClassifier(model_kind, attention, VOCAB, 64, 32, 32, 32, 2, 6)
    words = torch.randint(1, VOCAB, (BATCH, SENTENCES, WORDS))  # 0 is padding
    lengths = torch.full((BATCH, SENTENCES), WORDS, dtype=torch.int64)
    counts = torch.full((BATCH,), SENTENCES, dtype=torch.int64)
    flat = words.reshape(BATCH, SENTENCES * WORDS)
    flat_lengths = torch.full((BATCH,), SENTENCES * WORDS, dtype=torch.int64)
    labels = torch.arange(BATCH) % 6

    def loss():
        documents_reference.run_packed = packed_gru if packed else unpacked_gru
        logits = model(words, lengths, counts, flat, flat_lengths)[0]
        return F.cross_entropy(logits, labels)

    return model, loss, BATCH * SENTENCES * WORDS


CASES = {
    "documents_han": lambda: make("han", "single"),
    "documents_flat": lambda: make("flat", "single"),
    "documents_mean": lambda: make("mean", "single"),
    "documents_stacked": lambda: make("han", "stacked"),
    "documents_han_unpacked": lambda: make("han", "single", packed=False),
    "documents_flat_unpacked": lambda: make("flat", "single", packed=False),
    "documents_mean_unpacked": lambda: make("mean", "single", packed=False),
}
