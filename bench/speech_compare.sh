#!/usr/bin/env bash
# Trains attend's speech model (Listen, Attend and Spell) and its PyTorch mirror for the same
# steps on the same data and prints one table of training throughput: bench/seq2seq_compare.sh
# --task speech, where the details are (or run this with --help).
#
#   bash bench/speech_compare.sh [--data DIR] [--steps N] [--threads "1 2"] [--build DIR]
#                                [--out DIR] [--max-train N] [-- model / training options]
exec bash "$(dirname "$0")/seq2seq_compare.sh" --task speech "$@"
