#!/usr/bin/python3
# PyTorch reference trainer for `attend train --arch rnn-attention`: same model, data and schedule.
"""Trains attend's RNN encoder-decoder with attention in PyTorch, then greedy-translates a test set.

The model is tests/reference/models/rnn_model.py (checked against attend's C++ model weight for
weight by tests/reference/seq2seq_reference.py), with `attend train`'s defaults: GRU, embed 256,
hidden 256 (128 per encoder direction), additive score with attention size 256, global window,
input feeding, dropout 0.1. The data is encoded with the SentencePiece model `attend train` wrote
(OUT/vocab.model) and batched by nmt::MakeBatches' rule with the same seed, so both sides see the
same batches in the same order; Adam(0.9, 0.98, eps 1e-9) with the same warm-up / inverse-sqrt
schedule, gradient clipping and label smoothing. Prints training target tokens/s (and source +
target tokens/s, the measure of attend's progress bar), then sentences/s of batched greedy
decoding (encoding included, as `attend translate --timing`), and writes the detokenized
translations so that `attend score` gives BLEU and chrF.

  /usr/bin/python3 bench/torch_reference/rnn_attention.py --data CORPUS --vocab OUT/vocab.model \\
      --steps 300 --threads 2 --output torch.hyp
Run it with Debian's /usr/bin/python3 (python3-torch, python3-sentencepiece).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The model is the one the tests check attend against (tests/reference/models/).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "reference", "models"))
if __name__ == "__main__":
    import thread_env  # noqa: E402,F401  (before torch: --threads into the environment)
import common  # noqa: E402
from rnn_model import RnnConfig, RnnSeq2Seq  # noqa: E402


def main(argv):
    ap = common.argument_parser(__doc__)
    ap.add_argument("--cell", default="gru")
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--hidden-dim", type=int, default=256)
    ap.add_argument("--encoder-layers", type=int, default=1)
    ap.add_argument("--decoder-layers", type=int, default=1)
    ap.add_argument("--score", default="additive")
    ap.add_argument("--attention-dim", type=int, default=256)
    ap.add_argument("--window", default="global")
    ap.add_argument("--window-size", type=int, default=5)
    ap.add_argument("--max-source-len", type=int, default=256)
    ap.add_argument("--no-input-feeding", action="store_true")
    a = common.parse(ap, argv)

    def make_model(vocab_size):
        cfg = RnnConfig(arch="rnn-attention", src_vocab=vocab_size, tgt_vocab=vocab_size,
                        dropout=a.dropout, cell=a.cell, embed_dim=a.embed_dim,
                        hidden_dim=a.hidden_dim, encoder_layers=a.encoder_layers,
                        decoder_layers=a.decoder_layers, score=a.score,
                        attention_dim=a.attention_dim, window=a.window,
                        window_size=a.window_size, max_source_len=a.max_source_len,
                        input_feeding=not a.no_input_feeding)
        return RnnSeq2Seq(cfg)

    def forward(model, batch):
        return model(batch.src, batch.src_lengths, batch.tgt_in)[0]

    return common.run(a, "rnn-attention", make_model, forward)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
