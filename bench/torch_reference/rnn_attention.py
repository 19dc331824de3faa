#!/usr/bin/python3
# PyTorch reference trainer for `attend train --arch rnn-attention`: same model, data and schedule.
"""Trains attend's RNN encoder-decoder with attention in PyTorch, then greedy-translates a test set.

The model is bench/torch_reference/rnn_model.py (checked against attend's C++ model weight for
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
import argparse
import json
import os
import sys
import time

# torch (and the BLAS it loads) read their thread settings when first imported.
if __name__ == "__main__" and "--threads" in sys.argv:
    _n = sys.argv[sys.argv.index("--threads") + 1]
    os.environ.setdefault("OMP_NUM_THREADS", _n)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", _n)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import common  # noqa: E402
from rnn_model import RnnConfig, RnnSeq2Seq  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="corpus dir: train.SRC/TGT, test.SRC/TGT")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--vocab", required=True, help="the vocab.model `attend train` wrote")
    ap.add_argument("--max-train", type=int, default=0, help="first N training pairs (0 = all)")
    ap.add_argument("--test-split", default="test", help="split translated after training")
    ap.add_argument("--output", default="", help="file for the test translations")
    # Stop conditions and speed.
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    # attend train's defaults (tools/attend/train_command.cc, models.h, nmt.h).
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--clip-norm", type=float, default=1.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=50)
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
    ap.add_argument("--dropout", type=float, default=0.1)
    # Search (nmt::SearchOptions' defaults, beam 1).
    ap.add_argument("--batch-size", type=int, default=32, help="sentences decoded together")
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    a = ap.parse_args(argv)
    if a.steps <= 0 and a.minutes <= 0:
        ap.error("set --steps or --minutes")
    return a


def main(argv):
    a = parse_args(argv)
    common.set_threads(a.threads)
    torch.manual_seed(a.seed)
    vocab = common.Vocabulary(a.vocab)
    train_pairs = common.read_split(a.data, "train", a.src, a.tgt, a.max_train)
    examples, dropped = common.encode_pairs(vocab, train_pairs, a.max_len)
    if not examples:
        sys.exit("rnn_attention.py: no training pairs left in %s" % a.data)
    cfg = RnnConfig(arch="rnn-attention", src_vocab=vocab.size(), tgt_vocab=vocab.size(),
                    dropout=a.dropout, cell=a.cell, embed_dim=a.embed_dim,
                    hidden_dim=a.hidden_dim, encoder_layers=a.encoder_layers,
                    decoder_layers=a.decoder_layers, score=a.score,
                    attention_dim=a.attention_dim, window=a.window,
                    window_size=a.window_size, max_source_len=a.max_source_len,
                    input_feeding=not a.no_input_feeding)
    model = RnnSeq2Seq(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print("torch %s, %d threads: rnn-attention, %d parameters, %d training pairs (%d dropped), "
          "vocabulary %d" % (torch.__version__, torch.get_num_threads(), n_params,
                             len(examples), dropped, vocab.size()), flush=True)

    def forward(batch):
        return model(batch.src, batch.src_lengths, batch.tgt_in)[0]

    t = common.train(model, forward, examples, a.max_tokens, a.lr, a.warmup, a.clip_norm,
                     a.label_smoothing, a.seed, max_steps=a.steps, max_minutes=a.minutes,
                     log_every=a.log_every, log=lambda s: print(s, flush=True))
    train_tps = t["tgt_tokens"] / t["seconds"]
    all_tps = t["all_tokens"] / t["seconds"]
    print("train: %d steps in %.1f s (%s), %.0f target tokens/s, %.0f source+target tokens/s, "
          "loss %.3f" % (t["steps"], t["seconds"], t["stop"], train_tps, all_tps, t["loss"]),
          flush=True)

    lines = common.read_lines(os.path.join(a.data, "%s.%s" % (a.test_split, a.src)))
    t0 = time.perf_counter()
    sources = [vocab.encode(line) for line in lines]
    hyps = common.greedy_translate(model, sources, batch_size=a.batch_size)
    seconds = time.perf_counter() - t0
    text = [vocab.decode(h) for h in hyps]
    print("translate: %d sentences in %.3f s: %.2f sentences/s" %
          (len(lines), seconds, len(lines) / seconds), flush=True)
    if a.output:
        tmp = a.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in text))
        os.replace(tmp, a.output)
    if a.json:
        result = {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                  "steps": t["steps"], "train_seconds": t["seconds"],
                  "target_tokens_per_s": train_tps, "tokens_per_s": all_tps,
                  "final_loss": t["loss"], "sentences": len(lines),
                  "translate_seconds": seconds, "sentences_per_s": len(lines) / seconds}
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
