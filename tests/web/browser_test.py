"""The page of `attend serve` in a real browser (headless Chromium through Selenium): a person types
a sentence, waits for the translation, reads the weight table (its shape, rows summing to 1),
switches attention site, head and view, hovers a token, compares two models, exports PNG, SVG,
JSON and CSV; uploads a WAV file to the speech view and reads its spectrogram, alignment path and
weights; uploads a PNG to the captions view, reads the caption and hovers its words over the
image; follows a training run; and no console error is logged. Screenshots of each view go to
--out.

usage: browser_test.py --attend BUILD/attend --out DIR
"""
import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def make_driver(download_dir):
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--force-device-scale-factor=1"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {"download.default_directory": download_dir,
                                           "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait_file(pattern, seconds=30):
    """The first finished download matching pattern. Chromium reserves the final name with an
    empty file while it writes NAME.crdownload beside it, so a match counts only once no partial
    download is left in its folder and its size is non-zero and unchanged between two looks."""
    end = time.time() + seconds
    last = {}
    while time.time() < end:
        folder = os.path.dirname(pattern)
        partial = glob.glob(os.path.join(folder, "*.crdownload"))
        for f in glob.glob(pattern):
            try:
                size = os.path.getsize(f)
            except OSError:
                continue
            if not partial and size > 0 and last.get(f) == size:
                return f
            last[f] = size
        time.sleep(0.1)
    return None


def translate(driver, text):
    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "translate").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "status").text.startswith(("1 line", "2 lines"))
        or "error" in d.find_element(By.ID, "status").get_attribute("class"))


def canvas_info(driver, selector="canvas.view"):
    return driver.execute_script(
        """const c = document.querySelector(arguments[0]);
           if (!c) return null;
           return {rows: c.labels.rows, cols: c.labels.cols, site: c.labels.site, head: c.labels.head,
                   matrix: c.matrix, width: c.width, height: c.height};""", selector)


def hover_at(driver, element, x, y):
    """Moves the mouse to (x, y) in the element's CSS pixels, scrolling only if that point is out
    of view. Selenium's offsets count from the centre of the element's visible part, which for a
    canvas taller than the window is not its centre."""
    driver.execute_script(
        """const r = arguments[0].getBoundingClientRect(), y = r.top + arguments[1];
           if (y < 0 || y >= innerHeight) window.scrollBy(0, y - innerHeight / 2);""", element, y)
    r = driver.execute_script(
        """const r = arguments[0].getBoundingClientRect();
           return [r.left, r.top, (Math.max(0, r.left) + Math.min(innerWidth, r.right)) / 2,
                   (Math.max(0, r.top) + Math.min(innerHeight, r.bottom)) / 2];""", element)
    ActionChains(driver).move_to_element_with_offset(element, int(r[0] + x - r[2]), int(r[1] + y - r[3])).perform()


def transcribe(driver, path):
    driver.find_element(By.ID, "speech-file").send_keys(path)
    driver.find_element(By.ID, "transcribe").click()
    WebDriverWait(driver, 30).until(
        lambda d: "s of audio" in d.find_element(By.ID, "speech-status").text
        or "error" in d.find_element(By.ID, "speech-status").get_attribute("class"))


def alignment_frames(answer):
    """Where the page must put each piece: its weighted mean listener step's centre, in frames."""
    fps, frames = answer["frames_per_step"], answer["spectrogram"]["frames"]
    out = []
    for row in answer["attention"]:
        step = sum(s * w for s, w in enumerate(row)) / sum(row)
        out.append(min(frames, max(0.0, (step + 0.5) * fps)))
    return out


def speech_view(args, work, driver, corpus):
    driver.find_element(By.ID, "tab-speech").click()
    check(driver.find_element(By.ID, "speech-controls").is_displayed()
          and not driver.find_element(By.ID, "controls").is_displayed()
          and not driver.find_element(By.ID, "results").is_displayed(),
          "the Speech tab shows the speech view in place of the translation view")
    with open(os.path.join(corpus, "test.tsv")) as f:
        wav = os.path.abspath(os.path.join(corpus, f.readline().split("\t")[0]))
    transcribe(driver, wav)
    status = driver.find_element(By.ID, "speech-status").text
    check("s of audio" in status, f"a transcription comes back: {status!r}")
    a = driver.execute_script("return window.attend.speech.answer;")
    pieces, spec = a["pieces"], a["spectrogram"]
    text = driver.find_element(By.ID, "speech-text")
    check(text.is_displayed() and text.get_attribute("textContent") == a["text"],
          f"the transcript is shown: {a['text']!r}")
    check(len(pieces) == len(a["attention"]) and pieces[-1] == "</s>" and len(spec["data"]) == spec["frames"] * spec["bins"],
          f"the answer holds a row of weights per piece ({len(pieces)}) and the spectrogram")
    info = driver.execute_script(
        """const c = document.getElementById('speech-view'), L = c.layout;
           const dpr = window.devicePixelRatio || 1, ctx = c.getContext('2d');
           const px = (x, y, w, h) => ctx.getImageData(x * dpr, y * dpr, w * dpr, h * dpr).data;
           const colours = new Set();
           let spec = 0, specOn = 0, strip = 0;
           const d = px(L.left, L.top, L.specW, L.specH);
           for (let i = 0; i < d.length; i += 4) {
             ++spec;
             if (d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255) ++specOn;
             colours.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
           }
           const s = px(L.left, L.stripY, L.specW, c.drawnLabels.length * L.rowH);
           for (let i = 0; i < s.length; i += 4) if (s[i] !== 255 || s[i + 1] !== 255 || s[i + 2] !== 255) ++strip;
           return {labels: c.drawnLabels, path: c.path, layout: L, spec, specOn, colours: colours.size, strip};""")
    want = [p.replace("\u2581", "\u2423") for p in pieces]
    check([l["text"] for l in info["labels"]] == want,
          f"a label is drawn for every piece, word boundaries as \u2423: {len(info['labels'])} of {len(pieces)}")
    frames = alignment_frames(a)
    check(len(info["path"]) == len(pieces) and all(abs(p["frame"] - f) < 1e-6 or
                                                   (f == spec["frames"] and p["frame"] > f - 0.1)
                                                   for p, f in zip(info["path"], frames)),
          "the path goes through each piece's attention-weighted mean step")
    check(info["specOn"] > 0.9 * info["spec"] and info["colours"] > 20,
          f"the spectrogram is drawn: {info['specOn']} of {info['spec']} pixels coloured, {info['colours']} colours")
    check(info["strip"] > 0, "the strip of weights is drawn")
    L = info["layout"]
    check(L["specW"] == spec["frames"] * L["ppf"] and L["specH"] == spec["bins"] * L["ppb"],
          "one column per frame, one row per bin")
    driver.save_screenshot(os.path.join(args.out, "speech.png"))

    # Hovering a label highlights its piece and shows its weights.
    canvas = driver.find_element(By.ID, "speech-view")
    label = info["labels"][len(pieces) // 2]
    x, y = label["x"] + label["w"] / 2, label["y"] + label["h"] / 2
    hover_at(driver, canvas, x, y)
    hover = driver.execute_script("return window.attend.speech.hover;")
    box = info["labels"][hover] if isinstance(hover, int) and 0 <= hover < len(pieces) else None
    check(box is not None and box["x"] - 1 <= x <= box["x"] + box["w"] + 1 and box["y"] <= y <= box["y"] + box["h"],
          f"hovering a character's label selects it: {hover}")
    drawn = driver.execute_script(
        """const o = document.getElementById('speech-overlay');
           const d = o.getContext('2d').getImageData(0, 0, o.width, o.height).data;
           let n = 0;
           for (let i = 3; i < d.length; i += 4) if (d[i]) ++n;
           return n;""")
    words = driver.find_element(By.ID, "speech-hover").text
    check(drawn > 0 and box is not None and f"\u201c{box['text']}\u201d" in words and "weights" in words,
          f"and highlights it and shows its weights: {words!r}")
    driver.save_screenshot(os.path.join(args.out, "speech-hover.png"))

    # The server's errors are shown on the page: a file that is not a WAV, a bad beam.
    notes = os.path.join(work, "notes.txt")
    with open(notes, "w") as f:
        f.write("not audio at all\n")
    transcribe(driver, notes)
    st = driver.find_element(By.ID, "speech-status")
    colour = driver.execute_script("return getComputedStyle(arguments[0]).color;", st)
    check("error" in st.get_attribute("class") and "not a WAV file" in st.text and colour == "rgb(176, 0, 32)",
          f"a non-WAV file's error is shown in the error style: {st.text!r} ({colour})")
    beam = driver.find_element(By.ID, "speech-beam")
    beam.clear()
    beam.send_keys("99")
    transcribe(driver, wav)
    check("error" in st.get_attribute("class") and "beam must be" in st.text, f"a bad beam's error is shown: {st.text!r}")
    beam.clear()
    beam.send_keys("2")
    transcribe(driver, wav)
    check("s of audio" in st.text and "error" not in st.get_attribute("class"), "and the next transcription works")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "/api/transcribe" not in e["message"]]  # the 400s above are expected
    check(not errors, f"no console errors in the speech view: {errors}")
    driver.find_element(By.ID, "tab-translation").click()
    check(driver.find_element(By.ID, "controls").is_displayed()
          and not driver.find_element(By.ID, "speech-controls").is_displayed(),
          "the Translation tab brings the translation view back")


def caption_status(driver):
    st = driver.find_element(By.ID, "caption-status")
    return st.text, "error" in st.get_attribute("class")


def caption(driver, path):
    driver.find_element(By.ID, "caption-file").send_keys(path)
    driver.find_element(By.ID, "caption").click()
    WebDriverWait(driver, 30).until(lambda d: " from a " in caption_status(d)[0] or caption_status(d)[1])


def overlay_alpha(driver):
    """The caption overlay's alpha channel, row-major, and its width."""
    return driver.execute_script(
        """const o = document.getElementById('caption-overlay');
           return [Array.from(o.getContext('2d').getImageData(0, 0, o.width, o.height).data
                              .filter((_, i) => i % 4 === 3)), o.width];""")


def heat(answer):
    """Where the page must put word t's attention: each position's weight spread over its box,
    per pixel of the model's image (src/viz/image_attention.cc)."""
    s = answer["image"]["size"]
    out = []
    for row in answer["attention"]:
        h = [0.0] * (s * s)
        for w, (x0, y0, x1, y1) in zip(row, answer["boxes"]):
            x0, y0 = max(0, min(s, int(x0 // 1))), max(0, min(s, int(y0 // 1)))
            x1, y1 = max(0, min(s, -int(-x1 // 1))), max(0, min(s, -int(-y1 // 1)))
            area = max(1, (x1 - x0) * (y1 - y0))
            for y in range(y0, y1):
                for x in range(x0, x1):
                    h[y * s + x] += w / area
        out.append(h)
    return out


def caption_view(args, work, driver, corpus):
    driver.find_element(By.ID, "tab-caption").click()
    check(driver.find_element(By.ID, "caption-controls").is_displayed()
          and not driver.find_element(By.ID, "controls").is_displayed()
          and not driver.find_element(By.ID, "speech-controls").is_displayed()
          and not driver.find_element(By.ID, "results").is_displayed(),
          "the Captions tab shows the captions view in place of the others")
    models = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#caption-model option")]
    check(models == ["captioner"], f"the captions view's picker lists the captioner: {models}")
    with open(os.path.join(corpus, "test.tsv")) as f:
        png = os.path.abspath(os.path.join(corpus, f.readline().split("\t")[0]))
    caption(driver, png)
    text, error = caption_status(driver)
    check(not error and " from a 96 \u00d7 96 image" in text, f"a caption comes back: {text!r}")
    a = driver.execute_script("return window.attend.caption.answer;")
    words = a["words"]
    spans = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#caption-text .word")]
    check(len(words) > 0 and spans == words and " ".join(words) == a["text"],
          f"the caption is shown word by word: {a['text']!r}")
    s = a["image"]["size"]
    check(len(a["attention"]) == len(words) and all(len(r) == len(a["boxes"]) for r in a["attention"])
          and len(a["image"]["data"]) == s * s * a["image"]["channels"],
          f"the answer holds a row of weights per word over {len(a['boxes'])} boxes, and the image")
    # The image is drawn scaled up by a whole number, each of the model's pixels a crisp square.
    drawn = driver.execute_script(
        """const c = document.getElementById('caption-view'), L = c.layout;
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           const px = (x, y) => d[4 * (y * c.width + x)];
           const centres = [], corners = [];
           for (let i = 0; i < L.size * L.size; ++i) {
             const x = (i % L.size) * L.scale, y = Math.floor(i / L.size) * L.scale;
             centres.push(px(x + (L.scale >> 1), y + (L.scale >> 1)));
             corners.push(px(x, y));
           }
           return {scale: L.scale, width: c.width, centres, corners};""")
    check(drawn["scale"] >= 2 and drawn["width"] == s * drawn["scale"]
          and drawn["centres"] == a["image"]["data"][:s * s] and drawn["corners"] == drawn["centres"],
          f"the model's pixels are drawn {drawn['scale']}x, unsmoothed")
    alpha, width = overlay_alpha(driver)
    check(not any(alpha), "no attention is drawn before a word is hovered")
    driver.save_screenshot(os.path.join(args.out, "caption.png"))

    # Hovering a word draws its attention over the image: most opaque where it looked least.
    t = len(words) // 2
    span = driver.find_elements(By.CSS_SELECTOR, "#caption-text .word")[t]
    ActionChains(driver).move_to_element(span).perform()
    hover = driver.execute_script("return window.attend.caption.hover;")
    alpha, width = overlay_alpha(driver)
    h = heat(a)[t]
    peak, sc = max(h), drawn["scale"]
    at = lambda i: alpha[((i // s) * sc + sc // 2) * width + (i % s) * sc + sc // 2]
    check(hover == t and sum(1 for v in alpha if v) > 0.9 * len(alpha),
          f"hovering word {t} ({words[t]!r}) draws its attention over the image")
    # The overlay's opacity is 0.65 - 0.3 a, a the heat over its peak: the image shows through
    # most where the word looked most. (The box of the largest weight is outlined in white: its
    # edge pixels are left out.)
    row = a["attention"][t]
    x0, y0, x1, y1 = a["boxes"][row.index(max(row))]
    edge = lambda i: x0 <= i % s < x1 and y0 <= i // s < y1 and not (x0 < i % s < x1 - 1 and y0 < i // s < y1 - 1)
    off = [i for i in range(s * s) if not edge(i) and abs(at(i) - 255 * (0.65 - 0.3 * h[i] / peak)) > 1.01]
    check(peak > 0 and not off and at(h.index(peak)) == round(0.35 * 255),
          f"the overlay is the word's weights spread over their boxes ({len(off)} of {s * s} pixels off)")
    words_text = driver.find_element(By.ID, "caption-hover").text
    check(f"\u201c{words[t]}\u201d" in words_text and "largest weights" in words_text,
          f"and describes it: {words_text!r}")
    driver.save_screenshot(os.path.join(args.out, "caption-hover.png"))
    # A click keeps the word when the mouse leaves; another word's hover replaces it meanwhile.
    span.click()
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "caption-status")).perform()
    kept = driver.execute_script("return [window.attend.caption.hover, window.attend.caption.pinned, "
                                 "document.getElementById('caption-overlay').drawnWord];")
    check(kept == [None, t, t] and any(overlay_alpha(driver)[0]), f"a clicked word stays drawn: {kept}")

    # The server's errors are shown on the page: a file that is not an image, a bad beam.
    notes = os.path.join(work, "caption-notes.txt")
    with open(notes, "w") as f:
        f.write("not an image at all\n")
    caption(driver, notes)
    text, error = caption_status(driver)
    check(error and "not an image" in text, f"a non-image file's error is shown: {text!r}")
    beam = driver.find_element(By.ID, "caption-beam")
    beam.clear()
    beam.send_keys("99")
    caption(driver, png)
    text, error = caption_status(driver)
    check(error and "beam must be" in text, f"a bad beam's error is shown: {text!r}")
    beam.clear()
    beam.send_keys("2")
    caption(driver, png)
    text, error = caption_status(driver)
    check(not error and " from a " in text, "and the next caption works")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "/api/caption" not in e["message"]]  # the 400s above are expected
    check(not errors, f"no console errors in the captions view: {errors}")
    driver.find_element(By.ID, "tab-translation").click()
    check(driver.find_element(By.ID, "controls").is_displayed()
          and not driver.find_element(By.ID, "caption-controls").is_displayed(),
          "the Translation tab brings the translation view back")


def only_captioner(args, driver, caption_ckpt):
    """A server holding only a captioner opens on the captions view, without tabs."""
    server = fixture.Server(args.attend, {"captioner": caption_ckpt})
    try:
        driver.get(server.url)
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "caption-status").text == "ready")
        check(driver.find_element(By.ID, "caption-controls").is_displayed()
              and not driver.find_element(By.ID, "controls").is_displayed()
              and not driver.find_element(By.ID, "speech-controls").is_displayed()
              and not driver.find_element(By.ID, "tabs").is_displayed(),
              "a server holding only a captioner opens on the captions view, without tabs")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        check(not errors, f"no console errors on the captioner's page: {errors}")
    finally:
        driver.get("about:blank")  # lets the server close the connection at once
        code, out = server.stop()
        check(code == 0, f"the captioner's server stops cleanly (exit {code})")


def watch_training(args, work, driver, speech_ckpt):
    # Sanitized builds run several times slower: a shorter run, still several validations.
    steps, every = (60, 20) if args.sanitized else (400, 50)
    live = os.path.join(work, "live")
    os.makedirs(live)
    train = subprocess.Popen(
        [args.attend, "train", "--train-src", f"{work}/train.src", "--train-tgt", f"{work}/train.tgt",
         "--dev-src", f"{work}/dev.src", "--dev-tgt", f"{work}/dev.tgt", "--out", live,
         "--vocab-size", "40", "--max-tokens", "800", "--max-steps", str(steps), "--valid-every", str(every),
         "--valid-sentences", "4", "--warmup", "10", "--lr", "0.01", "--no-progress", "--threads", "1",
         "--log-every", "10", "--arch", "transformer", "--d-model", "64", "--heads", "4", "--ff-dim", "128", "--layers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    # The watching server also holds the speech model (a second server would cost seconds to
    # stop while the browser keeps its connection alive): with only speech models the page opens
    # on the speech view.
    server = fixture.Server(args.attend, {"speech": speech_ckpt}, ["--watch", live, "--watch-text", f"{work}/dev.src"])
    try:
        driver.get(server.url)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "training").is_displayed())
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "speech-status").text == "ready")
        check(driver.find_element(By.ID, "speech-controls").is_displayed()
              and not driver.find_element(By.ID, "controls").is_displayed()
              and not driver.find_element(By.ID, "tabs").is_displayed(),
              "a server holding only a speech model opens on the speech view, without tabs")
        train.wait(timeout=600)
        check(train.returncode == 0, "the watched run trains to the end")
        # The last validation reaches the page within a few polls.
        with open(os.path.join(live, "train.log")) as f:
            validations = sum(1 for line in f if line.startswith("validation step"))

        def caught_up(d):
            w = d.execute_script("return window.attendWatch.data;")
            return (w and len(w["valid"]) == validations and w["snapshots"]
                    and w["snapshots"][-1]["step"] == w["valid"][-1][0])
        WebDriverWait(driver, 30).until(caught_up)
        w = driver.execute_script("return window.attendWatch.data;")
        check(len(w["train"]) >= 2 and len(w["valid"]) == validations == steps // every,
              f"the curves hold the run's log: {len(w['train'])} loss points, {len(w['valid'])} validations")
        steps = [s["step"] for s in w["snapshots"]]
        check(len(steps) >= 2 and steps == sorted(set(steps)),
              f"the attention was captured at several validations, in order: {steps}")
        views = driver.execute_script(
            "return [...document.querySelectorAll('canvas.snapshot-view')].map(c => c.matrix);")
        check(len(views) == 3 and all(abs(sum(r) - 1) < 2e-3 for m in views for r in m),
              f"three followed sentences, each a weight table whose rows sum to 1 ({len(views)})")
        driver.save_screenshot(os.path.join(args.out, "training.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        check(not errors, f"no console errors while watching: {errors}")
    finally:
        if train.poll() is None:
            train.kill()
        code, out = server.stop()
        check(code == 0, f"the watching server stops cleanly (exit {code})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attend", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sanitized", action="store_true", help="the binary is an ASan/UBSan build")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = fixture.workdir("attend_web_")
    downloads = os.path.join(work, "downloads")
    os.makedirs(downloads)
    # Sanitized builds train several times slower; the checks do not need good translations.
    models = fixture.train_models(args.attend, work, 40 if args.sanitized else 150)
    speech_ckpt, corpus = fixture.train_speech_model(args.attend, work)
    caption_ckpt, scenes = fixture.train_caption_model(args.attend, work, 10 if args.sanitized else 40)
    server = fixture.Server(args.attend, {**models, "speech": speech_ckpt, "captioner": caption_ckpt})
    driver = make_driver(downloads)
    try:
        driver.get(server.url)
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "status").text == "ready")
        names = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#model option")]
        check(sorted(names) == sorted(models), f"the model picker lists every translation model: {names}")
        speech = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#speech-model option")]
        check(speech == ["speech"], f"the speech view's picker lists the speech model: {speech}")
        check(driver.find_element(By.ID, "tabs").is_displayed() and driver.find_element(By.ID, "controls").is_displayed()
              and not driver.find_element(By.ID, "speech-controls").is_displayed(),
              "with both kinds of model the page opens on translation, with a Speech tab")
        tabs = [b.get_attribute("id") for b in driver.find_elements(By.CSS_SELECTOR, "#tabs button") if b.is_displayed()]
        check(tabs == ["tab-translation", "tab-speech", "tab-caption"], f"a tab for each kind of model held: {tabs}")

        # 1. The Transformer's weight table for one sentence.
        Select(driver.find_element(By.ID, "model")).select_by_value("transformer")
        translate(driver, "lo ka mi su")
        status = driver.find_element(By.ID, "status").text
        check(status.startswith("1 line"), f"a translation comes back: {status!r}")
        result = driver.execute_script("return window.attend.lines[0].answers[0].result;")
        hyp = result["hypotheses"][0]
        info = canvas_info(driver)
        check(info["site"] == "decoder.1.cross", f"the default view is the last cross-attention: {info['site']}")
        check(len(info["matrix"]) == len(hyp["tokens"]) and
              all(len(r) == len(result["source_tokens"]) for r in info["matrix"]),
              f"the table is target x source: {len(info['matrix'])} x {len(info['matrix'][0])}, "
              f"tokens {hyp['tokens']} over {result['source_tokens']}")
        check(info["rows"] == hyp["tokens"] and info["cols"] == result["source_tokens"],
              "rows are the written tokens, columns the read ones")
        sums = [sum(r) for r in info["matrix"]]
        check(all(abs(s - 1) < 2e-3 for s in sums), f"every row sums to 1: {[round(s, 4) for s in sums]}")
        sites = [s["name"] for s in hyp["attention"]]
        check(len(sites) == 6 and all(len(s["heads"]) == 4 for s in hyp["attention"]),
              f"2 layers x (encoder self, decoder self, cross) with 4 heads each: {sites}")
        driver.save_screenshot(os.path.join(args.out, "table.png"))

        # 2. Another site and one head: the encoder's self-attention of head 2 is source x source.
        Select(driver.find_element(By.ID, "site")).select_by_value("encoder.0.self")
        Select(driver.find_element(By.ID, "head")).select_by_value("2")
        info = canvas_info(driver)
        src = result["source_tokens"]
        want = [s for s in hyp["attention"] if s["name"] == "encoder.0.self"][0]["heads"][2]
        check(info["site"] == "encoder.0.self" and info["head"] == "2" and info["matrix"] == want,
              "switching layer and head shows that head's weights")
        check(info["rows"] == src and info["cols"] == src, "self-attention is source over source")

        # 3. Hover a token: the shared hover state follows it.
        canvas = driver.find_element(By.CSS_SELECTOR, "canvas.view")
        ActionChains(driver).move_to_element_with_offset(canvas, -canvas.size["width"] // 2 + 3,
                                                          0).perform()
        hover = driver.execute_script("return window.attend.hover;")
        check(hover is not None and hover["kind"] == "query", f"hovering a row label highlights it: {hover}")

        # 4. The head view and the grid.
        Select(driver.find_element(By.ID, "site")).select_by_value("decoder.1.cross")
        Select(driver.find_element(By.ID, "head")).select_by_value("avg")
        Select(driver.find_element(By.ID, "view")).select_by_value("heads")
        check(canvas_info(driver, "canvas.heads-view") is not None, "the head view draws")
        driver.save_screenshot(os.path.join(args.out, "heads.png"))
        driver.find_element(By.ID, "export-svg").click()
        path = wait_file(os.path.join(downloads, "*.svg"))
        check(path is not None and open(path).read().count("<line") >= len(hyp["tokens"]),
              "the head view exports as SVG lines")
        if path:
            os.remove(path)
        Select(driver.find_element(By.ID, "view")).select_by_value("grid")
        grid = canvas_info(driver, "canvas.grid-view")
        check(grid is not None and grid["height"] > 6 * 90, "the grid shows every site x head")
        driver.save_screenshot(os.path.join(args.out, "grid.png"))
        driver.find_element(By.ID, "export-svg").click()
        path = wait_file(os.path.join(downloads, "*.svg"))
        cells = sum(len(s["heads"][0]) * len(s["heads"][0][0]) * (len(s["heads"]) + 1) for s in hyp["attention"])
        check(path is not None and open(path).read().count("<rect") == cells + 1,
              f"the grid exports as SVG, every cell of every site and head ({cells})")
        if path:
            os.remove(path)
        Select(driver.find_element(By.ID, "view")).select_by_value("table")

        # 5. Exports of the focused view.
        for button, ext in [("export-png", "png"), ("export-svg", "svg"), ("export-json", "json"),
                            ("export-csv", "csv")]:
            driver.find_element(By.ID, button).click()
            path = wait_file(os.path.join(downloads, f"*.{ext}"))
            check(path is not None, f"{ext.upper()} export is downloaded")
            if path is None:
                continue
            data = open(path, "rb").read()
            if ext == "png":
                check(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, "the PNG is an image")
            elif ext == "svg":
                check(b"<svg" in data and data.count(b"<rect") > len(hyp["tokens"]), "the SVG holds the cells")
            elif ext == "json":
                j = json.loads(data)
                check(j["weights"] == canvas_info(driver)["matrix"] and j["keys"] == src,
                      "the JSON holds the matrix and its tokens")
            else:
                rows = list(csv.reader(data.decode().splitlines()))
                check(rows[0][1:] == src and len(rows) == len(hyp["tokens"]) + 1, "the CSV is the table")

        # 6. Two models side by side; the fixed-context RNN says it has no attention.
        Select(driver.find_element(By.ID, "model")).select_by_value("rnn-attention")
        Select(driver.find_element(By.ID, "compare")).select_by_value("rnn")
        nb = driver.find_element(By.ID, "nbest")
        nb.clear()
        nb.send_keys("2")
        translate(driver, "mi su te\nlo ka")
        lines = driver.execute_script("return window.attend.lines;")
        check(len(lines) == 2 and all(len(l["answers"]) == 2 for l in lines), "two lines x two models")
        check(len(lines[0]["answers"][0]["result"]["hypotheses"]) == 2, "n-best 2 gives two hypotheses")
        check(len(driver.find_elements(By.CSS_SELECTOR, ".noattention")) == 2,
              "the fixed-context model shows no attention, in words")
        tables = driver.find_elements(By.CSS_SELECTOR, "canvas.table-view")
        check(len(tables) == 2, "one table per line for the attention model")
        # Each hypothesis has its own attention: click the second.
        driver.find_elements(By.CSS_SELECTOR, ".column .hyp")[1].click()
        info = driver.execute_script("""const c = document.querySelector('canvas.view[data-line="0"]');
                                        return c.labels.rows;""")
        second = lines[0]["answers"][0]["result"]["hypotheses"][1]["tokens"]
        check(info == second, "the second hypothesis shows its own attention")
        driver.save_screenshot(os.path.join(args.out, "compare.png"))

        # 7. A bad request is reported on the page, and the page keeps working.
        nb.clear()
        nb.send_keys("99")
        translate(driver, "lo")
        st = driver.find_element(By.ID, "status")
        check("error" in st.get_attribute("class") and "nbest" in st.text, f"errors are shown: {st.text!r}")
        nb.clear()
        nb.send_keys("1")
        translate(driver, "lo")
        check(driver.find_element(By.ID, "status").text.startswith("1 line"), "and the next request works")

        # 8. Long inputs: a 300 x 300 table drawn and hovered (timings printed for docs/results.md).
        bench = driver.execute_script("return window.attendBenchmark(300);")
        print("measure 300x300: " + ", ".join(f"{k} {v:.2f}" for k, v in bench.items() if k != "n"))
        check(bench["table_draw_ms"] > 0 and bench["table_hover_ms"] > 0, "the 300 x 300 table draws")

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "/api/translate" not in e["message"]]  # the 400 of step 7 is expected
        check(not errors, f"no console errors: {errors}")
        check(not driver.find_element(By.ID, "training").is_displayed(),
              "without --watch there is no training panel")

        # 9. Speech: a WAV file uploaded, its spectrogram, alignment path and weights; errors.
        speech_view(args, work, driver, corpus)

        # 10. Captions: a PNG uploaded, the caption, a word's attention over the image; errors.
        caption_view(args, work, driver, scenes)
        only_captioner(args, driver, caption_ckpt)

        # 11. Live training: a run trains while a second server watches it.
        watch_training(args, work, driver, speech_ckpt)
    finally:
        driver.quit()
        code, out = server.stop()
        check(code == 0 and "stopped" in out, f"the server stops cleanly on SIGTERM (exit {code})")
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("browser test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
