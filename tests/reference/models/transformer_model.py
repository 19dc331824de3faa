# attend's Transformer (src/models/transformer.cc) in PyTorch, under the same names, with a KV cache.
"""PyTorch mirror of attend's Transformer encoder-decoder (src/models/transformer.cc).

Built from torch's own nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (batch_first,
ReLU; norm_first for pre-norm), so every parameter has the name attend's StateDict gives it
(embed.weight or src_embed.weight / tgt_embed.weight / output.*, encoder.layers.0.self_attn.
in_proj_weight, decoder.layers.1.multihead_attn.out_proj.bias, decoder.norm.weight, ...) and
weights copy across by name. Embeddings are scaled by sqrt(d_model) and get the sinusoidal
table added, then embedding dropout; pre-norm stacks end with one LayerNorm each; with shared
embeddings the logits are y @ embed.weight^T.

With transparent=True (Bapna et al. 2018) the parameter transparent.logits [M, L+1] gives
decoder layer i its own memory: sum_k softmax(transparent.logits[i])_k z_k over the embedded
source z_0 and the L encoder layers' outputs, each mix passed through encoder.norm (pre-norm).

Training runs forward(src, lengths, tgt_in) -> logits [B, T, V] (torch's layers). Decoding runs
start / step / state.select: the encoder once, the cross-attention keys and values projected
once per layer, and the self-attention keys and values of each decoded position kept in a cache
that doubles when full (as attend's TransformerState), so a step costs one position's work, not
the whole prefix's. Step uses the same layer weights as forward; `check_incremental` compares
the two.

tests/reference/transformer_reference.py checks this module against the C++ model (logits,
attention, loss, every gradient); bench/torch_reference/transformer.py trains and decodes with it.
"""
import math

import torch
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3
F32, F64 = torch.float32, torch.float64
INITIAL_CACHE_CAPACITY = 16  # transformer.cc's kInitialCacheCapacity


def sinusoidal_table(max_len, dim):
    """pe[pos, 2i] = sin(pos / 10000^(2i/d)), pe[pos, 2i+1] = cos(...), in f64 then f32 (the
    loop of nn::SinusoidalPositionalEncoding, so the table is the same to the last bit)."""
    pe = torch.zeros(max_len, dim, dtype=F64)
    for pos in range(max_len):
        for i in range(0, dim, 2):
            angle = pos / math.pow(10000.0, i / dim)
            pe[pos, i] = math.sin(angle)
            if i + 1 < dim:
                pe[pos, i + 1] = math.cos(angle)
    return pe.to(F32)


class Container(torch.nn.Module):
    """A named level ("encoder", "decoder") that gives its children dotted names."""


class DecoderState:
    """What decoding keeps per hypothesis (attend's TransformerState): the padding mask
    [N, S], per layer the cross keys/values [N, H, S, hd] and the self-attention caches
    [N, H, capacity, hd] whose first `length` positions are filled."""

    def __init__(self):
        self.pad = None
        self.cross_k, self.cross_v, self.self_k, self.self_v = [], [], [], []
        self.length = 0
        self.capacity = 0

    def rows(self):
        return self.pad.size(0)

    def select(self, rows):
        """Keeps hypotheses `rows` (i64 [N']) in that order (beam search's reorder)."""
        for name in ("cross_k", "cross_v", "self_k", "self_v"):
            setattr(self, name, [t.index_select(0, rows) for t in getattr(self, name)])
        self.pad = self.pad.index_select(0, rows)


class Transformer(torch.nn.Module):
    """The model of src/models/transformer.cc written with torch's layers and the same names."""

    def __init__(self, pre_norm=True, share=True, src_vocab=0, tgt_vocab=0, d=256, heads=4,
                 ff=1024, layers=3, max_pos=1024, dropout=0.0, transparent=False,
                 decoder_depth=0):
        super().__init__()
        if share and src_vocab != tgt_vocab:
            raise ValueError("Transformer: shared embeddings need equal vocabularies, got %d "
                             "and %d" % (src_vocab, tgt_vocab))
        if d % heads:
            raise ValueError("Transformer: d_model %d is not a multiple of heads %d" % (d, heads))
        self.pre_norm, self.share, self.d, self.heads = pre_norm, share, d, heads
        self.max_pos = max_pos

        def embedding(vocab):
            # As attend: N(0, 1/d) so that the sqrt(d)-scaled input has unit scale, pad row 0.
            e = torch.nn.Embedding(vocab, d, padding_idx=PAD)
            with torch.no_grad():
                e.weight.normal_(0.0, 1.0 / math.sqrt(d))
                e.weight[PAD].zero_()
            return e

        if share:
            self.embed = embedding(src_vocab)
            self.src_embed = self.tgt_embed = None
        else:
            self.src_embed = embedding(src_vocab)
            self.tgt_embed = embedding(tgt_vocab)
            self.output = torch.nn.Linear(d, tgt_vocab)
        self.embed_dropout = torch.nn.Dropout(dropout)
        self.encoder, self.decoder = Container(), Container()
        self.encoder.layers = torch.nn.ModuleList([
            torch.nn.TransformerEncoderLayer(d, heads, ff, dropout=dropout, batch_first=True,
                                             norm_first=pre_norm) for _ in range(layers)])
        self.decoder.layers = torch.nn.ModuleList([
            torch.nn.TransformerDecoderLayer(d, heads, ff, dropout=dropout, batch_first=True,
                                             norm_first=pre_norm)
            for _ in range(decoder_depth or layers)])
        if pre_norm:
            self.encoder.norm = torch.nn.LayerNorm(d)
            self.decoder.norm = torch.nn.LayerNorm(d)
        self.register_buffer("pe", sinusoidal_table(max_pos, d), persistent=False)
        # Zeros, as attend: every decoder layer starts from the uniform mix.
        self.transparent = None
        if transparent:
            self.transparent = Container()
            self.transparent.logits = torch.nn.Parameter(
                torch.zeros(decoder_depth or layers, layers + 1))
        self.captured = None
        self.captured_head = None

    def capture_cross_attention(self):
        """From now on forward() keeps the last decoder layer's cross-attention weights averaged
        over heads [B, T, S] in self.captured (torch's decoder layer asks for none)."""
        last = self.decoder.layers[-1].multihead_attn
        inner = last.forward

        def forward_with_weights(*args, **kwargs):
            kwargs["need_weights"] = True
            kwargs["average_attn_weights"] = True
            out, w = inner(*args, **kwargs)
            # Per head [B, H, T, S] when capture_head wraps the same layer first.
            self.captured = w.mean(1) if w.dim() == 4 else w
            return out, w

        last.forward = forward_with_weights

    def capture_head(self, layer, head):
        """From now on forward() keeps head `head` of decoder layer `layer`'s cross-attention
        [B, T, S] in self.captured_head, with its graph (what guided alignment trains on)."""
        mha = self.decoder.layers[layer].multihead_attn
        inner = mha.forward

        def forward_with_heads(*args, **kwargs):
            kwargs["need_weights"] = True
            kwargs["average_attn_weights"] = False
            out, w = inner(*args, **kwargs)  # w [B, H, T, S]
            self.captured_head = w[:, head]
            return out, w

        mha.forward = forward_with_heads

    def _src_table(self):
        return self.embed if self.share else self.src_embed

    def _tgt_table(self):
        return self.embed if self.share else self.tgt_embed

    def embed_tokens(self, table, ids, first=0):
        """ids [B, T] at positions [first, first + T) -> dropout(E[ids] sqrt(d) + PE) [B, T, E]."""
        x = table(ids) * math.sqrt(self.d) + self.pe[first:first + ids.shape[1]]
        return self.embed_dropout(x)

    def _check_len(self, n, what):
        if n > self.max_pos:
            raise ValueError("Transformer: %s length %d exceeds max_positions %d" %
                             (what, n, self.max_pos))

    def encode(self, src, src_lengths):
        """src [B, S], lengths [B] -> the memory of each decoder layer (a list of [B, S, E]: the
        same tensor for all without transparent attention) and the padding mask [B, S]."""
        s = src.shape[1]
        self._check_len(s, "source")
        pad = torch.arange(s)[None, :] >= src_lengths[:, None]  # [B, S]
        x = self.embed_tokens(self._src_table(), src)
        outputs = [x]
        for layer in self.encoder.layers:
            x = layer(x, src_key_padding_mask=pad)
            outputs.append(x)
        n = len(self.decoder.layers)
        if self.transparent is None:
            if self.pre_norm:
                x = self.encoder.norm(x)
            return [x] * n, pad
        w = self.transparent.logits.softmax(-1)  # [M, L+1]
        z = torch.stack(outputs)  # [L+1, B, S, E]
        memories = []
        for i in range(n):
            m = (w[i][:, None, None, None] * z).sum(0)
            memories.append(self.encoder.norm(m) if self.pre_norm else m)
        return memories, pad

    def logits(self, y):
        """Decoder output [.., E] -> logits [.., V]."""
        if self.pre_norm:
            y = self.decoder.norm(y)
        if self.share:
            return y @ self.embed.weight.t()
        return self.output(y)

    def forward(self, src, src_lengths, tgt_in):
        """Teacher-forced logits [B, T, V]."""
        t = tgt_in.shape[1]
        self._check_len(t, "target")
        memories, pad = self.encode(src, src_lengths)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        y = self.embed_tokens(self._tgt_table(), tgt_in)
        for layer, memory in zip(self.decoder.layers, memories):
            y = layer(y, memory, tgt_mask=causal, memory_key_padding_mask=pad)
        return self.logits(y)

    # ---- incremental decoding (inference only) ---------------------------------------------
    def _split(self, x):
        """[N, T, E] -> [N, H, T, hd]."""
        n, t, e = x.shape
        return x.view(n, t, self.heads, e // self.heads).transpose(1, 2)

    def _attend(self, mha, q, k, v, pad):
        """q [N, H, 1, hd] over k/v [N, H, Tk, hd] (pad [N, Tk] or None) -> out_proj [N, 1, E].
        Dropout on the weights is off in eval, as in torch's MultiheadAttention."""
        scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(2, 3)  # [N, H, 1, Tk]
        if pad is not None:
            scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        ctx = scores.softmax(-1) @ v  # [N, H, 1, hd]
        n = ctx.shape[0]
        return mha.out_proj(ctx.transpose(1, 2).reshape(n, 1, self.d))

    def start(self, src, src_lengths):
        """Encodes src [N, S] once: the decoding state of N hypotheses."""
        st = DecoderState()
        memories, st.pad = self.encode(src, src_lengths)
        n, d = src.shape[0], self.d
        st.capacity = min(INITIAL_CACHE_CAPACITY, self.max_pos)
        for layer, memory in zip(self.decoder.layers, memories):
            mha = layer.multihead_attn
            kv = F.linear(memory, mha.in_proj_weight[d:], mha.in_proj_bias[d:])  # [N, S, 2E]
            st.cross_k.append(self._split(kv[..., :d]).contiguous())
            st.cross_v.append(self._split(kv[..., d:]).contiguous())
            shape = (n, self.heads, st.capacity, d // self.heads)
            st.self_k.append(torch.empty(shape, dtype=memory.dtype))
            st.self_v.append(torch.empty(shape, dtype=memory.dtype))
        return st

    def _grow(self, st):
        cap = min(2 * st.capacity, self.max_pos)
        for name in ("self_k", "self_v"):
            grown = []
            for c in getattr(st, name):
                g = c.new_empty(c.shape[0], c.shape[1], cap, c.shape[3])
                g[:, :, :st.length] = c[:, :, :st.length]
                grown.append(g)
            setattr(st, name, grown)
        st.capacity = cap

    def _layer_step(self, layer, i, st, y, pos):
        """One decoder layer at position pos for y [N, 1, E], writing its keys/values."""
        d = self.d

        def self_block(x):
            mha = layer.self_attn
            q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).split(d, -1)
            st.self_k[i][:, :, pos:pos + 1] = self._split(k)
            st.self_v[i][:, :, pos:pos + 1] = self._split(v)
            # Every cached position precedes this one: no causal mask is needed.
            return self._attend(mha, self._split(q), st.self_k[i][:, :, :pos + 1],
                                st.self_v[i][:, :, :pos + 1], None)

        def cross_block(x):
            mha = layer.multihead_attn
            q = F.linear(x, mha.in_proj_weight[:d], mha.in_proj_bias[:d])
            return self._attend(mha, self._split(q), st.cross_k[i], st.cross_v[i], st.pad)

        def ff_block(x):
            return layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))

        if self.pre_norm:
            y = y + layer.dropout1(self_block(layer.norm1(y)))
            y = y + layer.dropout2(cross_block(layer.norm2(y)))
            return y + layer.dropout3(ff_block(layer.norm3(y)))
        y = layer.norm1(y + layer.dropout1(self_block(y)))
        y = layer.norm2(y + layer.dropout2(cross_block(y)))
        return layer.norm3(y + layer.dropout3(ff_block(y)))

    def step(self, st, tokens):
        """The last tokens i64 [N] -> log-probabilities [N, V]; appends one position."""
        pos = st.length
        if pos >= self.max_pos:
            raise ValueError("Transformer: decoding position %d reaches max_positions %d" %
                             (pos, self.max_pos))
        if pos == st.capacity:
            self._grow(st)
        y = self.embed_tokens(self._tgt_table(), tokens[:, None], pos)  # [N, 1, E]
        for i, layer in enumerate(self.decoder.layers):
            y = self._layer_step(layer, i, st, y, pos)
        st.length = pos + 1
        return F.log_softmax(self.logits(y[:, 0]), -1)


@torch.inference_mode()
def check_incremental(model, src, src_lengths, tgt_in):
    """Largest |difference| between the cached step-by-step log-probabilities and the
    teacher-forced forward's (eval mode), over every target position [B, T]."""
    was_training = model.training
    model.eval()
    full = F.log_softmax(model.forward(src, src_lengths, tgt_in), -1)  # [B, T, V]
    st = model.start(src, src_lengths)
    worst = 0.0
    for t in range(tgt_in.shape[1]):
        worst = max(worst, (model.step(st, tgt_in[:, t]) - full[:, t]).abs().max().item())
    model.train(was_training)
    return worst
