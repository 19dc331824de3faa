"""attend.models: the C++ sequence-to-sequence models as modules driven from Python. A batch as
the trainer pads it, the trainer's loss, attention weights, a training loop that learns, a
trained checkpoint decoded greedily by hand from Python giving the C++ search's output, and
clear errors."""
import numpy as np
import pytest
import torch

import attend

V = 30


def tiny(arch="rnn-attention", **kw):
    opts = dict(embed_dim=8, hidden_dim=12, attention_dim=8, dropout=0.0)
    if arch == "transformer":
        opts = dict(d_model=8, heads=2, ff_dim=16, layers=1, dropout=0.0)
    opts.update(kw)
    return attend.models.make_model(arch, src_vocab=V, tgt_vocab=V, seed=3, **opts)


SRC = [[5, 6, 7, 8], [9, 10], [11, 12, 13]]
TGT = [[6, 7], [10, 11, 12, 13, 14], [1]]


def test_batch_is_padded_as_the_trainer_pads():
    b = attend.models.make_batch(SRC, TGT)
    src = b.src.numpy()
    assert src.shape == (3, 4) and b.src_lengths.numpy().tolist() == [4, 2, 3]
    assert src[1].tolist() == [9, 10, 0, 0]
    assert b.tgt_in.numpy()[1].tolist() == [2, 10, 11, 12, 13, 14]
    assert b.tgt_out.numpy()[0].tolist() == [6, 7, 3, 0, 0, 0]
    assert b.src_tokens == 9 and b.tgt_tokens == 3 + 6 + 2
    assert "sentences=3" in repr(b)


@pytest.mark.parametrize("arch", ["rnn-attention", "transformer", "rnn"])
def test_forward_loss_and_attention(arch):
    model = tiny(arch)
    assert isinstance(model, attend.nn.Module) and model.config["arch"] == arch
    b = attend.models.make_batch(SRC, TGT)
    logits = model(b)
    assert tuple(logits.shape) == (3, 6, V)
    # The trainer's loss is cross-entropy with padding ignored and label smoothing; PyTorch on
    # the same logits gives the same number.
    loss = model.loss(b, label_smoothing=0.1)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits.detach().numpy().reshape(-1, V)),
                                            torch.from_numpy(b.tgt_out.numpy().reshape(-1)),
                                            ignore_index=0, label_smoothing=0.1)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    out, weights = model(b, attention=True)
    if arch == "rnn":
        assert weights is None
    else:
        w = weights.detach().numpy()
        assert w.shape == (3, 6, 4)
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
        assert np.all(w[1, :, 2:] == 0)  # padded source positions get no weight
        np.testing.assert_array_equal(out.detach().numpy(), logits.detach().numpy())


def test_a_python_training_loop_learns_to_copy():
    model = tiny(hidden_dim=24, embed_dim=16)
    rng = np.random.default_rng(0)
    opt = attend.optim.Adam(model.parameters(), lr=3e-2)
    first = None
    for step in range(60):
        src = [list(map(int, rng.integers(4, V, size=4))) for _ in range(16)]
        b = attend.models.make_batch(src, src)
        loss = model.loss(b, label_smoothing=0.0)
        first = first if first is not None else loss.item()
        loss.backward()
        attend.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    assert loss.item() < 0.5 * first


def test_greedy_by_hand_from_python_equals_the_search(tmp_path):
    data = tmp_path / "syn"
    attend.build_synthetic_corpus(str(data), seed=3, train=300, dev=10, test=10, max_words=8,
                                  max_depth=1)
    summary = attend.train(str(data), src="src", tgt="tgt", out=str(tmp_path / "m"),
                           embed_dim=16, hidden_dim=16, attention_dim=16, vocab_type="word",
                           vocab_size=200, max_tokens=300, max_steps=60, valid_every=60,
                           valid_sentences=2, lr=1e-2, warmup=5, threads=1)
    translator = attend.load_translator(summary["checkpoint"])
    loaded = attend.models.load_model(summary["checkpoint"])
    state = translator.model.state_dict()
    for k, v in loaded.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k].numpy())
    loaded.eval()
    with attend.no_grad():
        for line in (data / "test.src").read_text().splitlines()[:5]:
            src = translator.encode(line)
            want = translator.translate([line], beam=1)[0].token_ids
            got = []
            for _ in range(2 * len(src) + 10):
                logits = loaded(attend.models.make_batch([src], [got]))
                nxt = int(np.argmax(logits.numpy()[0, -1]))
                if nxt == 3:
                    break
                got.append(nxt)
            assert got == want, line


def test_errors_are_clear():
    model = tiny()
    with pytest.raises(attend.Error, match="sources but"):
        attend.models.make_batch([[5]], [[5], [6]])
    with pytest.raises(attend.Error, match="source 0 is empty"):
        attend.models.make_batch([[]], [[5]])
    with pytest.raises(attend.Error, match="holds id 0"):
        attend.models.make_batch([[5, 0]], [[5]])
    with pytest.raises(attend.Error, match="vocabulary has 30"):
        model(attend.models.make_batch([[5, 99]], [[5]]))
    with pytest.raises(attend.Error, match="unknown option 'hiden_dim'"):
        attend.models.make_model("rnn-attention", src_vocab=V, tgt_vocab=V, hiden_dim=3)
    with pytest.raises(attend.Error, match="arch"):
        attend.models.make_model("lstm-of-doom", src_vocab=V, tgt_vocab=V)
    with pytest.raises(attend.Error, match="must be > 4"):
        attend.models.make_model("rnn", src_vocab=2, tgt_vocab=V)
    with pytest.raises(attend.Error, match="seed"):
        attend.models.make_model("rnn", src_vocab=V, tgt_vocab=V, seed=-1)
    with pytest.raises(attend.Error, match="label_smoothing"):
        model.loss(attend.models.make_batch(SRC, TGT), label_smoothing=1.0)
    with pytest.raises(TypeError):
        model(None)
    with pytest.raises(TypeError):
        attend.models.make_model("rnn", src_vocab=V, tgt_vocab=V, hidden_dim="big")
    with pytest.raises(attend.Error):
        attend.models.load_model("/nonexistent/model.ckpt")
