# The RNN encoder-decoders of src/models/rnn_seq2seq.cc written in PyTorch, under the same names.
"""PyTorch mirror of attend's RNN encoder-decoders (src/models/rnn_seq2seq.cc).

Arch "rnn" (one fixed context vector) and "rnn-attention" (score additive, dot, general, concat,
location or qkv; window global, local-m or local-p; teacher forcing at a ratio, with attend's own
coins), wired as Luong et al. 2015 (input feeding), Bahdanau et al. 2015 or the PyTorch tutorial's
AttnDecoderRNN; optionally a self-attention layer (dot or qkv) over the encoder's states. With
feature_dim > 0 the source is speech features [B, S, F] and the encoder is Listen, Attend and
Spell's pyramidal listener; the score may then be location-aware (Chorowski et al. 2015). The
decoder's parameters are nn.GRU/LSTM's; step by step they run through torch.gru_cell / lstm_cell
(what nn.GRUCell uses). Cell "advanced-lstm" (Tao and Liu 2018: each step reads an attention-
weighted mix of the K = history previous states) puts AdvancedLstm, over the step of
tests/reference/advanced_lstm_reference.py's AdvancedLstmMirror, in every recurrent place (the
encoder, the listener's levels, the decoder, which carries its past states from step to step).
Every parameter has the name attend's
StateDict gives it (src_embed.weight, encoder.weight_ih_l0_reverse, score.key_proj.bias,
local_p.v, combine.weight, ...), so weights copy across by name.
tests/reference/seq2seq_reference.py checks this module against the C++ model end to end
(logits, attention, loss, every gradient); bench/torch_reference/rnn_attention.py trains and
decodes with it.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# The Advanced LSTM's step is the one its own oracle checks (tests/reference/, this directory's
# parent); appended, so that it shadows nothing of the importer's own directories (the generators
# import this file from tests/reference/, the benchmarks from bench/torch_reference/).
_REFERENCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REFERENCE_DIR not in sys.path:
    sys.path.append(_REFERENCE_DIR)
from advanced_lstm_reference import AdvancedLstmMirror  # noqa: E402

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class RnnConfig:
    """The RNN fields of attend's models::ModelConfig, with its defaults."""

    def __init__(self, **kw):
        self.arch = "rnn-attention"  # rnn | rnn-attention
        self.src_vocab = 0
        self.tgt_vocab = 0
        self.dropout = 0.1
        self.cell = "gru"            # gru | lstm | advanced-lstm
        self.embed_dim = 256
        self.hidden_dim = 256        # decoder size; the encoder has hidden_dim / 2 per direction
        self.encoder_layers = 1
        self.decoder_layers = 1
        self.score = "additive"      # additive | dot | general | concat | location | qkv
        self.attention_dim = 256     # also the advanced-lstm cell's score width
        self.history = 3             # advanced-lstm: previous steps each step weighs
        self.wiring = "luong"        # luong | bahdanau | tutorial
        self.encoder_self_attention = "none"  # none | dot | qkv
        self.window = "global"       # global | local-m | local-p
        self.window_size = 5
        self.max_source_len = 256
        self.input_feeding = True
        self.teacher_forcing = 1.0
        self.feature_dim = 0         # > 0: speech features as the source
        self.frame_stacking = 1
        self.pyramid_levels = 2
        self.location_filters = 10
        self.location_width = 31
        self.sharpening = 1.0
        for k, v in kw.items():
            if not hasattr(self, k):
                raise ValueError("RnnConfig: unknown field " + k)
            setattr(self, k, v)
        if self.hidden_dim % 2:
            raise ValueError("RnnConfig: hidden_dim %d must be even" % self.hidden_dim)


MASK64 = (1 << 64) - 1


def attend_bits(seed, counter):
    """attend::Generator::Bits (src/core/tensor.cc): splitmix64 of a mix of seed and counter."""
    z = (seed * 0x9E3779B97F4A7C15 + counter * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def attend_uniform_d(seed, counter):
    """attend::Generator::UniformD: the top 53 bits as a double in [0, 1) (exact in Python)."""
    return (attend_bits(seed, counter) >> 11) * (1.0 / 9007199254740992.0)


class AttendCoins:
    """The teacher-forcing coins of attend's RNN model (CoinFlips over the buffer tf_rng_state
    = [seed, counter]): sentence i of a step feeds the reference when
    UniformD(seed, counter) < ratio, the counter advancing once per sentence and step."""

    def __init__(self, seed, counter=0):
        self.seed, self.counter = seed, counter
        self.drawn = []  # every coin flipped, in order (the test compares them with attend's)

    def flip(self, b, ratio):
        coins = []
        for _ in range(b):
            coins.append(attend_uniform_d(self.seed, self.counter) < ratio)
            self.counter += 1
        self.drawn += coins
        return torch.tensor(coins, dtype=torch.bool).view(b, 1)


def _uniform_parameter(shape, bound):
    return torch.nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class AdvancedLstm(AdvancedLstmMirror):
    """attend's nn::AdvancedLSTM (batch_first, with biases) as the model uses it: the mirror's
    per-direction step, attend's initial distributions (the LSTM's parameters U(-1/sqrt(H),
    1/sqrt(H)); W_a, b_a U(-1/sqrt(H), ..); U_a U(-1/sqrt(in), ..); v U(-1/sqrt(A), ..)) and
    dropout between layers, as nn.LSTM applies it.

    The state between calls is a tuple (h, c, past_h, past_c, past_count) as attend's
    AdvancedLSTM::State: h, c [L*D, B, H] the latest states, past_h, past_c [K-1, L*D, B, H] the
    K-1 before them (most recent first) and past_count i64 [B] how many of those are real; None
    (or any None field) = zeros, no past."""

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, dropout=0.0,
                 history=3, attention_dim=0):
        attention_dim = attention_dim or hidden_size
        super().__init__(input_size, hidden_size, num_layers, bidirectional, history,
                         attention_dim, True, torch.get_default_dtype())
        self.dropout = dropout
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("attn_weight_in"):
                    bound = 1.0 / math.sqrt(p.size(1))
                elif name.startswith("attn_v"):
                    bound = 1.0 / math.sqrt(attention_dim)
                else:
                    bound = 1.0 / math.sqrt(hidden_size)
                p.uniform_(-bound, bound)

    def forward(self, x, lengths=None, state=None):
        """x [B, T, in] (lengths i64 [B], None = all T) -> output [B, T, D*H] (zero at padded
        steps) and the state after each sequence's last real step."""
        B, T, _ = x.shape
        K, H, nd = self.history, self.hidden, self.nd
        h0, c0, past_h0, past_c0, count = state if state is not None else (None,) * 5
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.int64)
        if count is None:
            count = torch.zeros(B, dtype=torch.int64)
        valid0 = torch.arange(K)[None, :] <= count[:, None]  # slot 0 and the real past slots
        zeros = x.new_zeros(B, H)
        inp, h_n, c_n, past_h, past_c = x, [], [], [], []
        valid = valid0
        for layer in range(self.layers):
            if layer > 0 and self.dropout > 0:
                inp = F.dropout(inp, self.dropout, self.training)
            outs = []
            for d in range(nd):
                ld = layer * nd + d
                h = h0[ld] if h0 is not None else zeros
                c = c0[ld] if c0 is not None else zeros
                if past_h0 is not None:
                    ph, pc = past_h0[:, ld].transpose(0, 1), past_c0[:, ld].transpose(0, 1)
                else:
                    ph = pc = x.new_zeros(B, K - 1, H)
                out, hh, hc, valid, _ = self.direction(layer, d, inp, lengths,
                                                       torch.cat([h[:, None], ph], 1),
                                                       torch.cat([c[:, None], pc], 1), valid0)
                outs.append(out)
                h_n.append(hh[:, 0])
                c_n.append(hc[:, 0])
                past_h.append(hh[:, 1:].transpose(0, 1))
                past_c.append(hc[:, 1:].transpose(0, 1))
            inp = torch.cat(outs, 2)
        return inp, (torch.stack(h_n), torch.stack(c_n), torch.stack(past_h, 1),
                     torch.stack(past_c, 1), valid.sum(1) - 1)


def make_rnn(cfg, input_size, hidden_size, num_layers=1, bidirectional=False, dropout=0.0):
    """The recurrent module of cfg.cell, batch_first."""
    if cfg.cell == "advanced-lstm":
        return AdvancedLstm(input_size, hidden_size, num_layers, bidirectional, dropout,
                            cfg.history, cfg.attention_dim)
    if cfg.cell not in ("gru", "lstm"):
        raise ValueError("unknown cell " + cfg.cell)
    rnn = torch.nn.LSTM if cfg.cell == "lstm" else torch.nn.GRU
    return rnn(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
               batch_first=True, dropout=dropout)


# ---- scores: query [N, Tq, H], keys [N, S, H] -> [N, Tq, S]; prepare_keys runs once per source


class AdditiveScore(torch.nn.Module):
    """Bahdanau: v^T tanh(W q + U k + b)."""

    def __init__(self, q_dim, k_dim, a_dim):
        super().__init__()
        self.query_proj = torch.nn.Linear(q_dim, a_dim, bias=False)
        self.key_proj = torch.nn.Linear(k_dim, a_dim)
        self.v = _uniform_parameter((a_dim,), 1.0 / math.sqrt(a_dim))

    def prepare_keys(self, keys):
        return self.key_proj(keys)  # [N, S, A]

    def forward(self, query, pk):
        wq = self.query_proj(query)  # [N, Tq, A]
        return torch.tanh(wq.unsqueeze(2) + pk.unsqueeze(1)) @ self.v  # [N, Tq, S]


class DotScore(torch.nn.Module):
    def prepare_keys(self, keys):
        return keys

    def forward(self, query, keys):
        return query @ keys.transpose(1, 2)


class GeneralScore(torch.nn.Module):
    """Luong general: q^T W k, weight [Dq, Dk]."""

    def __init__(self, q_dim, k_dim):
        super().__init__()
        self.weight = _uniform_parameter((q_dim, k_dim), 1.0 / math.sqrt(k_dim))

    def prepare_keys(self, keys):
        return keys @ self.weight.t()  # W k: [N, S, Dq]

    def forward(self, query, pk):
        return query @ pk.transpose(1, 2)


class ConcatScore(torch.nn.Module):
    """Luong concat: v^T tanh(W [q; k]), weight [A, Dq + Dk], no bias."""

    def __init__(self, q_dim, k_dim, a_dim):
        super().__init__()
        self.q_dim = q_dim
        self.weight = _uniform_parameter((a_dim, q_dim + k_dim), 1.0 / math.sqrt(q_dim + k_dim))
        self.v = _uniform_parameter((a_dim,), 1.0 / math.sqrt(a_dim))

    def prepare_keys(self, keys):
        return keys @ self.weight[:, self.q_dim:].t()  # [N, S, A]

    def forward(self, query, pk):
        wq = query @ self.weight[:, :self.q_dim].t()  # [N, Tq, A]
        return torch.tanh(wq.unsqueeze(2) + pk.unsqueeze(1)) @ self.v


class LocationScore(torch.nn.Module):
    """Luong location: W_a h_t over max_source_len positions, the first S of them used."""

    def __init__(self, q_dim, max_source_len):
        super().__init__()
        self.proj = torch.nn.Linear(q_dim, max_source_len)

    def prepare_keys(self, keys):
        return keys

    def forward(self, query, keys):
        return self.proj(query)[:, :, :keys.size(1)]


class LocationAwareScore(torch.nn.Module):
    """Chorowski et al.: v^T tanh(W q + V h_j + U f_j + b), f = F * previous weights."""

    def __init__(self, q_dim, k_dim, a_dim, filters, width):
        super().__init__()
        self.query_proj = torch.nn.Linear(q_dim, a_dim, bias=False)
        self.key_proj = torch.nn.Linear(k_dim, a_dim)
        self.filters = _uniform_parameter((filters, 1, width), 1.0 / math.sqrt(width))
        self.location_proj = torch.nn.Linear(filters, a_dim, bias=False)
        self.v = _uniform_parameter((a_dim,), 1.0 / math.sqrt(a_dim))

    def prepare_keys(self, keys):
        return self.key_proj(keys)  # [N, S, A]

    def forward(self, query, pk, previous):
        r = self.filters.size(2)
        f = F.conv1d(previous.unsqueeze(1), self.filters, padding=r // 2)  # [N, k, S]
        keys = pk + self.location_proj(f.transpose(1, 2))                  # [N, S, A]
        wq = self.query_proj(query)                                         # [N, 1, A]
        return torch.tanh(wq.unsqueeze(2) + keys.unsqueeze(1)) @ self.v     # [N, 1, S]


class QkvScore(torch.nn.Module):
    """Encoder-decoder QKV: (W_q q) . (W_k k_j) / sqrt(A); the context mixes W_v k_j. No biases."""

    def __init__(self, q_dim, k_dim, a_dim, v_dim):
        super().__init__()
        self.query_proj = torch.nn.Linear(q_dim, a_dim, bias=False)
        self.key_proj = torch.nn.Linear(k_dim, a_dim, bias=False)
        self.value_proj = torch.nn.Linear(k_dim, v_dim, bias=False)

    def prepare_keys(self, keys):
        return self.key_proj(keys)  # [N, S, A]

    def prepare_values(self, keys):
        return self.value_proj(keys)  # [N, S, Dv]

    def forward(self, query, pk):
        return self.query_proj(query) @ pk.transpose(1, 2) / math.sqrt(pk.size(2))


def masked_softmax(scores, mask, rows_may_be_empty):
    """softmax over the last dim with `mask` (bool, True = excluded) at weight 0; a row with
    every position excluded gets all-zero weights and zero gradient, as attend::Softmax."""
    if not rows_may_be_empty:
        return scores.masked_fill(mask, float("-inf")).softmax(-1)
    mask = mask.expand(scores.shape)
    any_kept = ~mask.all(-1, keepdim=True)
    w = scores.masked_fill(mask & any_kept, float("-inf")).softmax(-1)
    return w * any_kept


class LocalPredictive(torch.nn.Module):
    """local-p: p_t = S sigmoid(v_p^T tanh(W_p h_t)); softmax over |j - p_t| <= D (inside the
    sentence) times exp(-(j - p_t)^2 / (2 sigma^2)), sigma = D / 2."""

    def __init__(self, q_dim, hidden, window):
        super().__init__()
        self.proj = torch.nn.Linear(q_dim, hidden, bias=False)
        self.v = _uniform_parameter((hidden,), 1.0 / math.sqrt(hidden))
        self.window = window

    def weights(self, scores, query, lengths):
        n, _, s_len = scores.shape
        s = lengths.to(scores.dtype).view(n, 1)                          # [N, 1]
        p = s * torch.sigmoid(torch.tanh(self.proj(query)) @ self.v)     # [N, Tq]
        pos = torch.arange(s_len, dtype=scores.dtype).view(1, 1, s_len)  # [1, 1, S]
        dist = pos - p.unsqueeze(2)                                      # [N, Tq, S]
        excluded = (dist.detach().abs() > self.window) | (pos >= s.unsqueeze(2))
        sigma = self.window / 2.0
        gauss = torch.exp(dist * dist * (-1.0 / (2.0 * sigma * sigma)))
        return masked_softmax(scores, excluded, True) * gauss


class DecoderState:
    """What decoding keeps per hypothesis (attend's RnnState)."""

    def __init__(self):
        self.memory = self.keys = self.values = self.padding = self.lengths = None
        self.fixed_context = self.h = self.c = self.feed = self.previous = None
        self.past = None  # advanced-lstm: the decoder's (past_h, past_c, past_count)
        self.step = 0

    def rows(self):
        return self.h.size(1)

    def select(self, rows):
        """Keeps hypotheses `rows` (i64 [N']) in that order (beam search's reorder)."""
        for name in ("memory", "keys", "values", "padding", "lengths", "fixed_context", "feed",
                     "previous"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.index_select(0, rows))
        self.h = self.h.index_select(1, rows)
        if self.c is not None:
            self.c = self.c.index_select(1, rows)
        if self.past is not None:
            past_h, past_c, count = self.past
            self.past = (past_h.index_select(2, rows), past_c.index_select(2, rows),
                         count.index_select(0, rows))


class RnnSeq2Seq(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.attention = cfg.arch == "rnn-attention"
        h, e = cfg.hidden_dim, cfg.embed_dim
        # The baseline has no attention to wire; bahdanau and tutorial feed the context into the
        # step themselves and ignore input feeding (as attend).
        self.wiring = cfg.wiring if self.attention else "luong"
        if self.wiring not in ("luong", "bahdanau", "tutorial"):
            raise ValueError("unknown wiring " + cfg.wiring)
        self.feeding = self.wiring == "luong" and cfg.input_feeding
        tutorial = self.wiring == "tutorial"
        dc = cfg.attention_dim if self.attention and not tutorial and cfg.score == "qkv" else h
        self.speech = cfg.feature_dim > 0
        if not self.speech:
            self.src_embed = torch.nn.Embedding(cfg.src_vocab, e, padding_idx=PAD)
        self.tgt_embed = torch.nn.Embedding(cfg.tgt_vocab, e, padding_idx=PAD)
        # A memory cell c beside h: the LSTMs.
        self.has_cell = cfg.cell in ("lstm", "advanced-lstm")
        self.advanced = cfg.cell == "advanced-lstm"
        self.encoder = make_rnn(cfg, cfg.feature_dim * cfg.frame_stacking if self.speech else e,
                                h // 2, cfg.encoder_layers, True,
                                cfg.dropout if cfg.encoder_layers > 1 else 0.0)
        # The listener's levels: each reads two adjacent outputs of the level below.
        self.pyramid = torch.nn.ModuleList(
            [make_rnn(cfg, 2 * h, h // 2, bidirectional=True)
             for _ in range(cfg.pyramid_levels if self.speech else 0)])
        if self.wiring == "bahdanau":
            dec_in = e + dc                    # [y_{t-1}; c_t]
        elif tutorial:
            dec_in = h                         # relu(W [y_{t-1}; c_t])
        else:
            dec_in = e + (h if self.feeding else 0)
        self.decoder = make_rnn(cfg, dec_in, h, cfg.decoder_layers, False,
                                cfg.dropout if cfg.decoder_layers > 1 else 0.0)
        self.bridge = torch.nn.Linear(h, h)
        self.score = None
        self.local_p = None
        if self.attention and tutorial:
            if cfg.window != "global" or cfg.score != "additive":
                raise ValueError("the tutorial wiring takes neither a window nor a score")
            self.attn = torch.nn.Linear(e + h, cfg.max_source_len)
            self.attn_combine = torch.nn.Linear(e + h, h)
        elif self.attention:
            if cfg.score == "additive":
                self.score = AdditiveScore(h, h, cfg.attention_dim)
            elif cfg.score == "dot":
                self.score = DotScore()
            elif cfg.score == "general":
                self.score = GeneralScore(h, h)
            elif cfg.score == "concat":
                self.score = ConcatScore(h, h, cfg.attention_dim)
            elif cfg.score == "location":
                self.score = LocationScore(h, cfg.max_source_len)
            elif cfg.score == "location-aware":
                self.score = LocationAwareScore(h, h, cfg.attention_dim, cfg.location_filters,
                                                cfg.location_width)
            elif cfg.score == "qkv":
                self.score = QkvScore(h, h, cfg.attention_dim, cfg.attention_dim)
            else:
                raise ValueError("unknown score " + cfg.score)
            if cfg.window == "local-p":
                self.local_p = LocalPredictive(h, cfg.attention_dim, cfg.window_size)
            elif cfg.window not in ("global", "local-m"):
                raise ValueError("unknown window " + cfg.window)
        if self.wiring == "luong":
            self.combine = torch.nn.Linear(dc + h, h, bias=False)      # [c_t; s_t]
        elif self.wiring == "bahdanau":
            self.combine = torch.nn.Linear(h + dc + e, h, bias=False)  # [s_t; c_t; y_{t-1}]
        self.out = torch.nn.Linear(h, cfg.tgt_vocab)
        self.embed_dropout = torch.nn.Dropout(cfg.dropout)
        self.out_dropout = torch.nn.Dropout(cfg.dropout)
        self.self_attention = None
        if cfg.encoder_self_attention == "qkv":
            self.self_attention = QkvScore(h, h, cfg.attention_dim, h)
        elif cfg.encoder_self_attention not in ("none", "dot"):
            raise ValueError("unknown encoder self-attention " + cfg.encoder_self_attention)

    # ---- encoder --------------------------------------------------------------------------
    def self_attend(self, memory, padding):
        """h'_i = h_i + sum_j alpha_ij v_j over the real positions j: dot scores h_i . h_j /
        sqrt(H) with v = h, or qkv. Returns h' and the weights [B, S, S]."""
        if self.self_attention is not None:
            scores = self.self_attention(memory, self.self_attention.prepare_keys(memory))
            values = self.self_attention.prepare_values(memory)
        else:
            scores = memory @ memory.transpose(1, 2) / math.sqrt(memory.size(2))
            values = memory
        w = masked_softmax(scores, padding, False)
        return memory + w @ values, w

    def start(self, src, lengths, want_self_weights=False):
        """Encodes src [B, S] (lengths i64 [B]) once: the state of B hypotheses (and, with
        want_self_weights, the encoder self-attention's weights)."""
        cfg = self.cfg
        b, s_len = src.shape[0], src.shape[1]
        st = DecoderState()
        x = src if self.speech else self.embed_dropout(self.src_embed(src))  # [B, S, E or F]

        def run(rnn, x, lengths):
            if self.advanced:  # the mirror runs the padded batch itself
                out, state = rnn(x, lengths)
                return out, state[0]
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, hn = rnn(packed)
            if cfg.cell == "lstm":
                hn = hn[0]
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
            return out, hn

        def stack(x, k, lengths):
            """k consecutive steps joined into one; zero steps complete the last group."""
            s = x.size(1)
            groups = (s + k - 1) // k
            if groups * k > s:
                x = torch.cat([x, x.new_zeros(b, groups * k - s, x.size(2))], 1)
            return x.reshape(b, groups, k * x.size(2)), (lengths + k - 1) // k

        if self.speech:
            x, lengths = stack(x, cfg.frame_stacking, lengths)
        memory, hn = run(self.encoder, x, lengths)  # [B, S, H]
        for level in self.pyramid:
            memory, lengths = stack(memory, 2, lengths)
            memory, hn = run(level, memory, lengths)
        s_len = memory.size(1)
        if self.wiring == "tutorial" and s_len > cfg.max_source_len:
            raise ValueError("source length %d exceeds max_source_len %d" %
                             (s_len, cfg.max_source_len))
        st.lengths = lengths
        padding = torch.arange(s_len).view(1, 1, s_len) >= lengths.view(b, 1, 1)
        self_weights = None
        if cfg.encoder_self_attention != "none":
            memory, self_weights = self.self_attend(memory, padding)
            # Each direction's final state is its output where it ends: read them from h'.
            half = cfg.hidden_dim // 2
            last = memory[torch.arange(b), (lengths - 1).clamp(min=0)]  # [B, H]
            summary = torch.cat([last[:, :half], memory[:, 0, half:]], 1)
        else:
            layers = 1 if len(self.pyramid) else cfg.encoder_layers
            # The last layer's two directions' final states side by side: [B, H].
            summary = torch.cat([hn[2 * layers - 2], hn[2 * layers - 1]], 1)
        st.memory = memory
        h0 = torch.tanh(self.bridge(summary))
        st.h = h0.unsqueeze(0).repeat(cfg.decoder_layers, 1, 1)  # [L, B, H]
        if self.has_cell:
            st.c = torch.zeros_like(st.h)
        if self.feeding:
            st.feed = torch.zeros_like(h0)
        if self.attention:
            st.padding = padding
            if self.score is not None:
                st.keys = self.score.prepare_keys(st.memory)
            if isinstance(self.score, QkvScore):
                st.values = self.score.prepare_values(st.memory)
            if cfg.score == "location-aware":
                real = (~st.padding.squeeze(1)).to(st.memory.dtype)
                st.previous = real / lengths.to(st.memory.dtype).view(b, 1)
        else:
            st.fixed_context = summary
        if want_self_weights:
            return st, self_weights
        return st

    # ---- attention ------------------------------------------------------------------------
    def context(self, st, query, first_step):
        """The decoder's attention for queries [N, Tq, H] at target positions first_step..:
        the context [N, Tq, Dc] and the weights [N, Tq, S]."""
        if st.previous is not None:
            scores = self.score(query, st.keys, st.previous) * self.cfg.sharpening
        else:
            scores = self.score(query, st.keys)  # [N, Tq, S]
        if self.local_p is not None:
            w = self.local_p.weights(scores, query, st.lengths)
        else:
            mask = st.padding  # [N, 1, S]
            local_m = self.cfg.window == "local-m"
            if local_m:
                tq, s_len = query.size(1), scores.size(2)
                t = torch.arange(first_step, first_step + tq).view(tq, 1)
                j = torch.arange(s_len).view(1, s_len)
                mask = mask | ((j - t).abs() > self.cfg.window_size).unsqueeze(0)
            w = masked_softmax(scores, mask, local_m)
        if st.previous is not None:
            st.previous = w.squeeze(1)
        return w @ (st.values if st.values is not None else st.memory), w

    def attend(self, st, top, first_step, want_weights=False):
        """Luong: h~ = tanh(W_c [c_t; h_t]) for decoder outputs top [N, Tq, H] at target
        positions first_step.., and the weights [N, Tq, S] (None for the baseline)."""
        w = None
        if not self.attention:
            context = st.fixed_context.unsqueeze(1).expand(top.shape)
        else:
            context, w = self.context(st, top, first_step)
        ht = torch.tanh(self.combine(torch.cat([context, top], 2)))
        return ht, (w if want_weights else None)

    def _run_decoder(self, x, st):
        if self.advanced:
            top, (st.h, st.c, *_) = self.decoder(x, state=(st.h, st.c, None, None, None))
        elif self.cfg.cell == "lstm":
            top, (st.h, st.c) = self.decoder(x, (st.h, st.c))
        else:
            top, st.h = self.decoder(x, st.h)
        return top

    def _decoder_step(self, x, st):
        """One step of the stacked decoder on x [N, in] with nn.GRU/LSTM's own weights, through
        the cell ops nn.GRUCell/LSTMCell use: a one-step call of nn.GRU costs about 40% more
        forward + backward (1 thread, B 64, H 256), and this benchmark is meant to be fair to
        PyTorch. Dropout between layers as nn.GRU applies it. Returns the top layer [N, H]."""
        if self.advanced:
            # One step of the whole stack, the past states of each layer carried in st.past.
            past = st.past if st.past is not None else (None, None, None)
            top, (st.h, st.c, *past) = self.decoder(x.unsqueeze(1),
                                                    state=(st.h, st.c, *past))
            st.past = tuple(past)
            return top.squeeze(1)
        d, lstm = self.decoder, self.cfg.cell == "lstm"
        hs, cs = [], []
        for layer in range(self.cfg.decoder_layers):
            if layer > 0 and d.dropout > 0:
                x = F.dropout(x, d.dropout, self.training)
            w = [getattr(d, "%s_l%d" % (n, layer))
                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if lstm:
                h, c = torch.lstm_cell(x, (st.h[layer], st.c[layer]), *w)
                cs.append(c)
            else:
                h = torch.gru_cell(x, st.h[layer], *w)
            hs.append(h)
            x = h
        st.h = torch.stack(hs)
        if lstm:
            st.c = torch.stack(cs)
        return x

    def decode_step(self, st, emb, want_weights=False):
        """One decoder step from input embeddings [N, E]: the vector `out` reads [N, H] (and
        weights [N, S])."""
        w = None
        if self.wiring == "luong":
            x = torch.cat([emb, st.feed], 1) if self.feeding else emb
            top = self._decoder_step(x, st).unsqueeze(1)  # [N, 1, H]
            ht, w = self.attend(st, top, st.step, want_weights)
            ht = ht.squeeze(1)
            if self.feeding:
                st.feed = ht
        elif self.wiring == "bahdanau":
            # Scored from s_{t-1} (s_0: the bridged summary); the context enters the step.
            query = st.h[-1].unsqueeze(1)  # [N, 1, H]
            context, w = self.context(st, query, st.step)
            context = context.squeeze(1)
            top = self._decoder_step(torch.cat([emb, context], 1), st)
            ht = torch.tanh(self.combine(torch.cat([top, context, emb], 1)))
        else:
            # AttnDecoderRNN: weights from [y_{t-1}; s_{t-1}] over the first S positions, with
            # the padding masked (the tutorial does not mask).
            s_len = st.memory.size(1)
            scores = self.attn(torch.cat([emb, st.h[-1]], 1))[:, :s_len].unsqueeze(1)
            w = masked_softmax(scores, st.padding, False)   # [N, 1, S]
            context = (w @ st.memory).squeeze(1)
            x = F.relu(self.attn_combine(torch.cat([emb, context], 1)))
            ht = self._decoder_step(x, st)
        st.step += 1
        if not want_weights or w is None:
            return ht, None
        return ht, w.squeeze(1)

    # ---- training -------------------------------------------------------------------------
    def forward(self, src, src_lengths, tgt_in, want_weights=False, generator=None, coins=None):
        """Teacher-forced logits [B, T, V] (and the weights [B, T, S] with want_weights).
        Below teacher_forcing 1 (training only) each sentence feeds its own greedy prediction
        with probability 1 - teacher_forcing; the coins come from `coins` (an AttendCoins: the
        ones attend's model flips) or else from torch's `generator`."""
        cfg = self.cfg
        t_len = tgt_in.size(1)
        st = self.start(src, src_lengths)
        emb = self.embed_dropout(self.tgt_embed(tgt_in))  # [B, T, E]
        sample = self.training and cfg.teacher_forcing < 1.0
        if self.wiring == "luong" and not self.feeding and not sample and st.previous is None:
            # Every step's input is known: one recurrent call over the whole target.
            top = self._run_decoder(emb, st)
            ht, w = self.attend(st, top, 0, want_weights)
            return self.out(self.out_dropout(ht)), w
        states, weights, step_logits = [], [], []
        self.sampled_margins = []  # top-1 minus top-2 logit of every greedy prediction fed
        nxt = emb[:, 0]
        for t in range(t_len):
            ht, w = self.decode_step(st, nxt, want_weights)
            states.append(ht)
            weights.append(w)
            if t + 1 == t_len:
                break
            reference = emb[:, t + 1]
            if not sample:
                nxt = reference
                continue
            logits = self.out(self.out_dropout(ht))
            step_logits.append(logits)
            predicted = logits.detach().argmax(1)
            top2 = logits.detach().topk(2, 1).values
            self.sampled_margins.append((top2[:, 0] - top2[:, 1]).min().item())
            b = tgt_in.size(0)
            if coins is not None:
                use_ref = coins.flip(b, cfg.teacher_forcing)
            else:
                use_ref = torch.rand(b, 1, generator=generator) < cfg.teacher_forcing
            nxt = torch.where(use_ref, reference,
                              self.embed_dropout(self.tgt_embed(predicted)))
        w = torch.stack(weights, 1) if want_weights and self.attention else None
        if step_logits:
            step_logits.append(self.out(self.out_dropout(states[-1])))
            return torch.stack(step_logits, 1), w
        return self.out(self.out_dropout(torch.stack(states, 1))), w

    # ---- decoding -------------------------------------------------------------------------
    def step(self, st, tokens):
        """The last tokens i64 [N] -> log-probabilities [N, V]."""
        emb = self.embed_dropout(self.tgt_embed(tokens))
        ht, _ = self.decode_step(st, emb)
        return F.log_softmax(self.out(self.out_dropout(ht)), 1)
