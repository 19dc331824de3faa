#!/usr/bin/python3
"""PyTorch oracle for attend's attention structures (include/attend/attention_models.h).

Each case mirrors one C++ structure as a torch.nn.Module whose named_parameters() come out in
the same order and under the same dotted names as attend's NamedParameters() (own parameters
first, then children in registration order), and records, in the format of ops_reference.py:
  x<i>   the structure's inputs, then its parameters in that order
  y<i>   its outputs, dy<i> their random cotangents
  dx<i>  the gradient of sum_i sum(y<i> * dy<i>) w.r.t. every floating x<i>
The op key carries the hyper-parameters and `params=` the parameter names, so the C++ replay
can check the order before it loads any value. Run with Debian's /usr/bin/python3 (torch).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402
from ops_reference import generator_main, Builder, op_key, write_file  # noqa: E402

F32, F64 = torch.float32, torch.float64

# The smallest gap allowed between the k-th and (k+1)-th largest SAB score of any row: the f32
# replay computes its scores with differently rounded kernels (differences ~1e-6), so a smaller
# gap could let attend pick another memory than torch and the comparison would be meaningless.
MIN_TOPK_GAP = 1e-3


# ---- the structures, in torch ----


class ContextAttention(nn.Module):
    """u_t = tanh(W h_t + b), alpha = softmax_t(u_t . u_w) over unmasked t, s = sum alpha_t h_t."""

    def __init__(self, dim, attn_dim):
        super().__init__()
        self.context_vector = nn.Parameter(torch.zeros(attn_dim))
        self.proj = nn.Linear(dim, attn_dim)

    def forward(self, h, mask=None):  # h [B, T, D], mask bool [B, T] (True = padding)
        scores = torch.tanh(self.proj(h)) @ self.context_vector  # [B, T]
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores, -1).unsqueeze(1)  # [B, 1, T]
        return weights @ h, weights


def run_packed(rnn, x, lengths):
    """A batch_first bidirectional GRU over padded sequences, zero at padding, as attend's."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class HierarchicalAttentionNetwork(nn.Module):
    def __init__(self, vocab, embed_dim, word_hidden, sentence_hidden, attn_dim):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim, padding_idx=0)
        self.word_rnn = nn.GRU(embed_dim, word_hidden, batch_first=True, bidirectional=True)
        self.word_attention = ContextAttention(2 * word_hidden, attn_dim)
        self.sentence_rnn = nn.GRU(2 * word_hidden, sentence_hidden, batch_first=True,
                                   bidirectional=True)
        self.sentence_attention = ContextAttention(2 * sentence_hidden, attn_dim)

    def forward(self, words, word_lengths, sentence_counts):
        b, s, w = words.shape
        # attend runs absent sentences (length 0) with length 1 and masks them at sentence level.
        run = word_lengths.reshape(-1).clamp(min=1)
        steps = torch.arange(w).unsqueeze(0)
        word_pad = steps >= run.unsqueeze(1)  # [B*S, W]
        sent_pad = torch.arange(s).unsqueeze(0) >= sentence_counts.unsqueeze(1)  # [B, S]
        x = self.embed(words.reshape(b * s, w))
        hw = run_packed(self.word_rnn, x, run)
        sentences, word_weights = self.word_attention(hw, word_pad)
        hs = run_packed(self.sentence_rnn, sentences.reshape(b, s, -1), sentence_counts)
        document, sentence_weights = self.sentence_attention(hs, sent_pad)
        # Absent sentences' placeholder word gets no reported weight: their rows are zeroed.
        word_weights = word_weights.reshape(b, s, w) * (~sent_pad).unsqueeze(2).to(hw.dtype)
        return document.squeeze(1), word_weights, sentence_weights.squeeze(1)


class ConcatScore(nn.Module):
    """Luong concat: v^T tanh(W [q; k_j]), W = [W_q W_k] [A, Dq + Dk], no bias."""

    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(attn_dim, query_dim + key_dim))
        self.v = nn.Parameter(torch.zeros(attn_dim))

    def forward(self, q, k):  # q [B, Tq, Dq], k [B, Tk, Dk] -> [B, Tq, Tk]
        dq = q.shape[-1]
        wq = q @ self.weight[:, :dq].T
        wk = k @ self.weight[:, dq:].T
        return torch.tanh(wq.unsqueeze(2) + wk.unsqueeze(1)) @ self.v


def topk_weights(scores, k):
    """Softmax over the k largest scores of each row; the others get weight 0 and no gradient."""
    m = scores.shape[-1]
    if m <= k:
        return torch.softmax(scores, -1)
    idx = scores.topk(k, -1).indices
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)
    return torch.softmax(scores.masked_fill(~keep, float("-inf")), -1)


def topk_gap(scores, k):
    """The smallest gap between the k-th and (k+1)-th largest score over all rows (inf if none)."""
    if scores.shape[-1] <= k:
        return math.inf
    top = scores.detach().to(F64).topk(k + 1, -1).values
    return (top[..., k - 1] - top[..., k]).min().item()


class SparseAttentiveBacktracking(nn.Module):
    def __init__(self, input_size, hidden_size, ktop, katt, ktrunc):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.score = ConcatScore(hidden_size, hidden_size, hidden_size)
        self.ktop, self.katt, self.ktrunc = ktop, katt, ktrunc
        self.min_gap = math.inf

    def forward(self, x):  # x [B, T, in]
        b, t_len, _ = x.shape
        hsz = self.cell.hidden_size
        h = torch.zeros(b, hsz, dtype=x.dtype)
        c = torch.zeros(b, hsz, dtype=x.dtype)
        memories, outputs, weights, steps = [], [], [], []
        for t in range(t_len):
            if t > 0 and t % self.ktrunc == 0:
                h, c = h.detach(), c.detach()  # truncated BPTT; memories keep their history
            h, c = self.cell(x[:, t], (h, c))
            if t % self.katt == 0 and memories:
                mem = torch.stack(memories, 1)  # [B, M, H]
                scores = self.score(h.unsqueeze(1), mem)  # [B, 1, M]
                self.min_gap = min(self.min_gap, topk_gap(scores, self.ktop))
                w = topk_weights(scores, self.ktop)
                h = h + (w @ mem).squeeze(1)
                weights.append(w)
                steps.append(t)
            if t % self.katt == 0:
                memories.append(h)
            outputs.append(h)
        return [torch.stack(outputs, 1)] + weights, steps


class StackedLatentAttention(nn.Module):
    def __init__(self, query_dim, key_dim, attn_dim, num_layers):
        super().__init__()
        for l in range(num_layers):
            self.register_parameter("v_%d" % l, nn.Parameter(torch.zeros(attn_dim)))
        for l in range(num_layers):
            self.add_module("key_proj_%d" % l, nn.Linear(key_dim, attn_dim))
            self.add_module("query_proj_%d" % l,
                            nn.Linear(query_dim if l == 0 else key_dim, attn_dim, bias=False))
        self.num_layers = num_layers

    def forward(self, query, keys, mask=None):  # mask bool broadcastable to [B, Tq, Tk]
        c, latent, weights = query, None, []
        for l in range(self.num_layers):
            z = (getattr(self, "query_proj_%d" % l)(c).unsqueeze(2) +
                 getattr(self, "key_proj_%d" % l)(keys).unsqueeze(1))  # [B, Tq, Tk, A]
            if latent is not None:
                z = z + latent
            latent = z
            e = torch.tanh(z) @ getattr(self, "v_%d" % l)
            if mask is not None:
                e = e.masked_fill(mask, float("-inf"))
            w = torch.softmax(e, -1)
            c = w @ keys
            weights.append(w)
        return [c] + weights


class TransparentAttention(nn.Module):
    def __init__(self, num_encoder_layers, num_decoder_layers):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_decoder_layers, num_encoder_layers))

    def forward(self, *layers):  # E tensors [B, T, D]
        mix = torch.softmax(self.logits, -1)  # [Ld, E]
        stacked = torch.stack(layers, 0)  # [E, B, T, D]
        mixed = torch.einsum("le,ebtd->lbtd", mix, stacked)
        return list(mixed.unbind(0)) + [mix]


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):  # [B, C, ...]
        z = x.mean(dim=tuple(range(2, x.dim())))
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))
        return [x * s.reshape(s.shape + (1,) * (x.dim() - 2)), s]


class AdditiveScore(nn.Module):
    """Bahdanau: v^T tanh(W q + U k_j + b)."""

    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.v = nn.Parameter(torch.zeros(attn_dim))
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim)

    def forward(self, q, k):
        return torch.tanh(self.query_proj(q).unsqueeze(2) + self.key_proj(k).unsqueeze(1)) @ self.v


class ImageAttention(nn.Module):
    def __init__(self, feature_dim, hidden_dim, attn_dim, gate):
        super().__init__()
        self.score = AdditiveScore(hidden_dim, feature_dim, attn_dim)
        self.gate = nn.Linear(hidden_dim, 1) if gate else None

    def step(self, annotations, h):  # annotations [B, H*W, C], h [B, hidden]
        w = torch.softmax(self.score(h.unsqueeze(1), annotations), -1)  # [B, 1, H*W]
        context = w @ annotations
        if self.gate is not None:
            context = context * torch.sigmoid(self.gate(h)).unsqueeze(1)
        return context, w

    def forward(self, features, *hs):  # features [B, C, H, W]; one decoder state per step
        annotations = features.flatten(2).transpose(1, 2)
        outs = []
        for h in hs:
            outs += list(self.step(annotations, h))
        return outs


# ---- recording ----


def module_case(b, name, op, module, inputs, forward, dtype, scale=0.5, fill=None):
    """Sets the module's parameters from b (U(-scale, scale), then `fill`), runs forward on the
    inputs and records inputs, parameters, outputs, cotangents and all gradients."""
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    module.to(dtype)
    named = list(module.named_parameters())
    with torch.no_grad():
        for _, p in named:
            p.copy_((torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * scale)
        if fill is not None:
            fill(module)
    leaves = []
    for t in inputs:
        leaf = t.detach().clone()
        if leaf.is_floating_point():
            leaf.requires_grad_(True)
        leaves.append(leaf)
    outs = forward(module, *leaves)
    op = op + "|params=" + ",".join(n for n, _ in named)
    tensors = [("x%d" % i, l.detach()) for i, l in enumerate(leaves)]
    tensors += [("x%d" % (len(leaves) + i), p.detach().clone()) for i, (_, p) in enumerate(named)]
    tensors += [("y%d" % i, o.detach()) for i, o in enumerate(outs)]
    cots = []
    for i, o in enumerate(outs):
        cot = b.randn(*o.shape, dtype=o.dtype)
        tensors.append(("dy%d" % i, cot))
        cots.append(cot)
    torch.autograd.backward(outs, cots)
    everything = leaves + [p for _, p in named]
    for i, l in enumerate(everything):
        if l.is_floating_point():
            g = l.grad if l.grad is not None else torch.zeros_like(l)
            tensors.append(("dx%d" % i, g.detach()))
    b.cases.append((name, op, tensors))


def context_attention_cases(b, dt, tag):
    # Padding at the end of rows 0 and 2, and a masked position inside row 1 (masks are general).
    h = b.randn(3, 6, 5, dtype=dt)
    mask = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]],
                        dtype=torch.bool)
    module_case(b, "context_attention_mask_" + tag, op_key("context_attention", attn_dim=4),
                ContextAttention(5, 4), [h, mask], lambda m, h, mask: list(m(h, mask)), dt)
    module_case(b, "context_attention_nomask_" + tag, op_key("context_attention", attn_dim=3),
                ContextAttention(5, 3), [b.randn(2, 7, 5, dtype=dt)], lambda m, h: list(m(h)), dt)


def han_cases(b, dt, tag):
    vocab, w = 13, 5
    # Document 0 has all 4 sentences, 1 has 2 (two absent), 2 has 1 (three absent, one of them
    # with a non-zero length that the sentence level must still ignore).
    word_lengths = torch.tensor([[5, 2, 4, 1], [3, 5, 0, 0], [2, 0, 3, 0]], dtype=torch.int64)
    counts = torch.tensor([4, 2, 1], dtype=torch.int64)
    words = b.randint(1, vocab, 3, 4, w)
    # Padded positions hold arbitrary ids (0, the padding index, among them): attend must not
    # read them, and the padding row must not be trained.
    pad_ids = b.randint(0, vocab, 3, 4, w)
    pad = torch.arange(w).reshape(1, 1, w) >= word_lengths.unsqueeze(2)
    words = torch.where(pad, pad_ids, words)

    def zero_padding_row(m):
        m.embed.weight[0].zero_()

    module_case(b, "han_" + tag,
                op_key("han", vocab=vocab, embed_dim=4, word_hidden=3, sentence_hidden=4,
                       attn_dim=5),
                HierarchicalAttentionNetwork(vocab, 4, 3, 4, 5), [words, word_lengths, counts],
                lambda m, *xs: list(m(*xs)), dt, scale=0.6, fill=zero_padding_row)


def sab_cases(b, dt, tag):
    configs = [
        # name, (B, T, in, H), ktop, katt, ktrunc
        ("k2_att2_trunc3", (2, 9, 3, 4), 2, 2, 3),
        ("k1_att3_trunc1", (2, 10, 3, 4), 1, 3, 1),
        ("k3_att1_trunc4", (3, 7, 2, 5), 3, 1, 4),  # ktop above the memory count early on
    ]
    for cname, (bs, t_len, inp, hid), ktop, katt, ktrunc in configs:
        x = b.randn(bs, t_len, inp, dtype=dt)
        module = SparseAttentiveBacktracking(inp, hid, ktop, katt, ktrunc)
        steps_box = []

        def forward(m, x, steps_box=steps_box):
            outs, steps = m(x)
            steps_box.extend(steps)
            return outs

        # The steps are only known after the forward, so the op key is completed afterwards.
        module_case(b, "sab_%s_%s" % (cname, tag),
                    op_key("sab", hidden=hid, ktop=ktop, katt=katt, ktrunc=ktrunc), module, [x],
                    forward, dt, scale=0.8)
        if module.min_gap < MIN_TOPK_GAP:
            raise SystemExit("sab_%s_%s: top-k gap %.3g below %.3g; change the seed or sizes"
                             % (cname, tag, module.min_gap, MIN_TOPK_GAP))
        name, op, tensors = b.cases[-1]
        b.cases[-1] = (name, op + "|steps=" + ",".join(str(s) for s in steps_box), tensors)


def stacked_latent_cases(b, dt, tag):
    q, k = b.randn(2, 3, 5, dtype=dt), b.randn(2, 4, 6, dtype=dt)
    module_case(b, "stacked_latent_3_" + tag,
                op_key("stacked_latent", attn_dim=4, layers=3), StackedLatentAttention(5, 6, 4, 3),
                [q, k], lambda m, q, k: m(q, k), dt, scale=0.7)
    # A key-padding mask [B, 1, Tk], broadcast over the queries.
    q2, k2 = b.randn(3, 2, 4, dtype=dt), b.randn(3, 5, 3, dtype=dt)
    mask = torch.tensor([[[0, 0, 0, 1, 1]], [[0, 0, 0, 0, 0]], [[1, 0, 0, 0, 1]]], dtype=torch.bool)
    module_case(b, "stacked_latent_2_mask_" + tag,
                op_key("stacked_latent", attn_dim=5, layers=2), StackedLatentAttention(4, 3, 5, 2),
                [q2, k2, mask], lambda m, q, k, mask: m(q, k, mask), dt, scale=0.7)


def transparent_cases(b, dt, tag):
    layers = [b.randn(2, 3, 4, dtype=dt) for _ in range(3)]
    module_case(b, "transparent_e3_d2_" + tag, op_key("transparent", encoders=3, decoders=2),
                TransparentAttention(3, 2), layers, lambda m, *xs: m(*xs), dt, scale=1.5)


def se_cases(b, dt, tag):
    module_case(b, "squeeze_excitation_2d_" + tag, op_key("squeeze_excitation", reduction=2),
                SqueezeExcitation(6, 2), [b.randn(2, 6, 3, 4, dtype=dt, offset=0.3)],
                lambda m, x: m(x), dt, scale=0.8)
    module_case(b, "squeeze_excitation_1d_" + tag, op_key("squeeze_excitation", reduction=3),
                SqueezeExcitation(7, 3), [b.randn(3, 7, 5, dtype=dt, offset=-0.2)],
                lambda m, x: m(x), dt, scale=0.8)


def image_attention_cases(b, dt, tag):
    for gate in (True, False):
        feats = b.randn(2, 5, 3, 4, dtype=dt)
        h1, h2 = b.randn(2, 6, dtype=dt), b.randn(2, 6, dtype=dt)
        module_case(b, "image_attention_%s_%s" % ("gate" if gate else "nogate", tag),
                    op_key("image_attention", attn_dim=4, gate=gate),
                    ImageAttention(5, 6, 4, gate), [feats, h1, h2],
                    lambda m, f, a, c: m(f, a, c), dt, scale=0.7)


def build_cases(seed):
    b = Builder(seed)
    for dt, tag in ((F32, "f32"), (F64, "f64")):
        context_attention_cases(b, dt, tag)
        han_cases(b, dt, tag)
        sab_cases(b, dt, tag)
        stacked_latent_cases(b, dt, tag)
        transparent_cases(b, dt, tag)
        se_cases(b, dt, tag)
        image_attention_cases(b, dt, tag)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 11)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
