"""The toolkit from Python: a synthetic corpus, a tiny translation model trained from Python with
progress events, translation and scores that must equal what the `attend` command prints for the
same checkpoint and files, and attend.Error (not a crash) for bad paths and arguments."""
import json
import os
import pathlib
import signal
import subprocess
import threading

import numpy as np
import pytest

import attend

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("ATTEND_BIN_DIR", ROOT / "build")) / "attend"

# Besides the corpus's own test sentences: an empty line and words the model never saw.
EXTRA = ["", "the small dog sees a cat"]


def run_cli(*args, stdin=None):
    out = subprocess.run([str(BIN), *map(str, args)], input=stdin, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("synthetic")
    stats = attend.build_synthetic_corpus(str(d), seed=3, train=400, dev=20, test=20,
                                          max_words=10, max_depth=1)
    return d, stats


@pytest.fixture(scope="module")
def sources(corpus):
    return (corpus[0] / "test.src").read_text().splitlines()[:4] + EXTRA


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    data, _ = corpus
    out = tmp_path_factory.mktemp("model")
    events = []
    summary = attend.train(str(data), src="src", tgt="tgt", out=str(out), arch="rnn-attention",
                           embed_dim=32, hidden_dim=48, attention_dim=32, vocab_type="word",
                           vocab_size=200, max_tokens=400, max_steps=40, valid_every=20,
                           valid_sentences=5, log_every=10, lr=1e-2, warmup=5, threads=2,
                           seed=7, on_progress=events.append)
    return out, summary, events


def test_synthetic_corpus_files_and_stats(corpus):
    d, stats = corpus
    assert stats["sentences"] == {"train": 400, "dev": 20, "test": 20}
    assert stats["longest"] <= 10
    on_disk = json.loads((d / "stats.json").read_text())
    assert isinstance(on_disk, dict)
    for split in ("train", "dev", "test"):
        lines = (d / f"{split}.src").read_text().splitlines()
        assert len(lines) == stats["sentences"][split]
        assert sum(len(l.split()) for l in lines) == stats["src_words"][split]


def test_debian_corpus_builds_or_names_the_missing_directory(tmp_path):
    with pytest.raises(attend.Error, match="locale"):
        attend.build_debian_corpus(str(tmp_path / "out"), locale_dir=str(tmp_path / "none"))
    if os.path.isdir("/usr/share/locale/de/LC_MESSAGES"):
        try:
            stats = attend.build_debian_corpus(str(tmp_path / "deb"), tgt="de")
        except attend.Error as e:  # a machine without readable catalogs
            pytest.skip(str(e))
        assert stats["train"] == len((tmp_path / "deb" / "train.de").read_text().splitlines())
        assert stats["train"] + stats["dev"] + stats["test"] <= stats["pairs_before_split"]


def test_train_reports_progress_and_writes_checkpoints(trained):
    out, summary, events = trained
    assert summary["steps"] == 40 and summary["stop_reason"] == "steps"
    assert os.path.exists(summary["checkpoint"]) and os.path.exists(summary["last_checkpoint"])
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [10, 20, 30, 40]
    assert all(np.isfinite(e["loss"]) and e["loss"] > 0 for e in steps)
    assert all(e["tokens_per_second"] > 0 for e in steps)
    valid = [e for e in events if e["event"] == "validation"]
    assert [e["step"] for e in valid] == [20, 40]
    assert all("bleu" in e and "chrf" in e and e["dev_loss"] > 0 for e in valid)
    assert valid[0]["best"]
    assert events[-1]["event"] == "stopped" and events[-1]["stop_reason"] == "steps"
    # One event per log line, in order, with the numbers the line shows (rounded there).
    log = (out / "train.log").read_text().splitlines()
    assert [e["text"] for e in events] == log[-len(events):]
    for e in steps:
        assert f"loss {e['loss']:.3f}" in e["text"] and f"lr {e['lr']:.2e}" in e["text"]
    for e in valid:
        assert f"BLEU {e['bleu']:.2f}" in e["text"] and f"dev loss {e['dev_loss']:.4f}" in e["text"]


def translate_cli(ckpt, tmp_path, sources, *extra):
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(sources) + "\n")
    return run_cli("translate", "-m", ckpt, "-i", inp, "--threads", 2, *extra).split("\n")[:-1]


def test_translation_equals_the_command_line(trained, sources, tmp_path):
    out, summary, _ = trained
    ckpt = summary["checkpoint"]
    t = attend.load_translator(ckpt)
    for beam in (1, 4):
        py = t.translate(sources, beam=beam, threads=2)
        cli = translate_cli(ckpt, tmp_path, sources, "--beam", beam)
        assert [r.text for r in py] == cli
        assert all(isinstance(r.score, float) and r.score <= 0 for r in py)
        assert sum(len(r.token_ids) for r in py[:4]) >= 8  # the model writes something
    # n-best: "i ||| text ||| score" lines, best first.
    py = t.translate(sources, beam=4, nbest=3, threads=2)
    cli = translate_cli(ckpt, tmp_path, sources, "--beam", 4, "--nbest", 3)
    lines = [f"{i} ||| {h.text} ||| {h.score:.4f}" for i, r in enumerate(py) for h in r.hypotheses]
    assert lines == cli
    assert all(r.text == r.hypotheses[0].text for r in py)


def test_alignments_and_attention(trained, sources, tmp_path):
    _, summary, _ = trained
    ckpt = summary["checkpoint"]
    t = attend.load_translator(ckpt)
    py = t.translate(sources[:4], beam=4, alignments=True, attention=True, threads=2)
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(sources[:4]) + "\n")
    cli = run_cli("translate", "-m", ckpt, "-i", inp, "--beam", 4, "--threads", 2,
                  "--alignment", "hard").splitlines()
    assert len(cli) == 4
    for r, line, src in zip(py, cli, sources):
        text, links = line.split(" ||| ")
        assert r.alignment  # a non-empty translation with links
        assert r.text == text
        assert " ".join(f"{s}-{g}" for s, g in r.alignment) == links
        a = r.attention
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
        assert a.shape == (len(r.token_ids) + 1, len(t.encode(src)))
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-5)
        # Each link is its row's argmax (the eos row aligns nothing).
        assert [s for s, _ in r.alignment] == list(a[:-1].argmax(axis=1))
        assert all(isinstance(p, str) for p in r.tokens) and len(r.tokens) == len(r.token_ids)
        assert t.decode(r.token_ids) == r.text
    plain = t.translate(sources[:1])
    assert plain[0].alignment is None and plain[0].attention is None
    assert t.arch == "rnn-attention" and t.vocab_size > 4 and t.path == ckpt


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")


def test_scores_equal_the_command_line(corpus, trained, tmp_path):
    data, _ = corpus
    _, summary, _ = trained
    refs = (data / "test.tgt").read_text().splitlines()
    srcs = (data / "test.src").read_text().splitlines()
    hyps = [r.text for r in attend.load_translator(summary["checkpoint"]).translate(srcs, beam=2)]
    hyps[0] = refs[0]  # at least one exact match
    hyp_file, ref_file = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    write_lines(hyp_file, hyps)
    write_lines(ref_file, refs)
    scores = {"bleu": attend.bleu(hyps, refs), "chrf": attend.chrf(hyps, refs),
              "chrf++": attend.chrf(hyps, [refs], word_order=2),
              "wer": attend.wer(hyps, refs), "cer": attend.cer(hyps, refs)}
    for metric, s in scores.items():
        line = run_cli("score", "-r", ref_file, "-i", hyp_file, "--metrics", metric, "--width", 2)
        assert line == s.format(width=2, signature=True) + "\n"
        js = json.loads(run_cli("score", "-r", ref_file, "-i", hyp_file, "--metrics", metric,
                                "--json", "--width", 6))
        assert js["score"] == round(s.score, 6) and js["name"] == s.name
        assert s.json(width=6) == json.dumps(js, indent=1, ensure_ascii=False)
    b = scores["bleu"]
    assert b.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert b.signature_fields["tok"] == "13a"
    assert len(b.counts) == len(b.totals) == len(b.precisions) == 4
    assert b.counts[0] <= b.totals[0] and b.sys_len > 0 and b.ref_len > 0
    assert 0 < b.bp <= 1 and float(b) == b.score
    w = scores["wer"]
    assert w.errors == w.substitutions + w.deletions + w.insertions
    assert w.ref_len == w.substitutions + w.deletions + w.hits
    assert w.score == pytest.approx(100.0 * w.errors / w.ref_len, rel=1e-12)
    assert scores["chrf++"].word_order == 2 and scores["chrf"].char_order == 6
    assert len(scores["chrf"].stats) == 18


def test_scores_by_hand():
    assert attend.bleu(["a b c d"], ["a b c d"]).score == pytest.approx(100.0, rel=1e-12)
    two = attend.bleu(["the cat sat on the mat"], [["the cat sat on a mat"], ["a cat sat"]])
    assert two.signature_fields["nrefs"] == "2"
    assert attend.sentence_bleu("a b c d", ["a b c d"]).score == pytest.approx(100.0)
    assert attend.sentence_chrf("abc", ["abc"]).score == pytest.approx(100.0)
    w = attend.wer(["a x c"], ["a b c d"])
    assert (w.substitutions, w.deletions, w.insertions, w.hits) == (1, 1, 0, 2)
    assert w.score == pytest.approx(50.0)
    c = attend.cer(["abd"], ["abc"])
    assert c.score == pytest.approx(100.0 / 3)


def test_bad_paths_and_arguments_raise(corpus, trained, tmp_path):
    _, summary, _ = trained
    with pytest.raises(attend.Error):
        attend.load_translator(str(tmp_path / "missing.ckpt"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(attend.Error):
        attend.load_translator(str(junk))
    with pytest.raises(attend.Error):
        attend.load_translator(str(tmp_path))  # a directory
    with pytest.raises(attend.Error):
        attend.train(str(tmp_path / "no-corpus"), src="src", tgt="tgt", out=str(tmp_path / "m"),
                     max_steps=2)
    with pytest.raises(attend.Error, match="unknown option"):
        attend.train(str(corpus[0]), no_such_option=3)
    with pytest.raises(attend.Error):
        attend.train(str(corpus[0]), src="src", tgt="tgt", arch="no-such-arch", max_steps=2,
                     out=str(tmp_path / "m2"))
    with pytest.raises(TypeError):
        attend.train(str(corpus[0]), max_steps="many")
    t = attend.load_translator(summary["checkpoint"])
    with pytest.raises(attend.Error):
        t.translate(["a"], beam=0)
    with pytest.raises(attend.Error):
        t.translate(["a"], nbest=-1)
    with pytest.raises(TypeError):
        t.translate(None)
    with pytest.raises(attend.Error):
        attend.bleu(["a", "b"], ["a"])
    with pytest.raises(attend.Error):
        attend.bleu("a b", ["a b"])
    with pytest.raises(attend.Error):
        attend.bleu(["a"], ["a"], tokenize="nope")
    with pytest.raises(attend.Error):
        attend.wer(["a"], [["a"], ["b"]])
    with pytest.raises(attend.Error):
        attend.build_synthetic_corpus(str(tmp_path / "s"), train=-1)
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(attend.Error):
        attend.build_synthetic_corpus(str(blocked / "sub"), train=10, dev=2, test=2)
    assert t.translate(["the cat sleeps"], beam=1)[0].text is not None  # still alive


def test_callback_exception_stops_training(corpus, tmp_path):
    seen = []

    def on_progress(event):
        seen.append(event)
        if event["event"] == "step":
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        attend.train(str(corpus[0]), src="src", tgt="tgt", out=str(tmp_path / "m"),
                     embed_dim=8, hidden_dim=8, attention_dim=8, vocab_type="word",
                     vocab_size=200, max_tokens=200, max_steps=100000, log_every=1,
                     valid_every=100000, valid_sentences=2, threads=1, on_progress=on_progress)
    steps = [e for e in seen if e["event"] == "step"]
    assert len(steps) == 1
    # Stopped after a few steps with its final checkpoint, not after 100000.
    log = (tmp_path / "m" / "train.log").read_text()
    last = [l for l in log.splitlines() if l.startswith("stopped")][-1]
    assert int(last.split(" after ")[1].split()[0]) < 100
    assert (tmp_path / "m" / "last.ckpt").exists()


def test_ctrl_c_stops_training(corpus, tmp_path):
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            attend.train(str(corpus[0]), src="src", tgt="tgt", out=str(tmp_path / "m"),
                         embed_dim=8, hidden_dim=8, attention_dim=8, vocab_type="word",
                         vocab_size=200, max_tokens=200, max_steps=1000000, log_every=100000,
                         valid_every=1000000, valid_sentences=2, threads=1)
    finally:
        timer.cancel()
    log = (tmp_path / "m" / "train.log").read_text()
    assert "stopped (interrupted)" in log
    assert (tmp_path / "m" / "last.ckpt").exists()


def test_precisions_and_shortlist_equal_the_command_line(trained, corpus, sources, tmp_path):
    """load_translator(precision=, shortlist=) runs what attend translate --precision/--shortlist
    runs: the same translations, line for line; a quantized checkpoint decodes in int8."""
    data, _ = corpus
    _, summary, _ = trained
    ckpt = summary["checkpoint"]
    shortlist = tmp_path / "shortlist.txt"
    run_cli("shortlist", "-m", ckpt, "--data", data, "--src", "src", "--tgt", "tgt", "-o",
            shortlist, "--frequent", 10, "--per-source", 10)
    for precision in ("f32", "bf16", "int8"):
        py = attend.load_translator(ckpt, precision=precision).translate(sources, beam=2,
                                                                         threads=2)
        cli = translate_cli(ckpt, tmp_path, sources, "--beam", 2, "--precision", precision)
        assert [r.text for r in py] == cli
    py = attend.load_translator(ckpt, precision="int8", shortlist=str(shortlist))
    cli = translate_cli(ckpt, tmp_path, sources, "--precision", "int8", "--shortlist", shortlist)
    assert [r.text for r in py.translate(sources, threads=2)] == cli
    q8 = tmp_path / "q8.ckpt"
    run_cli("quantize", "-m", ckpt, "-o", q8)
    assert [r.text for r in attend.load_translator(str(q8)).translate(sources, threads=2)] == \
        translate_cli(str(q8), tmp_path, sources)
    with pytest.raises(attend.Error, match="unknown precision 'fp16'"):
        attend.load_translator(ckpt, precision="fp16")
    with pytest.raises(attend.Error, match="shortlist"):
        attend.load_translator(ckpt, shortlist=str(tmp_path / "missing.txt"))
