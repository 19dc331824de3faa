"""Speech recognition and image captioning from Python: the speech and image corpora (the same
bytes as `attend corpus`), tiny models trained with attend.train, transcription and captioning
that must equal `attend transcribe` and `attend caption` on the same checkpoint (and give the same
results for files and for the same data as NumPy arrays), the AER and bracket scores against
`attend score` and hand-computed cases, and attend.Error or TypeError, never a crash, for bad
input."""
import ctypes
import json
import os
import pathlib
import random
import subprocess
import wave

import numpy as np
import pytest

import attend

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("ATTEND_BIN_DIR", ROOT / "build")) / "attend"


def cli(*args):
    """Runs the attend command; returns (stdout, stderr), asserting success."""
    out = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def lines(*args):
    return cli(*args)[0].split("\n")[:-1]


def same_tree(a, b, pattern):
    """The files under a and b matching pattern, byte for byte (and some exist)."""
    fa = sorted(p.relative_to(a) for p in a.glob(pattern))
    fb = sorted(p.relative_to(b) for p in b.glob(pattern))
    assert fa and fa == fb
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def read_wav(path):
    """16-bit mono PCM as float32 in [-1, 1] (as the library scales it) and its rate."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return pcm.astype(np.float32) / 32768, w.getframerate()


def write_wav(path, samples, rate):
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_pnm(path, pixels):
    """A binary PGM ([H, W]) or PPM ([H, W, 3]) of uint8 pixels: an image file any reader takes."""
    h, w = pixels.shape[:2]
    magic = b"P5" if pixels.ndim == 2 else b"P6"
    path.write_bytes(magic + b"\n%d %d\n255\n" % (w, h) + pixels.tobytes())


# ---- speech ----

SPEECH = dict(digits=24, phrases=24, dev_digits=4, dev_phrases=4, test_digits=4, test_phrases=4,
              seed=3)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech")
    # A caller whose C rand() has moved on (this process's libraries may call it) still gets the
    # command's audio: the synthesiser processes start from rand()'s initial state.
    libc = ctypes.CDLL(None)
    for _ in range(7):
        libc.rand()
    stats = attend.build_speech_corpus(str(d / "corpus"), **SPEECH)
    return d, stats


@pytest.fixture(scope="module")
def speech_model(speech):
    d, _ = speech
    events = []
    # The model of tests/tools/test_speech_cli.cc.
    summary = attend.train(str(d / "corpus"), task="speech", out=str(d / "model"),
                           arch="rnn-attention", cell="lstm", score="location-aware",
                           hidden_dim=16, embed_dim=8, attention_dim=8, location_filters=2,
                           location_width=5, frame_stacking=3, pyramid_levels=1, dropout=0.2,
                           spec_augment=True, max_tokens=1500, valid_every=2, valid_sentences=4,
                           threads=1, max_steps=6, on_progress=events.append)
    return summary, events


def test_speech_corpus_equals_the_command(speech):
    d, stats = speech
    corpus = d / "corpus"
    for split, n in (("train", 24), ("dev", 4), ("test", 4)):
        for kind in ("digits", "phrases"):
            assert stats["splits"][split][kind]["utterances"] == n
            assert stats["splits"][split][kind]["seconds"] > 0
        manifest = (corpus / f"{split}.tsv").read_text().splitlines()
        assert len(manifest) == 2 * n
        assert stats["voices"][split]
    assert stats["utterances"] == 64
    on_disk = json.loads((corpus / "stats.json").read_text())
    assert on_disk["espeak_ng"] == stats["espeak_version"]
    assert on_disk["splits"]["dev"]["phrases"]["utterances"] == 4
    assert on_disk["phrases"]["unique_texts"] == stats["phrase_texts"]
    # The command with the same options writes the same files, audio included.
    cli("corpus", "speech", "-q", "--out", d / "cli", "--digits", 24, "--phrases", 24,
        "--dev-digits", 4, "--dev-phrases", 4, "--test-digits", 4, "--test-phrases", 4,
        "--seed", 3)
    same_tree(corpus, d / "cli", "*.tsv")
    same_tree(corpus, d / "cli", "wav/*/*.wav")
    assert (corpus / "stats.json").read_bytes() == (d / "cli" / "stats.json").read_bytes()


def test_speech_training_reports_wer(speech_model):
    summary, events = speech_model
    assert summary["steps"] == 6 and "best_wer" in summary
    assert os.path.exists(summary["checkpoint"])
    valid = [e for e in events if e["event"] == "validation"]
    assert [e["step"] for e in valid] == [2, 4, 6]
    assert all("wer" in e and "cer" in e for e in valid)


def test_transcription_equals_the_command_line(speech, speech_model):
    d, _ = speech
    ckpt = speech_model[0]["checkpoint"]
    t = attend.load_transcriber(ckpt)
    assert t.path == ckpt and t.arch == "rnn-attention"
    assert t.sample_rate == 16000 and t.frames_per_step == 6 and t.feature_dim > 0
    manifest = [l.split("\t") for l in (d / "corpus" / "test.tsv").read_text().splitlines()]
    files = [str(d / "corpus" / p) for p, _ in manifest]
    for beam in (1, 3):
        py = t.transcribe(files, beam=beam, threads=1)
        out = lines("transcribe", "-m", ckpt, "--beam", beam, "--threads", 1, *files)
        assert [r.text for r in py] == out
        assert all(isinstance(r.score, float) and r.score <= 0 for r in py)
        assert sum(len(r.token_ids) for r in py) > 0  # the model writes something
        assert all(len(r.tokens) == len(r.token_ids) for r in py)
        assert all(set(r.text) <= set("".join(r.tokens)) | {" "} for r in py)
    # --score on the manifest: the same WER and CER as attend.wer and attend.cer of the texts.
    py = t.transcribe(files, beam=2, threads=1)
    stdout, stderr = cli("transcribe", "-m", ckpt, "--beam", 2, "--threads", 1, "--manifest",
                         d / "corpus" / "test.tsv", "--score")
    assert stdout.split("\n")[:-1] == [r.text for r in py]
    refs = [text for _, text in manifest]
    texts = [r.text for r in py]
    assert f"WER = {attend.wer(texts, refs).score:.2f}" in stderr
    assert f"CER = {attend.cer(texts, refs).score:.2f}" in stderr


def test_arrays_transcribe_as_their_files(speech, speech_model, tmp_path):
    d, _ = speech
    t = attend.load_transcriber(speech_model[0]["checkpoint"])
    files = sorted((d / "corpus" / "wav" / "test").glob("*.wav"))[:4]
    audio = [read_wav(f) for f in files]
    assert all(rate == 16000 for _, rate in audio)
    by_file = t.transcribe([str(f) for f in files], beam=2, nbest=2, attention=True, threads=1)
    by_array = t.transcribe([a for a, _ in audio], sample_rate=16000, beam=2, nbest=2,
                            attention=True, threads=1)
    for f, a in zip(by_file, by_array):
        assert (f.text, f.score, f.token_ids) == (a.text, a.score, a.token_ids)
        np.testing.assert_array_equal(f.attention, a.attention)
        assert [h.text for h in f.hypotheses] == [h.text for h in a.hypotheses]
    # float64, pathlib paths, and a list mixing both give the same.
    mixed = t.transcribe([files[0], audio[1][0].astype(np.float64)], sample_rate=16000, beam=2,
                         threads=1)
    assert [r.text for r in mixed] == [r.text for r in by_file[:2]]
    # Another rate is resampled as a file at that rate is.
    slow = audio[0][0][::2].copy()
    write_wav(tmp_path / "8k.wav", slow, 8000)
    slow = read_wav(tmp_path / "8k.wav")[0]
    a, f = t.transcribe([slow], sample_rate=8000, threads=1), t.transcribe(
        [str(tmp_path / "8k.wav")], threads=1)
    assert (a[0].text, a[0].score) == (f[0].text, f[0].score)
    # Attention: one row per character and eos over the listener's steps, each a distribution.
    for r, (samples, _) in zip(by_file, audio):
        frames = 1 + (len(samples) - 400) // 160  # 25 ms windows every 10 ms at 16 kHz
        assert r.attention.dtype == np.float32
        assert r.attention.shape[0] == len(r.token_ids) + 1
        assert abs(r.attention.shape[1] - frames / t.frames_per_step) <= 1
        np.testing.assert_allclose(r.attention.sum(axis=1), 1.0, rtol=1e-4)
        assert 1 <= len(r.hypotheses) <= 2 and r.hypotheses[0].text == r.text
        assert all(a.score >= b.score for a, b in zip(r.hypotheses, r.hypotheses[1:]))
    plain = t.transcribe([str(files[0])], threads=1)[0]
    assert plain.attention is None and plain.hypotheses[0].attention is None
    # Shorter than one window: no frames, an empty transcript (as the command gives).
    assert t.transcribe([np.zeros(100, np.float32)], sample_rate=16000)[0].text == ""
    assert t.transcribe([]) == []


# ---- captioning ----


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    stats = attend.build_scenes_corpus(str(d / "corpus"), train=24, dev=4, test=6, seed=3)
    return d, stats


@pytest.fixture(scope="module")
def caption_model(scenes):
    d, _ = scenes
    # The model of tests/tools/test_caption_cli.cc (soft attention).
    return attend.train(str(d / "corpus"), task="caption", out=str(d / "model"),
                        arch="show-attend-tell", hidden_dim=16, embed_dim=8, attention_dim=8,
                        cnn_channels=2, dropout=0.2, max_tokens=600, valid_every=2,
                        valid_sentences=4, threads=1, max_steps=6)


def test_image_corpora_equal_the_command(scenes, tmp_path):
    d, stats = scenes
    corpus = d / "corpus"
    assert stats["scenes"] == {"train": 24, "dev": 4, "test": 6}
    assert stats["captions"]["test"] == len((corpus / "test.tsv").read_text().splitlines())
    assert sum(stats["items_per_class"].values()) == sum(stats["items"].values())
    assert set(stats["items_per_class"]) >= {"top", "trousers", "bag", "boot"}
    on_disk = json.loads((corpus / "stats.json").read_text())
    assert on_disk["png_bytes"] == stats["bytes"]
    assert len(on_disk["vocabulary"]) == stats["vocabulary"]
    cli("corpus", "scenes", "-q", "--out", d / "cli", "--train", 24, "--dev", 4, "--test", 6,
        "--seed", 3)
    same_tree(corpus, d / "cli", "*.tsv")
    same_tree(corpus, d / "cli", "*.jsonl")
    same_tree(corpus, d / "cli", "images/*/*.png")

    cl = attend.build_cluttered_corpus(str(tmp_path / "py"), train=6, dev=2, test=3, seed=5,
                                       clutter=4)
    assert cl["images"] == {"train": 6, "dev": 2, "test": 3}
    assert sum(cl["items_per_class"].values()) == 11
    cli("corpus", "cluttered", "-q", "--out", tmp_path / "cli", "--train", 6, "--dev", 2,
        "--test", 3, "--seed", 5, "--clutter", 4)
    same_tree(tmp_path / "py", tmp_path / "cli", "*.tsv")
    same_tree(tmp_path / "py", tmp_path / "cli", "images/*/*.png")


def test_captions_equal_the_command_line(scenes, caption_model):
    d, _ = scenes
    ckpt = caption_model["checkpoint"]
    c = attend.load_captioner(ckpt)
    assert c.arch == "show-attend-tell" and c.attends and not c.reads_boxes
    assert c.image_size == 96 and c.image_channels == 1
    images = sorted(str(p) for p in (d / "corpus" / "images" / "test").glob("*.png"))
    assert len(images) == 6
    for beam in (1, 3):
        py = c.caption(images, beam=beam, threads=1)
        assert [r.text for r in py] == lines("caption", "-m", ckpt, "--beam", beam, "--threads",
                                             1, *images)
        assert all(r.text and r.score <= 0 for r in py)
    # Attention over the CNN grid's cells, with each cell's box in the model's pixels.
    py = c.caption(images[:2], beam=3, nbest=2, attention=True, threads=1)
    cells = (c.image_size // 8) ** 2
    for r in py:
        assert r.attention.dtype == np.float32
        assert r.attention.shape == (len(r.token_ids) + 1, cells)
        np.testing.assert_allclose(r.attention.sum(axis=1), 1.0, rtol=1e-4)
        assert r.boxes.shape == (cells, 4)
        assert r.boxes.min() >= 0 and r.boxes.max() <= c.image_size
        assert (r.boxes[:, 2] > r.boxes[:, 0]).all() and (r.boxes[:, 3] > r.boxes[:, 1]).all()
        assert len(r.hypotheses) == 2 and r.hypotheses[0].text == r.text
    assert c.caption(images[:1])[0].attention is None


def test_arrays_caption_as_their_files(scenes, caption_model, tmp_path):
    d, _ = scenes
    ckpt = caption_model["checkpoint"]
    c = attend.load_captioner(ckpt)
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(96, 96), dtype=np.uint8)
    gray[20:60, 30:50] = 255  # something bright among the noise
    rgb = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)  # resized and made gray
    write_pnm(tmp_path / "gray.pgm", gray)
    write_pnm(tmp_path / "rgb.ppm", rgb)
    files = [str(tmp_path / "gray.pgm"), str(tmp_path / "rgb.ppm")]
    by_file = c.caption(files, beam=2, attention=True, threads=1)
    assert [r.text for r in by_file] == lines("caption", "-m", ckpt, "--beam", 2, "--threads", 1,
                                              *files)
    for arrays in ([gray, rgb], [gray[:, :, None], rgb.astype(np.float32) / 255],
                   [gray.astype(np.float64) / 255, np.ascontiguousarray(rgb[:, ::-1])[:, ::-1]]):
        by_array = c.caption(arrays, beam=2, attention=True, threads=1)
        for f, a in zip(by_file, by_array):
            assert (f.text, f.score) == (a.text, a.score)
            np.testing.assert_array_equal(f.attention, a.attention)
    # A corpus PNG read by PIL gives the same caption as its path.
    pil = pytest.importorskip("PIL.Image")
    png = sorted((d / "corpus" / "images" / "test").glob("*.png"))[0]
    pixels = np.asarray(pil.open(png))
    assert c.caption([pixels], threads=1)[0].text == c.caption([png], threads=1)[0].text


def test_true_boxes_captioner_reads_the_given_boxes(scenes):
    d, _ = scenes
    corpus = d / "corpus"
    summary = attend.train(str(corpus), task="caption", out=str(d / "truth"), arch="top-down",
                           true_boxes=True, hidden_dim=16, embed_dim=8, attention_dim=8,
                           cnn_channels=2, max_tokens=600, valid_every=2, valid_sentences=4,
                           threads=1, max_steps=2)
    c = attend.load_captioner(summary["checkpoint"])
    assert c.arch == "top-down" and c.reads_boxes
    items = [json.loads(l) for l in (corpus / "test.items.jsonl").read_text().splitlines()]
    images = [str(corpus / it["image"]) for it in items]
    boxes = [[tuple(x["box"]) for x in it["items"]] for it in items]
    py = c.caption(images, boxes=boxes, attention=True, threads=1)
    out = lines("caption", "-m", summary["checkpoint"], "--tsv", corpus / "test.tsv", "--items",
                corpus / "test.items.jsonl", "--threads", 1)
    assert [r.text for r in py] == out
    # The first regions are the given boxes, scaled to the model's pixels (96: the same).
    for r, b in zip(py, boxes):
        np.testing.assert_allclose(r.boxes[:len(b)], np.array(b, np.float32))
    other = c.caption(images[:1], boxes=[[(0, 0, 10, 10)]], threads=1)[0]
    assert other.score != py[0].score
    with pytest.raises(attend.Error, match="true boxes"):
        c.caption(images)
    with pytest.raises(attend.Error, match="1 images but boxes has 2"):
        c.caption(images[:1], boxes=boxes[:2])
    with pytest.raises(attend.Error, match="x0 < x1"):
        c.caption(images[:1], boxes=[[(5, 0, 1, 4)]])


# ---- scores ----


def test_aer_by_hand():
    # Sentence 1: A = {0-0, 1-1, 2-2}, S = {0-0, 1-1}, P = S + {2-3}: 2 sure and 2 possible hits.
    # Sentence 2: A = {0-1, 1-0}, S = {0-1}, P = S + {1-1}: 1 and 1. Sentence 3: A = {}, S = {0-0}.
    # |A| = 5, |S| = 4, |P| = 6: AER = 1 - (3 + 3) / (5 + 4), P = 3/5, R = 3/4.
    s = attend.aer(["0-0 1-1 2-2", "0-1 1-0", ""], ["0-0 1-1 2?3", "0-1 1?1", "0-0"])
    assert s.aer == pytest.approx(1 / 3) and s.score == pytest.approx(100 / 3)
    assert (s.precision, s.recall) == (pytest.approx(0.6), pytest.approx(0.75))
    assert (s.hypothesis_links, s.sure_links, s.possible_links) == (5, 4, 6)
    assert (s.hit_sure, s.hit_possible) == (3, 3)
    assert s.format(1) == "AER = 33.3 (P = 60.0 R = 75.0 |A| = 5 |S| = 4 |P| = 6)"
    # The same as pairs, with the possible links given apart, and from translate's lines.
    pairs = attend.aer([[(0, 0), (1, 1), (2, 2)], [(0, 1), [1, 0]], []],
                       [[(0, 0), (1, 1)], [(0, 1)], [(0, 0)]], [[(2, 3)], "1-1", ""])
    lines_ = attend.aer(["a b c ||| 0-0 1-1 2-2", "x ||| y ||| 0-1 1-0", "|||"],
                        ["0-0 1-1", "0-1", "0-0"], ["2?3", "1-1", ""])
    for other in (pairs, lines_):
        assert other.format(2, signature=True) == s.format(2, signature=True)
    # Repeated links count once; perfect and empty alignments.
    assert attend.aer(["0-0 0-0 1-1"], ["1-1 0-0"]).aer == 0.0
    e = attend.aer([""], [""])
    assert (e.aer, e.precision, e.recall) == (0.0, 1.0, 1.0)
    assert attend.aer(["0-1"], ["1-0"]).aer == 1.0
    assert json.loads(s.json(3))["hit_sure"] == 3


def test_brackets_by_hand():
    # Hypothesis 1 has S[0,3] NP[0,1] VP[1,3], all in the reference (which adds NP[2,3]);
    # hypothesis 2 closes nothing (ill-formed); reference 2 has S[0,2] NP[0,2].
    # matched 3, hypothesis 3, reference 6: P = 1, R = 0.5, F1 = 2/3.
    s = attend.brackets(["(S (NP XX ) (VP XX XX ) )", "(S XX"],
                        ["(S (NP XX ) (VP XX (NP XX ) ) )", "(S (NP XX XX ) )"])
    assert (s.precision, s.recall, s.f1) == (1.0, 0.5, pytest.approx(2 / 3))
    assert (s.matched, s.hypothesis_brackets, s.reference_brackets) == (3, 3, 6)
    assert (s.sentences, s.exact, s.ill_formed, s.exact_match) == (2, 0, 1, 0.0)
    assert s.format(1) == "BracketF1 = 66.7 (P = 100.0 R = 50.0 exact = 0.0% n = 2 ill-formed = 1)"
    # Brackets are a multiset; ")NP" closes the open NP.
    t = attend.brackets(["(S (NP (NP XX )NP ) )"], ["(S (NP (NP XX ) ) )"])
    assert (t.f1, t.exact) == (1.0, 1)
    assert attend.brackets(["(S (NP XX ) )"], ["(S (NP (NP XX ) ) )"]).recall == pytest.approx(2 / 3)


def perturbed_tree(tree, rng):
    """A linearised tree with one of: a label changed, a bracket dropped, a word added, a cut."""
    tokens = tree.split()
    kind = rng.randrange(5)
    opens = [i for i, t in enumerate(tokens) if t.startswith("(")]
    if kind == 0 and len(opens) > 1:
        tokens[rng.choice(opens[1:])] = "(NP"
    elif kind == 1 and len(opens) > 1:
        i = rng.choice(opens[1:])
        del tokens[i]
        closes = [j for j, t in enumerate(tokens) if t == ")" and j >= i]
        del tokens[closes[-2] if len(closes) > 1 else closes[-1]]
    elif kind == 2:
        tokens.insert(rng.randrange(1, len(tokens)), "XX")
    elif kind == 3:
        tokens = tokens[: rng.randrange(1, len(tokens))]
    return " ".join(tokens)


def test_scores_equal_attend_score(tmp_path):
    rng = random.Random(4)
    # Alignments: random links, some of the reference's possible.
    hyp, ref = [], []
    for _ in range(60):
        n, m = rng.randint(1, 8), rng.randint(1, 8)
        links = lambda k: {(rng.randrange(n), rng.randrange(m)) for _ in range(k)}
        hyp.append(" ".join(f"{s}-{t}" for s, t in sorted(links(rng.randint(0, 9)))))
        ref.append(" ".join(f"{s}{rng.choice('-?-')}{t}" for s, t in sorted(links(
            rng.randint(0, 9)))))
    (tmp_path / "h.txt").write_text("\n".join(hyp) + "\n")
    (tmp_path / "r.txt").write_text("\n".join(ref) + "\n")
    s = attend.aer(hyp, ref)
    assert 0 < s.aer < 1 and s.possible_links > s.sure_links
    for width in (1, 3):
        out, _ = cli("score", "--metrics", "aer", "-r", tmp_path / "r.txt", "-i",
                     tmp_path / "h.txt", "-w", width)
        assert out == s.format(width, signature=True) + "\n"
    out, _ = cli("score", "--metrics", "aer", "-r", tmp_path / "r.txt", "-i", tmp_path / "h.txt",
                 "-w", 3, "--json")
    assert out == s.json(3) + "\n"

    # Trees: the synthetic corpus's parses, against perturbed copies of themselves.
    attend.build_synthetic_corpus(str(tmp_path / "syn"), seed=2, train=1, dev=1, test=80,
                                  max_words=12)
    refs = (tmp_path / "syn" / "test.tree").read_text().splitlines()
    hyps = [t if i % 4 == 0 else perturbed_tree(t, rng) for i, t in enumerate(refs)]
    (tmp_path / "th.txt").write_text("\n".join(hyps) + "\n")
    b = attend.brackets(hyps, refs)
    assert 0 < b.f1 < 1 and b.ill_formed > 0 and b.exact >= 20
    for width in (1, 2):
        out, _ = cli("score", "--metrics", "bracket", "-r", tmp_path / "syn" / "test.tree", "-i",
                     tmp_path / "th.txt", "-w", width)
        assert out == b.format(width, signature=True) + "\n"
    assert attend.brackets(refs, refs).f1 == 1.0


# ---- bad input ----


def test_bad_input_is_an_error_not_a_crash(speech_model, caption_model, tmp_path):
    speech_ckpt, caption_ckpt = speech_model[0]["checkpoint"], caption_model["checkpoint"]
    with pytest.raises(attend.Error, match="captioning model, not a speech model"):
        attend.load_transcriber(caption_ckpt)
    with pytest.raises(attend.Error, match="speech model, not a captioning model"):
        attend.load_captioner(speech_ckpt)
    with pytest.raises(attend.Error, match="speech model, not a translation model"):
        attend.load_translator(speech_ckpt)
    with pytest.raises(attend.Error, match="missing.ckpt"):
        attend.load_transcriber(str(tmp_path / "missing.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(attend.Error):
        attend.load_captioner(str(tmp_path / "junk.ckpt"))

    t = attend.load_transcriber(speech_ckpt)
    wav = np.zeros(4000, np.float32)
    for call, error, message in [
        (lambda: t.transcribe([str(tmp_path / "none.wav")]), attend.Error, r"inputs\[0\].*none"),
        (lambda: t.transcribe([wav]), attend.Error, "sample_rate"),
        (lambda: t.transcribe([wav], sample_rate=0), attend.Error, "sample_rate"),
        (lambda: t.transcribe([np.zeros((2, 400))], sample_rate=16000), attend.Error, "1-D"),
        (lambda: t.transcribe([np.zeros(400, np.int16)], sample_rate=16000), attend.Error,
         "dtype int16"),
        (lambda: t.transcribe([np.array([0.0, np.nan] * 300)], sample_rate=16000), attend.Error,
         "nan"),
        (lambda: t.transcribe([wav], sample_rate=16000, beam=-1), attend.Error, "beam=-1"),
        (lambda: t.transcribe([wav], sample_rate=16000, nbest=0), attend.Error, "nbest=0"),
        (lambda: t.transcribe([wav], sample_rate=16000, threads=-2), attend.Error, "threads"),
        (lambda: t.transcribe("a.wav"), TypeError, "list"),
        (lambda: t.transcribe(wav, sample_rate=16000), TypeError, "list"),
        (lambda: t.transcribe([3]), TypeError, r"inputs\[0\]"),
        (lambda: t.transcribe([wav], 16000), TypeError, ""),  # options are keyword-only
    ]:
        with pytest.raises(error, match=message):
            call()

    c = attend.load_captioner(caption_ckpt)
    img = np.zeros((32, 32), np.uint8)
    for call, error, message in [
        (lambda: c.caption([str(tmp_path / "none.png")]), attend.Error, r"images\[0\].*none"),
        (lambda: c.caption([str(tmp_path / "junk.ckpt")]), attend.Error, r"images\[0\]"),
        (lambda: c.caption([np.zeros((4, 4, 5), np.uint8)]), attend.Error, "1-4 channels"),
        (lambda: c.caption([np.zeros(16, np.uint8)]), attend.Error, "shape"),
        (lambda: c.caption([np.zeros((0, 4), np.uint8)]), attend.Error, "side 0"),
        (lambda: c.caption([np.zeros((4, 4), np.int32)]), attend.Error, "dtype int32"),
        (lambda: c.caption([np.full((4, 4), 1.5)]), attend.Error, r"outside \[0, 1\]"),
        (lambda: c.caption([img], beam=0), attend.Error, "beam=0"),
        (lambda: c.caption([img], max_words=0), attend.Error, "max_words"),
        (lambda: c.caption([img], boxes=[[(0, 0, 4, 4)]]), attend.Error, "true-boxes"),
        (lambda: c.caption(img), TypeError, "list"),
        (lambda: c.caption([None]), TypeError, r"images\[0\]"),
    ]:
        with pytest.raises(error, match=message):
            call()

    for call, error, message in [
        (lambda: attend.aer(["0-x"], ["0-0"]), attend.Error, r"hypotheses\[0\].*0-x"),
        (lambda: attend.aer(["0-0"], ["0-0", "1-1"]), attend.Error, "1 hypotheses but 2"),
        (lambda: attend.aer(["0-0"], ["0-0"], ["1-1", ""]), attend.Error, "possible"),
        (lambda: attend.aer([[(0, -1)]], ["0-0"]), attend.Error, "negative"),
        (lambda: attend.aer([[(0, 1, 2)]], ["0-0"]), TypeError, "pairs"),
        (lambda: attend.aer("0-0", ["0-0"]), TypeError, "list"),
        (lambda: attend.brackets(["(S XX )"], ["(S XX"]), attend.Error, "references"),
        (lambda: attend.brackets(["(S XX )"], []), attend.Error, "1 hypotheses but 0"),
        (lambda: attend.brackets([1], ["(S XX )"]), TypeError, r"hypotheses\[0\]"),
        (lambda: attend.build_speech_corpus(str(tmp_path / "s"), sample_rate=100), attend.Error,
         "sample_rate"),
        (lambda: attend.build_speech_corpus(str(tmp_path / "s"), digits=-1), attend.Error,
         "digits=-1"),
        (lambda: attend.build_scenes_corpus(str(tmp_path / "s"), size=10), attend.Error, "size"),
        (lambda: attend.build_scenes_corpus(str(tmp_path / "s"), train=1, dev=1, test=1,
                                            fashion_dir=str(tmp_path / "nofashion")),
         attend.Error, "nofashion"),
        (lambda: attend.build_cluttered_corpus(str(tmp_path / "s"), min_item=4), attend.Error,
         "min_item"),
    ]:
        with pytest.raises(error, match=message):
            call()
    # Still alive and working.
    assert t.transcribe([wav], sample_rate=16000)[0].text == t.transcribe(
        [wav], sample_rate=16000)[0].text
    assert attend.aer(["0-0"], ["0-0"]).aer == 0.0


def test_docstrings_and_keyword_only_options():
    for f in (attend.build_speech_corpus, attend.build_scenes_corpus,
              attend.build_cluttered_corpus, attend.load_transcriber, attend.load_captioner,
              attend.aer, attend.brackets, attend.Transcriber.transcribe,
              attend.Captioner.caption):
        assert f.__doc__ and len(f.__doc__) > 60, f
    assert "*, seed: int = 1, digits: int = 6000" in attend.build_speech_corpus.__doc__
    doc = attend.Transcriber.transcribe.__doc__
    assert "inputs: object, *, " in doc and "beam: int = 4," in doc
    doc = attend.Captioner.caption.__doc__
    assert "images: object, *, beam: int = 3," in doc
    assert "possible: object = None" in attend.aer.__doc__
