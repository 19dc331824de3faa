# PyTorch oracle cases for the RNN encoder-decoders: logits, attention, loss and gradients.
"""PyTorch oracle for attend's RNN encoder-decoders (src/models/rnn_seq2seq.cc).

The torch model is tests/reference/models/rnn_model.py (torch.nn.GRU/LSTM bidirectional encoder
over a packed batch, an nn.GRU/LSTM decoder run step by step with input feeding (its weights
through torch.gru_cell / lstm_cell), the same bridge, scores, windows, combine and output
layers), the one the training benchmark uses, so this test also proves that the benchmark trains
the same model as `attend train`.

Run as `/usr/bin/python3 tests/reference/seq2seq_reference.py --out FILE` (Debian's
python3-torch); tests/models/test_seq2seq_reference.cc loads every weight by name into
models::MakeModel(config) and compares. The file format is the one of ops_reference.py. Per case
the op key gives the configuration, e.g. "seq2seq|arch=rnn-attention|cell=gru|score=additive|
window=local-m|input_feeding=1|src_vocab=23|tgt_vocab=19|embed=6|hidden=8|attention_dim=7|
window_size=2|max_source_len=9|encoder_layers=1|decoder_layers=1|label_smoothing=0.1", and the
tensors are named:
  src, src_lengths, tgt_in, tgt_out   the batch as nmt::MakeBatch pads it (i64; 0 = padding,
                                      2 = BOS, 3 = EOS)
  p:<name>          every parameter under attend's StateDict name
  logits            [B, T, V] (dropout 0, teacher forcing 1)
  attention         [B, T, S] decoder attention weights (attention models only)
  loss              mean cross-entropy over the non-pad targets, label smoothing 0.1
  grad:<name>       d loss / d parameter
Speech cases (Listen, Attend and Spell) add feature_dim, pyramid_levels, location_filters,
location_width and sharpening to the key; their src is f32 features [B, frames, feature_dim]
padded with zero frames, and the attention covers the listener's reduced steps.
The cases of the wirings (WIRING_VARIANTS, and some speech cases) add wiring (luong | bahdanau |
tutorial), encoder_self_attention (none | dot | qkv) and teacher_forcing to the key. Below
teacher forcing 1 the torch model flips attend's own coins (rnn_model.AttendCoins) and the case
adds:
  tf_state          i64 [2], the seed and counter the C++ test puts in the model's buffer
                    tf_rng_state before its forward pass
  coins             bool [n], every coin flipped, in order (true = the reference word fed)
The cases of cell advanced-lstm (ADVANCED_VARIANTS, ADVANCED_SPEECH_VARIANTS) add history (K) to
the key: the encoder, the listener's levels and the decoder are then Advanced LSTMs (the decoder
carries its K-1 past states from step to step).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "models"))
try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("seq2seq_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402
from rnn_model import AttendCoins, RnnConfig, RnnSeq2Seq, PAD, BOS, EOS  # noqa: E402

LABEL_SMOOTHING = 0.1

# (name, arch, cell, score, window, input_feeding, encoder_layers, decoder_layers,
#  src_lengths, tgt_lengths (without EOS)). Together: every score, every window, input feeding
# on and off, GRU and LSTM, the fixed-context baseline, stacked layers; local-m with targets
# longer than source + D (rows whose window holds no source word: zero weights).
VARIANTS = [
    ("rnn_gru_feed", "rnn", "gru", "additive", "global", True, 1, 1, [5, 2, 4], [6, 3, 2]),
    ("rnn_lstm_nofeed", "rnn", "lstm", "additive", "global", False, 1, 1, [3, 5, 1], [2, 7, 4]),
    ("additive_global_gru_feed", "rnn-attention", "gru", "additive", "global", True, 1, 1,
     [5, 2, 4], [6, 3, 2]),
    ("additive_global_lstm_nofeed", "rnn-attention", "lstm", "additive", "global", False, 1, 1,
     [4, 6, 2], [3, 5, 4]),
    ("dot_global_lstm_feed", "rnn-attention", "lstm", "dot", "global", True, 1, 1,
     [3, 6, 1], [5, 2, 4]),
    ("general_global_gru_nofeed", "rnn-attention", "gru", "general", "global", False, 1, 1,
     [6, 3, 4], [4, 6, 1]),
    ("concat_global_gru_feed", "rnn-attention", "gru", "concat", "global", True, 1, 1,
     [2, 5, 3], [3, 4, 6]),
    ("location_global_lstm_feed", "rnn-attention", "lstm", "location", "global", True, 1, 1,
     [4, 2, 6], [5, 5, 2]),
    ("additive_localm_gru_feed", "rnn-attention", "gru", "additive", "local-m", True, 1, 1,
     [2, 5, 3], [8, 3, 6]),
    ("general_localm_lstm_nofeed", "rnn-attention", "lstm", "general", "local-m", False, 1, 1,
     [5, 1, 3], [4, 7, 3]),
    ("concat_localm_lstm_feed", "rnn-attention", "lstm", "concat", "local-m", True, 1, 1,
     [1, 4, 6], [7, 2, 5]),
    ("dot_localp_gru_feed", "rnn-attention", "gru", "dot", "local-p", True, 1, 1,
     [6, 3, 5], [4, 5, 2]),
    ("additive_localp_lstm_nofeed", "rnn-attention", "lstm", "additive", "local-p", False, 1, 1,
     [3, 6, 4], [5, 2, 6]),
    ("location_localp_gru_nofeed", "rnn-attention", "gru", "location", "local-p", False, 1, 1,
     [5, 2, 6], [3, 6, 4]),
    ("additive_global_lstm_feed_2x2", "rnn-attention", "lstm", "additive", "global", True, 2, 2,
     [4, 6, 2], [5, 3, 6]),
    ("general_localm_gru_feed_2x3", "rnn-attention", "gru", "general", "local-m", True, 2, 3,
     [3, 5, 6], [6, 2, 4]),
]

SRC_VOCAB, TGT_VOCAB, EMBED, HIDDEN, ATTN, WINDOW, MAX_SRC = 23, 19, 6, 8, 7, 2, 9

# The wirings, the qkv score, the encoder self-attention and teacher forcing below 1: (name, arch,
# cell, score, window, input_feeding, wiring, encoder_self_attention, teacher_forcing,
# encoder_layers, decoder_layers, src_lengths, tgt_lengths). Together: every wiring with GRU and
# LSTM, bahdanau with every score and window, the qkv score in luong (with and without input
# feeding) and bahdanau, both self-attentions under every wiring and the fixed-context baseline,
# stacked layers, a tutorial source as long as max_source_len, and teacher forcing 0.5 under every
# wiring (with attend's coins).
WIRING_VARIANTS = [
    ("qkv_global_gru_feed", "rnn-attention", "gru", "qkv", "global", True, "luong", "none", 1.0,
     1, 1, [5, 2, 4], [6, 3, 2]),
    ("qkv_localm_lstm_nofeed", "rnn-attention", "lstm", "qkv", "local-m", False, "luong", "none",
     1.0, 1, 1, [4, 6, 2], [3, 5, 4]),
    ("bahdanau_additive_gru", "rnn-attention", "gru", "additive", "global", True, "bahdanau",
     "none", 1.0, 1, 1, [5, 2, 4], [6, 3, 2]),
    ("bahdanau_additive_lstm", "rnn-attention", "lstm", "additive", "global", False, "bahdanau",
     "none", 1.0, 1, 1, [3, 6, 1], [5, 2, 4]),
    ("bahdanau_dot_localm_gru", "rnn-attention", "gru", "dot", "local-m", True, "bahdanau",
     "none", 1.0, 1, 1, [2, 5, 3], [8, 3, 6]),
    ("bahdanau_general_localp_lstm", "rnn-attention", "lstm", "general", "local-p", True,
     "bahdanau", "none", 1.0, 1, 1, [6, 3, 5], [4, 5, 2]),
    ("bahdanau_location_gru", "rnn-attention", "gru", "location", "global", True, "bahdanau",
     "none", 1.0, 1, 1, [4, 2, 6], [5, 5, 2]),
    ("bahdanau_concat_lstm_2x2", "rnn-attention", "lstm", "concat", "global", True, "bahdanau",
     "none", 1.0, 2, 2, [4, 6, 2], [5, 3, 6]),
    ("bahdanau_qkv_gru", "rnn-attention", "gru", "qkv", "global", True, "bahdanau", "none", 1.0,
     1, 1, [3, 5, 6], [6, 2, 4]),
    ("tutorial_gru", "rnn-attention", "gru", "additive", "global", True, "tutorial", "none", 1.0,
     1, 1, [9, 4, 6], [6, 3, 2]),
    ("tutorial_lstm_1x2", "rnn-attention", "lstm", "additive", "global", False, "tutorial",
     "none", 1.0, 1, 2, [5, 2, 4], [3, 6, 4]),
    ("self_dot_luong_gru", "rnn-attention", "gru", "additive", "global", True, "luong", "dot",
     1.0, 1, 1, [5, 2, 4], [6, 3, 2]),
    ("self_qkv_luong_lstm_nofeed", "rnn-attention", "lstm", "general", "global", False, "luong",
     "qkv", 1.0, 2, 1, [4, 6, 1], [3, 5, 4]),
    ("self_dot_bahdanau_lstm", "rnn-attention", "lstm", "qkv", "global", True, "bahdanau", "dot",
     1.0, 1, 1, [3, 6, 2], [5, 2, 4]),
    ("self_qkv_bahdanau_gru", "rnn-attention", "gru", "additive", "local-p", True, "bahdanau",
     "qkv", 1.0, 1, 1, [6, 3, 5], [4, 5, 2]),
    ("self_dot_tutorial_gru", "rnn-attention", "gru", "additive", "global", True, "tutorial",
     "dot", 1.0, 1, 1, [5, 2, 4], [6, 3, 2]),
    ("self_qkv_tutorial_lstm", "rnn-attention", "lstm", "additive", "global", True, "tutorial",
     "qkv", 1.0, 1, 1, [4, 6, 2], [3, 5, 4]),
    ("self_dot_rnn_gru", "rnn", "gru", "additive", "global", True, "luong", "dot", 1.0, 1, 1,
     [5, 2, 4], [6, 3, 2]),
    ("self_qkv_rnn_lstm_2x1", "rnn", "lstm", "additive", "global", False, "luong", "qkv", 1.0, 2,
     1, [3, 5, 1], [2, 7, 4]),
    ("tf_luong_gru_feed", "rnn-attention", "gru", "additive", "global", True, "luong", "none",
     0.5, 1, 1, [5, 2, 4, 3], [6, 3, 5, 4]),
    ("tf_luong_lstm_nofeed", "rnn-attention", "lstm", "dot", "global", False, "luong", "none",
     0.5, 1, 1, [4, 6, 2, 5], [5, 4, 6, 3]),
    ("tf_bahdanau_gru", "rnn-attention", "gru", "additive", "global", True, "bahdanau", "none",
     0.5, 1, 1, [3, 5, 6, 2], [6, 4, 5, 3]),
    ("tf_bahdanau_lstm_qkv_self", "rnn-attention", "lstm", "qkv", "global", True, "bahdanau",
     "qkv", 0.5, 1, 1, [6, 2, 4, 5], [4, 6, 3, 5]),
    ("tf_tutorial_gru", "rnn-attention", "gru", "additive", "global", True, "tutorial", "none",
     0.5, 1, 1, [5, 3, 6, 2], [5, 6, 3, 4]),
    ("tf_tutorial_lstm_self_dot", "rnn-attention", "lstm", "additive", "global", True, "tutorial",
     "dot", 0.5, 1, 2, [4, 6, 3, 5], [6, 3, 5, 4]),
]
TF_SEED = 9001

# The Advanced LSTM cell (Tao and Liu 2018) in every recurrent place: (name, arch, score, window,
# input_feeding, wiring, encoder_self_attention, teacher_forcing, history, encoder_layers,
# decoder_layers, src_lengths, tgt_lengths). Together: every wiring (luong with and without input
# feeding, the latter decoding the whole target in one call), the fixed-context baseline,
# K = 1, 2 and 3, two encoder and two decoder layers, teacher forcing 0.5 under luong and
# bahdanau, a self-attention over its encoder; K larger than the shortest source and target.
ADVANCED_VARIANTS = [
    ("alstm_luong_feed_k2", "rnn-attention", "additive", "global", True, "luong", "none", 1.0, 2,
     1, 1, [5, 2, 4], [6, 3, 2]),
    ("alstm_luong_nofeed_k3_2x2", "rnn-attention", "general", "global", False, "luong", "none",
     1.0, 3, 2, 2, [4, 6, 2], [5, 3, 6]),
    ("alstm_bahdanau_k3", "rnn-attention", "additive", "global", True, "bahdanau", "none", 1.0,
     3, 1, 1, [3, 6, 1], [5, 2, 4]),
    ("alstm_bahdanau_k1_2x1", "rnn-attention", "dot", "local-m", True, "bahdanau", "none", 1.0,
     1, 2, 1, [2, 5, 3], [8, 3, 6]),
    ("alstm_tutorial_k2_1x2", "rnn-attention", "additive", "global", True, "tutorial", "none",
     1.0, 2, 1, 2, [9, 4, 6], [6, 3, 2]),
    ("alstm_tutorial_k1", "rnn-attention", "additive", "global", True, "tutorial", "qkv", 1.0, 1,
     1, 1, [5, 2, 4], [3, 6, 4]),
    ("alstm_rnn_k2", "rnn", "additive", "global", True, "luong", "none", 1.0, 2, 1, 1,
     [3, 5, 1], [2, 7, 4]),
    ("alstm_tf_luong_feed_k2", "rnn-attention", "additive", "global", True, "luong", "dot", 0.5,
     2, 1, 1, [5, 2, 4, 3], [6, 3, 5, 4]),
    ("alstm_tf_bahdanau_k3_2x1", "rnn-attention", "qkv", "global", True, "bahdanau", "none", 0.5,
     3, 2, 1, [3, 5, 6, 2], [6, 4, 5, 3]),
]
ADVANCED_TF_SEED = 9101

# Speech: (name, arch, cell, score, input_feeding, encoder_layers, pyramid_levels, sharpening,
#  frame_stacking, frames, tgt_lengths[, wiring, encoder_self_attention]). Odd and even frame
# counts at every level (a zero frame completes an odd level), the location-aware and the content
# score, the listener without attention, sharpening; the location-aware score under bahdanau's
# wiring, and a self-attention over the listener's steps.
SPEECH_VARIANTS = [
    ("las_location_lstm_feed", "rnn-attention", "lstm", "location-aware", True, 1, 2, 1.0, 1,
     [9, 5, 12], [4, 6, 3]),
    ("las_location_gru_nofeed_sharp", "rnn-attention", "gru", "location-aware", False, 2, 1, 2.0,
     1, [7, 10, 3], [5, 2, 6]),
    ("las_location_lstm_stack3", "rnn-attention", "lstm", "location-aware", True, 1, 1, 1.0, 3,
     [17, 8, 13], [4, 3, 5]),
    ("las_additive_lstm_feed", "rnn-attention", "lstm", "additive", True, 1, 2, 1.0, 2,
     [11, 6, 8], [3, 5, 4]),
    ("las_none_lstm_feed", "rnn", "lstm", "additive", True, 1, 3, 1.0, 1, [13, 4, 9], [6, 3, 5]),
    ("las_location_bahdanau_lstm", "rnn-attention", "lstm", "location-aware", True, 1, 2, 1.0, 1,
     [9, 5, 12], [4, 6, 3], "bahdanau", "none"),
    ("las_location_bahdanau_gru_self_qkv", "rnn-attention", "gru", "location-aware", True, 1, 1,
     2.0, 1, [7, 10, 3], [5, 2, 6], "bahdanau", "qkv"),
    ("las_additive_luong_lstm_self_dot", "rnn-attention", "lstm", "additive", True, 1, 2, 1.0, 2,
     [11, 6, 8], [3, 5, 4], "luong", "dot"),
]
FEATURES, LOC_FILTERS, LOC_WIDTH = 5, 3, 5
# Listen, Attend and Spell on Advanced LSTMs: (SPEECH_VARIANTS' fields, history). Two encoder
# layers under two pyramid levels (odd frame counts at each), the location-aware and the content
# score.
ADVANCED_SPEECH_VARIANTS = [
    ("las_location_alstm_k2", "rnn-attention", "advanced-lstm", "location-aware", True, 2, 2,
     1.0, 1, [9, 5, 12], [4, 6, 3], "luong", "none", 2),
    ("las_additive_alstm_k3_stack2", "rnn-attention", "advanced-lstm", "additive", False, 1, 1,
     1.0, 2, [11, 6, 8], [3, 5, 4], "bahdanau", "none", 3),
]


def make_batch(b, src_lengths, tgt_lengths):
    """src/tgt ids drawn from the non-special range, padded as nmt::MakeBatch does."""
    n = len(src_lengths)
    s, t = max(src_lengths), max(tgt_lengths) + 1
    src = torch.full((n, s), PAD, dtype=torch.int64)
    tgt_in = torch.full((n, t), PAD, dtype=torch.int64)
    tgt_out = torch.full((n, t), PAD, dtype=torch.int64)
    for r in range(n):
        src[r, :src_lengths[r]] = b.randint(4, SRC_VOCAB, src_lengths[r])
        y = b.randint(4, TGT_VOCAB, tgt_lengths[r])
        tgt_in[r, 0] = BOS
        tgt_in[r, 1:tgt_lengths[r] + 1] = y
        tgt_out[r, :tgt_lengths[r]] = y
        tgt_out[r, tgt_lengths[r]] = EOS
    return src, torch.tensor(src_lengths, dtype=torch.int64), tgt_in, tgt_out


def record_case(b, name, key, model, src, src_len, tgt_in, tgt_out, coins=None):
    """Runs the batch through `model` (forward, label-smoothed loss, backward) and records the
    batch, every parameter, the logits, the attention, the loss and every gradient. With
    `coins` (teacher forcing below 1), also the coins' state and every coin flipped."""
    tf_state = None if coins is None else torch.tensor([coins.seed, coins.counter])
    logits, weights = model(src, src_len, tgt_in, want_weights=True, coins=coins)
    margins = list(getattr(model, "sampled_margins", []))
    if coins is not None:
        # The case must test the sampling: some coins feed predictions, and those change the
        # logits (against teacher forcing 1 on the same weights) ...
        if all(coins.drawn) or not any(coins.drawn):
            raise ValueError("case %s: the coins %s do not mix both inputs" % (name, coins.drawn))
        ratio = model.cfg.teacher_forcing
        model.cfg.teacher_forcing = 1.0
        with torch.no_grad():
            forced, _ = model(src, src_len, tgt_in)
        model.cfg.teacher_forcing = ratio
        if (forced - logits.detach()).abs().max() < 1e-3:
            raise ValueError("case %s: the sampled words change nothing" % name)
    if margins and min(margins) < 1e-3:
        # ... and every greedy prediction fed is clear of a tie, so that float rounding cannot
        # make attend pick another word.
        raise ValueError("case %s: a greedy prediction is a near tie (%g)" % (name, min(margins)))
    loss = F.cross_entropy(logits.reshape(-1, TGT_VOCAB), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    tensors = [("src", src), ("src_lengths", src_len), ("tgt_in", tgt_in), ("tgt_out", tgt_out)]
    if coins is not None:
        tensors += [("tf_state", tf_state), ("coins", torch.tensor(coins.drawn, dtype=torch.bool))]
    params = list(model.named_parameters())
    tensors += [("p:" + n, p.detach().clone()) for n, p in params]
    tensors.append(("logits", logits.detach()))
    if weights is not None:
        tensors.append(("attention", weights.detach()))
    tensors.append(("loss", loss.detach()))
    for n, p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad:" + n, g.detach()))
    b.names.add(name)
    b.cases.append((name, key, tensors))


def variant_case(b, index, variant):
    (name, arch, cell, score, window, feed, enc_layers, dec_layers, src_lengths,
     tgt_lengths) = variant
    cfg = RnnConfig(arch=arch, src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB, dropout=0.0, cell=cell,
                    embed_dim=EMBED, hidden_dim=HIDDEN, encoder_layers=enc_layers,
                    decoder_layers=dec_layers, score=score, attention_dim=ATTN, window=window,
                    window_size=WINDOW, max_source_len=MAX_SRC, input_feeding=feed,
                    teacher_forcing=1.0)
    # torch's own initialisers (the ones attend's modules copy), seeded per case.
    torch.manual_seed(1000 + index)
    model = RnnSeq2Seq(cfg)
    model.train()  # dropout is 0 and teacher forcing 1: train mode changes nothing but is tested
    src, src_len, tgt_in, tgt_out = make_batch(b, src_lengths, tgt_lengths)
    key = op_key("seq2seq", arch=arch, cell=cell, score=score, window=window,
                 input_feeding=feed, src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB, embed=EMBED,
                 hidden=HIDDEN, attention_dim=ATTN, window_size=WINDOW, max_source_len=MAX_SRC,
                 encoder_layers=enc_layers, decoder_layers=dec_layers,
                 label_smoothing=LABEL_SMOOTHING)
    record_case(b, name, key, model, src, src_len, tgt_in, tgt_out)


def wiring_case(b, index, variant, history=None, seed=3000, tf_seed=TF_SEED):
    """A case of WIRING_VARIANTS; with `history` one of ADVANCED_VARIANTS (seeded apart)."""
    (name, arch, cell, score, window, feed, wiring, self_attention, teacher_forcing, enc_layers,
     dec_layers, src_lengths, tgt_lengths) = variant
    cfg = RnnConfig(arch=arch, src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB, dropout=0.0, cell=cell,
                    embed_dim=EMBED, hidden_dim=HIDDEN, encoder_layers=enc_layers,
                    decoder_layers=dec_layers, score=score, attention_dim=ATTN, window=window,
                    window_size=WINDOW, max_source_len=MAX_SRC, input_feeding=feed,
                    teacher_forcing=teacher_forcing, wiring=wiring,
                    encoder_self_attention=self_attention)
    if history is not None:
        cfg.history = history
    torch.manual_seed(seed + index)
    model = RnnSeq2Seq(cfg)
    model.train()  # teacher forcing below 1 samples in training mode only
    src, src_len, tgt_in, tgt_out = make_batch(b, src_lengths, tgt_lengths)
    key = op_key("seq2seq", arch=arch, cell=cell, score=score, window=window,
                 input_feeding=feed, src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB, embed=EMBED,
                 hidden=HIDDEN, attention_dim=ATTN, window_size=WINDOW, max_source_len=MAX_SRC,
                 encoder_layers=enc_layers, decoder_layers=dec_layers,
                 label_smoothing=LABEL_SMOOTHING, wiring=wiring,
                 encoder_self_attention=self_attention, teacher_forcing=teacher_forcing,
                 history=history)
    coins = AttendCoins(tf_seed + index) if teacher_forcing < 1.0 else None
    record_case(b, name, key, model, src, src_len, tgt_in, tgt_out, coins)


def speech_case(b, index, variant, seed=2000):
    """A case of SPEECH_VARIANTS, or (seed apart, with a history) ADVANCED_SPEECH_VARIANTS."""
    (name, arch, cell, score, feed, enc_layers, levels, sharpening, stacking, frames,
     tgt_lengths) = variant[:11]
    wiring, self_attention = variant[11:13] if len(variant) > 11 else ("luong", "none")
    history = variant[13] if len(variant) > 13 else None
    cfg = RnnConfig(arch=arch, src_vocab=0, tgt_vocab=TGT_VOCAB, dropout=0.0, cell=cell,
                    embed_dim=EMBED, hidden_dim=HIDDEN, encoder_layers=enc_layers,
                    decoder_layers=1, score=score, attention_dim=ATTN, window="global",
                    window_size=WINDOW, max_source_len=MAX_SRC, input_feeding=feed,
                    teacher_forcing=1.0, feature_dim=FEATURES, pyramid_levels=levels,
                    location_filters=LOC_FILTERS, location_width=LOC_WIDTH,
                    sharpening=sharpening, frame_stacking=stacking, wiring=wiring,
                    encoder_self_attention=self_attention)
    if history is not None:
        cfg.history = history
    torch.manual_seed(seed + index)
    model = RnnSeq2Seq(cfg)
    model.train()
    _, _, tgt_in, tgt_out = make_batch(b, [1] * len(frames), tgt_lengths)
    n, s = len(frames), max(frames)
    src = torch.zeros(n, s, FEATURES)
    for r in range(n):
        src[r, :frames[r]] = b.randn(frames[r], FEATURES)
    src_len = torch.tensor(frames, dtype=torch.int64)
    key = op_key("seq2seq", arch=arch, cell=cell, score=score, window="global",
                 input_feeding=feed, src_vocab=0, tgt_vocab=TGT_VOCAB, embed=EMBED,
                 hidden=HIDDEN, attention_dim=ATTN, window_size=WINDOW, max_source_len=MAX_SRC,
                 encoder_layers=enc_layers, decoder_layers=1, label_smoothing=LABEL_SMOOTHING,
                 feature_dim=FEATURES, pyramid_levels=levels, location_filters=LOC_FILTERS,
                 location_width=LOC_WIDTH, sharpening=sharpening, frame_stacking=stacking,
                 wiring=None if len(variant) <= 11 else wiring,
                 encoder_self_attention=None if len(variant) <= 11 else self_attention,
                 history=history)
    record_case(b, name, key, model, src, src_len, tgt_in, tgt_out)


def build_cases(seed):
    b = Builder(seed)
    for i, v in enumerate(VARIANTS):
        variant_case(b, i, v)
    for i, v in enumerate(SPEECH_VARIANTS):
        speech_case(b, i, v)
    for i, v in enumerate(WIRING_VARIANTS):
        wiring_case(b, i, v)
    for i, v in enumerate(ADVANCED_VARIANTS):
        wiring_case(b, i, v[:2] + ("advanced-lstm",) + v[2:8] + v[9:], history=v[8], seed=4000,
                    tf_seed=ADVANCED_TF_SEED)
    for i, v in enumerate(ADVANCED_SPEECH_VARIANTS):
        speech_case(b, i, v, seed=5000)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240721)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
