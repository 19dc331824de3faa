#!/usr/bin/python3
"""PyTorch oracle for attend's document classifiers (src/tasks/documents.cc, DocumentClassifier).

The mirror composes the torch structures of structures_reference.py (ContextAttention,
StackedLatentAttention, the packed bidirectional GRU) the way the C++ model does: han (word
attention per sentence, a sentence GRU, sentence attention), flat (one GRU over the document's
words, one attention) and mean (the flat GRU's mean over the words); the attention layers are a
single context attention or stacked latent attention with a learned query. Parameters come out
in the C++ model's names and order (own parameters first, then children in registration order).

Run as `/usr/bin/python3 tests/reference/documents_reference.py --out FILE` (Debian's
python3-torch); tests/tasks/test_documents.cc replays every case. The file format is the one of
ops_reference.py. Per case the op key gives the configuration ("documents|model=han|
attention=stacked|vocab=..|..|dtype=f32"), and the tensors are named:
  words, word_lengths, sentence_counts, flat_words, flat_lengths, labels   the batch (i64)
  p:<name>          every parameter under the C++ model's name
  logits            [B, classes]
  word_weights      han [B, S, W], flat [B, L] (absent for mean)
  sentence_weights  han [B, S]
  loss              the mean cross-entropy (scalar)
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
    sys.exit("documents_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402
from structures_reference import ContextAttention, StackedLatentAttention, run_packed  # noqa: E402

F32, F64 = torch.float32, torch.float64


class AttentionPool(nn.Module):
    def __init__(self, dim, attn_dim, kind, layers):
        super().__init__()
        self.kind = kind
        if kind == "single":
            self.attention = ContextAttention(dim, attn_dim)
        else:
            self.query = nn.Parameter(torch.zeros(attn_dim))
            self.attention = StackedLatentAttention(attn_dim, dim, attn_dim, layers)

    def forward(self, h, mask):  # h [B, T, D], mask bool [B, T] (True = padding)
        if self.kind == "single":
            return self.attention(h, mask)
        q = self.query.view(1, 1, -1).expand(h.shape[0], 1, -1)
        outs = self.attention(q, h, mask.unsqueeze(1))
        return outs[0], outs[-1]


class DocumentClassifier(nn.Module):
    def __init__(self, model, attention, vocab, embed_dim, word_hidden, sentence_hidden,
                 attn_dim, layers, classes):
        super().__init__()
        self.model = model
        self.embed = nn.Embedding(vocab, embed_dim, padding_idx=0)
        self.word_rnn = nn.GRU(embed_dim, word_hidden, batch_first=True, bidirectional=True)
        doc_dim = 2 * word_hidden
        if model != "mean":
            self.word_pool = AttentionPool(2 * word_hidden, attn_dim, attention, layers)
        if model == "han":
            self.sentence_rnn = nn.GRU(2 * word_hidden, sentence_hidden, batch_first=True,
                                       bidirectional=True)
            self.sentence_pool = AttentionPool(2 * sentence_hidden, attn_dim, attention, layers)
            doc_dim = 2 * sentence_hidden
        self.classifier = nn.Linear(doc_dim, classes)

    def forward(self, words, word_lengths, sentence_counts, flat_words, flat_lengths):
        if self.model == "han":
            b, s, w = words.shape
            run = word_lengths.reshape(-1).clamp(min=1)  # absent sentences run as one word
            word_pad = torch.arange(w).unsqueeze(0) >= run.unsqueeze(1)
            sent_pad = torch.arange(s).unsqueeze(0) >= sentence_counts.unsqueeze(1)
            hw = run_packed(self.word_rnn, self.embed(words.reshape(b * s, w)), run)
            sentences, ww = self.word_pool(hw, word_pad)
            hs = run_packed(self.sentence_rnn, sentences.reshape(b, s, -1), sentence_counts)
            doc, sw = self.sentence_pool(hs, sent_pad)
            ww = ww.reshape(b, s, w) * (~sent_pad).unsqueeze(2).to(hw.dtype)
            return self.classifier(doc.squeeze(1)), ww, sw.squeeze(1)
        b, l = flat_words.shape
        h = run_packed(self.word_rnn, self.embed(flat_words), flat_lengths)
        if self.model == "mean":
            pooled = h.sum(1) / flat_lengths.to(h.dtype).unsqueeze(1)
            return self.classifier(pooled), None, None
        pad = torch.arange(l).unsqueeze(0) >= flat_lengths.unsqueeze(1)
        doc, ww = self.word_pool(h, pad)
        return self.classifier(doc.squeeze(1)), ww.squeeze(1), None


def make_batch(b, vocab, sentence_lengths):
    """sentence_lengths: per document the lengths of its sentences. Ids from 1 (<unk>) up."""
    bsz = len(sentence_lengths)
    s = max(len(d) for d in sentence_lengths)
    w = max(max(d) for d in sentence_lengths)
    l = max(sum(d) for d in sentence_lengths)
    words = torch.zeros(bsz, s, w, dtype=torch.int64)
    lengths = torch.zeros(bsz, s, dtype=torch.int64)
    flat = torch.zeros(bsz, l, dtype=torch.int64)
    flat_lengths = torch.zeros(bsz, dtype=torch.int64)
    for i, d in enumerate(sentence_lengths):
        pos = 0
        for j, n in enumerate(d):
            ids = b.randint(1, vocab, n)
            words[i, j, :n] = ids
            lengths[i, j] = n
            flat[i, pos:pos + n] = ids
            pos += n
        flat_lengths[i] = pos
    counts = torch.tensor([len(d) for d in sentence_lengths], dtype=torch.int64)
    return words, lengths, counts, flat, flat_lengths


def set_parameters(b, model, dtype):
    """Matrices and vectors U(-0.5, 0.5); embeddings N(0, 0.5^2) with the padding row zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("embed"):
                v = 0.5 * torch.randn(p.shape, generator=b.gen, dtype=F64)
                v[0] = 0.0
            else:
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * 0.5
            p.copy_(v.to(dtype))


def documents_case(b, name, model, attention, dtype=F32, vocab=19, embed_dim=6, word_hidden=5,
                   sentence_hidden=4, attn_dim=7, layers=2, classes=6,
                   sentence_lengths=((3, 1, 4), (2,), (1, 5))):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    m = DocumentClassifier(model, attention, vocab, embed_dim, word_hidden, sentence_hidden,
                           attn_dim, layers, classes).to(dtype)
    set_parameters(b, m, dtype)
    words, lengths, counts, flat, flat_lengths = make_batch(b, vocab, sentence_lengths)
    labels = b.randint(0, classes, len(sentence_lengths))
    logits, ww, sw = m(words, lengths, counts, flat, flat_lengths)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors = [("words", words), ("word_lengths", lengths), ("sentence_counts", counts),
               ("flat_words", flat), ("flat_lengths", flat_lengths), ("labels", labels)]
    params = list(m.named_parameters())
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors.append(("logits", logits.detach()))
    if ww is not None:
        tensors.append(("word_weights", ww.detach()))
    if sw is not None:
        tensors.append(("sentence_weights", sw.detach()))
    tensors.append(("loss", loss.detach()))
    for n, p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad:" + n, g.detach()))
    key = op_key("documents", model=model, attention=attention, vocab=vocab, embed_dim=embed_dim,
                 word_hidden=word_hidden, sentence_hidden=sentence_hidden, attn_dim=attn_dim,
                 stacked_layers=layers, classes=classes,
                 dtype="f64" if dtype == F64 else "f32")
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    for model in ("han", "flat"):
        for attention in ("single", "stacked"):
            documents_case(b, "%s_%s" % (model, attention), model, attention)
    documents_case(b, "mean", "mean", "single")
    # Three stacked layers, one document of one sentence beside a longer one.
    documents_case(b, "han_stacked3", "han", "stacked", layers=3,
                   sentence_lengths=((4,), (2, 3, 1, 2)))
    # f64: the composition itself, held to f64 rounding.
    documents_case(b, "han_stacked_f64", "han", "stacked", dtype=F64)
    documents_case(b, "flat_stacked_f64", "flat", "stacked", dtype=F64)
    documents_case(b, "mean_f64", "mean", "single", dtype=F64)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261204)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
