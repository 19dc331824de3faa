# attend's pervasive-attention model (src/models/pervasive.cc) in PyTorch, under the same names.
"""PyTorch mirror of attend's Pervasive Attention (Elbayad, Besacier and Verbeek 2018;
src/models/pervasive.cc).

Written independently of the C++ layout: channels first ([B, C, T, S], as the paper's 2-D
CNN), the 1x1 layers as conv2d, and the masked convolution the way the paper states it: a full
k x k filter (the stored kernel / 2 + 1 rows at and above the centre, zero rows below) multiplied
by a fixed 0/1 mask and convolved with symmetric padding k / 2. attend stores only the upper rows
and pads and crops instead (CausalConv2d); the names and shapes of the parameters are attend's,
so weights copy across by name:

  src_embed.weight [Vs, E], tgt_embed.weight [Vt, E]            (row 0, padding, zero)
  src_positions.weight, tgt_positions.weight [max_positions, E]  (learned positions)
  layers.<i>.norm1.{weight,bias} [C_i]    C_i = 2E + i * growth
  layers.<i>.bottleneck.{weight,bias} [4g, C_i], [4g]
  layers.<i>.norm2.{weight,bias} [4g]
  layers.<i>.conv.weight [g, 4g, k // 2 + 1, k], layers.<i>.conv.bias [g]
  norm.{weight,bias} [C_L], project.{weight,bias} [E, C_L], output.{weight,bias} [Vt, E]

forward(src, src_lengths, tgt_in) -> logits [B, T, Vt] and the implicit alignment [B, T, S]
(per target position, the share of the pooled channels whose maximum over the source lies at
each source position). Dropout modules sit where attend's do (embeddings, each layer's new
features, before the output layer); the oracle runs them at p = 0.
"""
import torch
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class CausalConv(torch.nn.Module):
    def __init__(self, cin, cout, kernel):
        super().__init__()
        self.kernel = kernel
        self.weight = torch.nn.Parameter(torch.empty(cout, cin, kernel // 2 + 1, kernel))
        self.bias = torch.nn.Parameter(torch.empty(cout))
        mask = torch.zeros(kernel, kernel)
        mask[:kernel // 2 + 1] = 1.0  # rows t - k/2 .. t: never a later target position
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, z):
        """z [B, C, T, S] -> [B, out, T, S]."""
        out_c, in_c, rows, k = self.weight.shape
        below = torch.zeros(out_c, in_c, k - rows, k, dtype=self.weight.dtype)
        full = torch.cat([self.weight, below], dim=2) * self.mask.to(self.weight.dtype)
        return F.conv2d(z, full, self.bias, padding=k // 2)


def channel_norm(norm, x):
    """A LayerNorm over the channels of each grid position: x [B, C, T, S]."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def pointwise(linear, x):
    """A Linear layer as a 1x1 convolution over x [B, C, T, S]."""
    w = linear.weight
    return F.conv2d(x, w.view(w.shape[0], w.shape[1], 1, 1), linear.bias)


class DenseLayer(torch.nn.Module):
    def __init__(self, cin, growth, kernel, dropout):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(cin)
        self.bottleneck = torch.nn.Linear(cin, 4 * growth)
        self.norm2 = torch.nn.LayerNorm(4 * growth)
        self.conv = CausalConv(4 * growth, growth, kernel)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x, keep):
        """x [B, C, T, S], keep [B, 1, 1, S] (1 real, 0 padding) -> new features [B, g, T, S]."""
        h = pointwise(self.bottleneck, F.relu(channel_norm(self.norm1, x)))
        z = F.relu(channel_norm(self.norm2, h)) * keep
        return self.dropout(self.conv(z))


class Container(torch.nn.Module):
    """A named level ("layers") that gives its children dotted names."""


class Pervasive(torch.nn.Module):
    def __init__(self, src_vocab, tgt_vocab, embed_dim=256, dense_layers=8, growth=32, kernel=3,
                 max_positions=1024, dropout=0.0):
        super().__init__()
        e = embed_dim
        self.src_embed = torch.nn.Embedding(src_vocab, e, padding_idx=PAD)
        self.tgt_embed = torch.nn.Embedding(tgt_vocab, e, padding_idx=PAD)
        self.src_positions = Container()
        self.src_positions.weight = torch.nn.Parameter(torch.empty(max_positions, e))
        self.tgt_positions = Container()
        self.tgt_positions.weight = torch.nn.Parameter(torch.empty(max_positions, e))
        self.embed_dropout = torch.nn.Dropout(dropout)
        self.layers = torch.nn.ModuleList()
        channels = 2 * e
        for _ in range(dense_layers):
            self.layers.append(DenseLayer(channels, growth, kernel, dropout))
            channels += growth
        self.norm = torch.nn.LayerNorm(channels)
        self.project = torch.nn.Linear(channels, e)
        self.output_dropout = torch.nn.Dropout(dropout)
        self.output = torch.nn.Linear(e, tgt_vocab)

    def forward(self, src, src_lengths, tgt_in):
        b, s = src.shape
        t = tgt_in.shape[1]
        pad = torch.arange(s)[None, :] >= src_lengths[:, None]  # [B, S]
        xs = self.embed_dropout(self.src_embed(src) + self.src_positions.weight[:s])  # [B, S, E]
        ys = self.embed_dropout(self.tgt_embed(tgt_in) + self.tgt_positions.weight[:t])
        e = xs.shape[-1]
        # H0[t, s] = [emb(y_t); emb(x_s)], channels first: [B, 2E, T, S].
        grid = torch.cat([ys.permute(0, 2, 1)[:, :, :, None].expand(b, e, t, s),
                          xs.permute(0, 2, 1)[:, :, None, :].expand(b, e, t, s)], dim=1)
        keep = (~pad).to(grid.dtype)[:, None, None, :]
        feats = [grid]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1), keep))
        h = channel_norm(self.norm, torch.cat(feats, dim=1))  # [B, C, T, S]
        h = h.masked_fill(pad[:, None, None, :], float("-inf"))
        pooled = h.amax(dim=3).permute(0, 2, 1)  # [B, T, C]
        logits = self.output(self.output_dropout(self.project(pooled)))
        # The implicit alignment: which source position won each channel's max-pool.
        c = h.shape[1]
        winner = h.argmax(dim=3)  # [B, C, T]
        alignment = F.one_hot(winner, s).to(h.dtype).sum(dim=1) / c  # [B, T, S]
        return logits, alignment.detach()
