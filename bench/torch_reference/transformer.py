#!/usr/bin/python3
# PyTorch reference trainer for `attend train --arch transformer`: same model, data and schedule.
"""Trains attend's Transformer in PyTorch, then greedy-translates a test set with a KV cache.

The model is tests/reference/models/transformer_model.py (checked against attend's C++ model
weight for weight by tests/reference/transformer_reference.py), with `attend train --arch
transformer`'s defaults: d_model 256, 4 heads, feed-forward 1024, 3 layers per stack, pre-norm,
shared source/target/output embeddings, dropout 0.1, 1024 positions. Data, vocabulary, batches,
optimiser, schedule, label smoothing, search, timing and output are common.py's, as for
rnn_attention.py. Decoding is incremental: each step projects one position and attends over the
cached keys and values of the earlier ones, as attend's Transformer::Step does.

  /usr/bin/python3 bench/torch_reference/transformer.py --data CORPUS --vocab OUT/vocab.model \\
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
from transformer_model import Transformer  # noqa: E402


def main(argv):
    ap = common.argument_parser(__doc__)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff-dim", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=3, help="layers per stack")
    ap.add_argument("--post-norm", action="store_true", help="post-norm (default pre-norm)")
    ap.add_argument("--no-share-embeddings", action="store_true")
    ap.add_argument("--max-positions", type=int, default=1024)
    a = common.parse(ap, argv)

    def make_model(vocab_size):
        return Transformer(pre_norm=not a.post_norm, share=not a.no_share_embeddings,
                           src_vocab=vocab_size, tgt_vocab=vocab_size, d=a.d_model,
                           heads=a.heads, ff=a.ff_dim, layers=a.layers, max_pos=a.max_positions,
                           dropout=a.dropout)

    def forward(model, batch):
        return model(batch.src, batch.src_lengths, batch.tgt_in)

    return common.run(a, "transformer", make_model, forward)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
