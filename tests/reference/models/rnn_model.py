# The RNN encoder-decoders of src/models/rnn_seq2seq.cc written in PyTorch, under the same names.
"""PyTorch mirror of attend's RNN encoder-decoders (src/models/rnn_seq2seq.cc).

Arch "rnn" (one fixed context vector) and "rnn-attention" (Luong et al. 2015: score additive,
dot, general, concat or location; window global, local-m or local-p; input feeding; teacher
forcing at a ratio). With feature_dim > 0 the source is speech features [B, S, F] and the
encoder is Listen, Attend and Spell's pyramidal listener; the score may then be location-aware
(Chorowski et al. 2015). The decoder's parameters are nn.GRU/LSTM's; step by step they run through
torch.gru_cell / lstm_cell (what nn.GRUCell uses). Every parameter has the name attend's
StateDict gives it (src_embed.weight, encoder.weight_ih_l0_reverse, score.key_proj.bias,
local_p.v, combine.weight, ...), so weights copy across by name.
tests/reference/seq2seq_reference.py checks this module against the C++ model end to end
(logits, attention, loss, every gradient); bench/torch_reference/rnn_attention.py trains and
decodes with it.
"""
import math

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class RnnConfig:
    """The RNN fields of attend's models::ModelConfig, with its defaults."""

    def __init__(self, **kw):
        self.arch = "rnn-attention"  # rnn | rnn-attention
        self.src_vocab = 0
        self.tgt_vocab = 0
        self.dropout = 0.1
        self.cell = "gru"            # gru | lstm
        self.embed_dim = 256
        self.hidden_dim = 256        # decoder size; the encoder has hidden_dim / 2 per direction
        self.encoder_layers = 1
        self.decoder_layers = 1
        self.score = "additive"      # additive | dot | general | concat | location
        self.attention_dim = 256
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


def _uniform_parameter(shape, bound):
    return torch.nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


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
        self.memory = self.keys = self.padding = self.lengths = None
        self.fixed_context = self.h = self.c = self.feed = self.previous = None
        self.step = 0

    def rows(self):
        return self.h.size(1)

    def select(self, rows):
        """Keeps hypotheses `rows` (i64 [N']) in that order (beam search's reorder)."""
        for name in ("memory", "keys", "padding", "lengths", "fixed_context", "feed", "previous"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.index_select(0, rows))
        self.h = self.h.index_select(1, rows)
        if self.c is not None:
            self.c = self.c.index_select(1, rows)


class RnnSeq2Seq(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.attention = cfg.arch == "rnn-attention"
        h, e = cfg.hidden_dim, cfg.embed_dim
        self.speech = cfg.feature_dim > 0
        if not self.speech:
            self.src_embed = torch.nn.Embedding(cfg.src_vocab, e, padding_idx=PAD)
        self.tgt_embed = torch.nn.Embedding(cfg.tgt_vocab, e, padding_idx=PAD)
        rnn = torch.nn.LSTM if cfg.cell == "lstm" else torch.nn.GRU
        self.encoder = rnn(cfg.feature_dim * cfg.frame_stacking if self.speech else e, h // 2,
                           num_layers=cfg.encoder_layers, bidirectional=True, batch_first=True,
                           dropout=cfg.dropout if cfg.encoder_layers > 1 else 0.0)
        # The listener's levels: each reads two adjacent outputs of the level below.
        self.pyramid = torch.nn.ModuleList(
            [rnn(2 * h, h // 2, bidirectional=True, batch_first=True)
             for _ in range(cfg.pyramid_levels if self.speech else 0)])
        dec_in = e + (h if cfg.input_feeding else 0)
        self.decoder = rnn(dec_in, h, num_layers=cfg.decoder_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.decoder_layers > 1 else 0.0)
        self.bridge = torch.nn.Linear(h, h)
        self.score = None
        self.local_p = None
        if self.attention:
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
            else:
                raise ValueError("unknown score " + cfg.score)
            if cfg.window == "local-p":
                self.local_p = LocalPredictive(h, cfg.attention_dim, cfg.window_size)
            elif cfg.window not in ("global", "local-m"):
                raise ValueError("unknown window " + cfg.window)
        self.combine = torch.nn.Linear(2 * h, h, bias=False)
        self.out = torch.nn.Linear(h, cfg.tgt_vocab)
        self.embed_dropout = torch.nn.Dropout(cfg.dropout)
        self.out_dropout = torch.nn.Dropout(cfg.dropout)

    # ---- encoder --------------------------------------------------------------------------
    def start(self, src, lengths):
        """Encodes src [B, S] (lengths i64 [B]) once: the state of B hypotheses."""
        cfg = self.cfg
        b, s_len = src.shape[0], src.shape[1]
        st = DecoderState()
        x = src if self.speech else self.embed_dropout(self.src_embed(src))  # [B, S, E or F]

        def run(rnn, x, lengths):
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
        st.memory = memory
        s_len = memory.size(1)
        st.lengths = lengths
        layers = 1 if len(self.pyramid) else cfg.encoder_layers
        # The last layer's two directions' final states side by side: [B, H].
        summary = torch.cat([hn[2 * layers - 2], hn[2 * layers - 1]], 1)
        h0 = torch.tanh(self.bridge(summary))
        st.h = h0.unsqueeze(0).repeat(cfg.decoder_layers, 1, 1)  # [L, B, H]
        if cfg.cell == "lstm":
            st.c = torch.zeros_like(st.h)
        if cfg.input_feeding:
            st.feed = torch.zeros_like(h0)
        if self.attention:
            st.keys = self.score.prepare_keys(st.memory)
            st.padding = torch.arange(s_len).view(1, 1, s_len) >= lengths.view(b, 1, 1)
            if cfg.score == "location-aware":
                real = (~st.padding.squeeze(1)).to(st.memory.dtype)
                st.previous = real / lengths.to(st.memory.dtype).view(b, 1)
        else:
            st.fixed_context = summary
        return st

    # ---- attention ------------------------------------------------------------------------
    def attend(self, st, top, first_step, want_weights=False):
        """h~ = tanh(W_c [c_t; h_t]) for decoder outputs top [N, Tq, H] at target positions
        first_step.., and the weights [N, Tq, S] (None for the baseline)."""
        w = None
        if not self.attention:
            context = st.fixed_context.unsqueeze(1).expand(top.shape)
        else:
            if st.previous is not None:
                scores = self.score(top, st.keys, st.previous) * self.cfg.sharpening
            else:
                scores = self.score(top, st.keys)  # [N, Tq, S]
            if self.local_p is not None:
                w = self.local_p.weights(scores, top, st.lengths)
            else:
                mask = st.padding  # [N, 1, S]
                local_m = self.cfg.window == "local-m"
                if local_m:
                    tq, s_len = top.size(1), scores.size(2)
                    t = torch.arange(first_step, first_step + tq).view(tq, 1)
                    j = torch.arange(s_len).view(1, s_len)
                    mask = mask | ((j - t).abs() > self.cfg.window_size).unsqueeze(0)
                w = masked_softmax(scores, mask, local_m)
            if st.previous is not None:
                st.previous = w.squeeze(1)
            context = w @ st.memory  # [N, Tq, H]
        ht = torch.tanh(self.combine(torch.cat([context, top], 2)))
        return ht, (w if want_weights else None)

    def _run_decoder(self, x, st):
        if self.cfg.cell == "lstm":
            top, (st.h, st.c) = self.decoder(x, (st.h, st.c))
        else:
            top, st.h = self.decoder(x, st.h)
        return top

    def _decoder_step(self, x, st):
        """One step of the stacked decoder on x [N, in] with nn.GRU/LSTM's own weights, through
        the cell ops nn.GRUCell/LSTMCell use: a one-step call of nn.GRU costs about 40% more
        forward + backward (1 thread, B 64, H 256), and this benchmark is meant to be fair to
        PyTorch. Dropout between layers as nn.GRU applies it. Returns the top layer [N, H]."""
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
        """One decoder step from input embeddings [N, E]: h~ [N, H] (and weights [N, S])."""
        x = torch.cat([emb, st.feed], 1) if self.cfg.input_feeding else emb
        top = self._decoder_step(x, st).unsqueeze(1)  # [N, 1, H]
        ht, w = self.attend(st, top, st.step, want_weights)
        ht = ht.squeeze(1)
        if self.cfg.input_feeding:
            st.feed = ht
        st.step += 1
        return ht, (w.squeeze(1) if w is not None else None)

    # ---- training -------------------------------------------------------------------------
    def forward(self, src, src_lengths, tgt_in, want_weights=False, generator=None):
        """Teacher-forced logits [B, T, V] (and the weights [B, T, S] with want_weights).
        Below teacher_forcing 1 (training only) each sentence feeds its own greedy prediction
        with probability 1 - teacher_forcing; the coins come from `generator`, not attend's."""
        cfg = self.cfg
        t_len = tgt_in.size(1)
        st = self.start(src, src_lengths)
        emb = self.embed_dropout(self.tgt_embed(tgt_in))  # [B, T, E]
        sample = self.training and cfg.teacher_forcing < 1.0
        if not cfg.input_feeding and not sample and st.previous is None:
            # Every step's input is known: one recurrent call over the whole target.
            top = self._run_decoder(emb, st)
            ht, w = self.attend(st, top, 0, want_weights)
            return self.out(self.out_dropout(ht)), w
        states, weights, step_logits = [], [], []
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
            use_ref = torch.rand(tgt_in.size(0), 1, generator=generator) < cfg.teacher_forcing
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
