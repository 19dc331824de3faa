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
from rnn_model import RnnConfig, RnnSeq2Seq, PAD, BOS, EOS  # noqa: E402

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

# Speech: (name, arch, cell, score, input_feeding, encoder_layers, pyramid_levels, sharpening,
#  frame_stacking, frames, tgt_lengths). Odd and even frame counts at every level (a zero frame completes an odd
# level), the location-aware and the content score, the listener without attention, sharpening.
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
]
FEATURES, LOC_FILTERS, LOC_WIDTH = 5, 3, 5


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


def record_case(b, name, key, model, src, src_len, tgt_in, tgt_out):
    """Runs the batch through `model` (forward, label-smoothed loss, backward) and records the
    batch, every parameter, the logits, the attention, the loss and every gradient."""
    logits, weights = model(src, src_len, tgt_in, want_weights=True)
    loss = F.cross_entropy(logits.reshape(-1, TGT_VOCAB), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    tensors = [("src", src), ("src_lengths", src_len), ("tgt_in", tgt_in), ("tgt_out", tgt_out)]
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


def speech_case(b, index, variant):
    (name, arch, cell, score, feed, enc_layers, levels, sharpening, stacking, frames,
     tgt_lengths) = variant
    cfg = RnnConfig(arch=arch, src_vocab=0, tgt_vocab=TGT_VOCAB, dropout=0.0, cell=cell,
                    embed_dim=EMBED, hidden_dim=HIDDEN, encoder_layers=enc_layers,
                    decoder_layers=1, score=score, attention_dim=ATTN, window="global",
                    window_size=WINDOW, max_source_len=MAX_SRC, input_feeding=feed,
                    teacher_forcing=1.0, feature_dim=FEATURES, pyramid_levels=levels,
                    location_filters=LOC_FILTERS, location_width=LOC_WIDTH,
                    sharpening=sharpening, frame_stacking=stacking)
    torch.manual_seed(2000 + index)
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
                 location_width=LOC_WIDTH, sharpening=sharpening, frame_stacking=stacking)
    record_case(b, name, key, model, src, src_len, tgt_in, tgt_out)


def build_cases(seed):
    b = Builder(seed)
    for i, v in enumerate(VARIANTS):
        variant_case(b, i, v)
    for i, v in enumerate(SPEECH_VARIANTS):
        speech_case(b, i, v)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240721)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
