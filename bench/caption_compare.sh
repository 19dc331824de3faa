#!/usr/bin/env bash
# Trains attend's image captioner (Show, Attend and Tell) and its PyTorch mirror for the same
# steps on the same data and prints one table of training throughput: bench/seq2seq_compare.sh
# --task caption, where the details are (or run this with --help).
#
#   bash bench/caption_compare.sh [--data DIR] [--steps N] [--threads "1 2"] [--build DIR]
#                                 [--out DIR] [--max-train N] [-- model / training options]
exec bash "$(dirname "$0")/seq2seq_compare.sh" --task caption "$@"
