# The named model presets of the translation comparisons in docs/results.md, shared by
# bench/translation_experiments.sh (quality) and bench/translation_speed.sh (speed). Sourced;
# preset NAME prints the model options of NAME (guided alignment reads $DATA/train.align).
preset() {
  case "$1" in
    rnn) echo "--arch rnn" ;;
    rnn-attention-*) echo "--arch rnn-attention --score ${1#rnn-attention-}" ;;
    luong) echo "--arch rnn-attention --score additive --wiring luong" ;;
    bahdanau) echo "--arch rnn-attention --score additive --wiring bahdanau" ;;
    bahdanau-dot) echo "--arch rnn-attention --score dot --wiring bahdanau" ;;
    tutorial) echo "--arch rnn-attention --wiring tutorial" ;;
    encdec-dot) echo "--arch rnn-attention --score dot" ;;
    encdec-qkv) echo "--arch rnn-attention --score qkv" ;;
    self-dot) echo "--arch rnn-attention --score dot --encoder-self-attention dot" ;;
    self-qkv) echo "--arch rnn-attention --score qkv --encoder-self-attention qkv" ;;
    advanced-lstm) echo "--arch rnn-attention --score additive --cell advanced-lstm" ;;
    lstm) echo "--arch rnn-attention --score additive --cell lstm" ;;
    pervasive) echo "--arch pervasive" ;;
    # The en-de table's: embeddings of 128 as in Elbayad et al. 2018 (the default 256 needs
    # ~20 GB for a batch of 2,048 tokens), the other models keeping theirs.
    pervasive-128) echo "--arch pervasive --embed-dim 128" ;;
    transformer) echo "--arch transformer" ;;
    transparent) echo "--arch transformer --transparent" ;;
    # Guided alignment of one head (layer 0, head 1) towards the corpus's true links.
    transformer-guided)
      echo "--arch transformer --guided-alignment $DATA/train.align --alignment-layer 0 --alignment-head 1" ;;
    *) echo "translation_experiments: unknown model '$1'" >&2; return 1 ;;
  esac
}

