"""Screenshots of the page of `attend serve` for the docs, in headless Chromium: each view of one
sentence, and the speech view of one WAV file. Translation models are given as NAME=CHECKPOINT;
the first is shown, the second (if any) beside it. A speech model (--speech NAME=CHECKPOINT or
CHECKPOINT) with --wav gives speech.png, with a character hovered. A captioner (--caption
NAME=CHECKPOINT or CHECKPOINT) with --image gives caption.png, with the word --word (default: the
first word that names an item) hovered.

usage: python3 scripts/screenshots.py --attend build/attend --out docs/images \
           --sentence "Could not open the file" -m rnn-attention=runs/quickstart/best.ckpt \
           --speech las=runs/speech/best.ckpt --wav data/speech/wav/test/000001.wav \
           --caption soft=runs/caption/soft/best.ckpt --image data/scenes/images/test/00001.png
"""
import argparse
import os
import sys

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "web"))
import browser_test  # noqa: E402
import fixture  # noqa: E402


def fit_window(driver, bottom):
    """Makes the page's viewport (not the window, which includes the browser's own bars) tall
    enough to show everything down to `bottom` CSS pixels, so that nothing scrolls."""
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight;")
    driver.set_window_size(1400, max(700, int(bottom) + 20 + chrome))


def translation(driver, args, names):
    Select(driver.find_element(By.ID, "model")).select_by_value(names[0])
    if len(names) > 1:
        Select(driver.find_element(By.ID, "compare")).select_by_value(names[1])
    browser_test.translate(driver, args.sentence)
    for view in ("table", "heads", "grid"):
        Select(driver.find_element(By.ID, "view")).select_by_value(view)
        canvas = driver.find_element(By.CSS_SELECTOR, "canvas.view")
        fit_window(driver, canvas.location["y"] + canvas.size["height"] + 40)
        path = os.path.join(args.out, f"{args.prefix}{view}.png")
        driver.save_screenshot(path)
        print(path)


def speech(driver, args, name):
    if driver.find_element(By.ID, "tabs").is_displayed():
        driver.find_element(By.ID, "tab-speech").click()
    Select(driver.find_element(By.ID, "speech-model")).select_by_value(name)
    browser_test.transcribe(driver, os.path.abspath(args.wav))
    status = driver.find_element(By.ID, "speech-status")
    if "error" in status.get_attribute("class"):
        sys.exit(f"transcribing {args.wav} failed: {status.text}")
    canvas = driver.find_element(By.ID, "speech-view")
    hover = driver.find_element(By.ID, "speech-hover")
    fit_window(driver, hover.location["y"] + 2 * hover.size["height"] + 40)
    # Hover a character in the middle of the transcript: its column, row and weights show.
    labels = driver.execute_script("return document.getElementById('speech-view').drawnLabels;")
    label = labels[len(labels) // 2]
    browser_test.hover_at(driver, canvas, label["x"] + label["w"] / 2, label["y"] + label["h"] / 2)
    path = os.path.join(args.out, f"{args.prefix}speech.png")
    driver.save_screenshot(path)
    print(path)


ITEMS = {"top", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
         "boot"}


def caption(driver, args, name):
    if driver.find_element(By.ID, "tabs").is_displayed():
        driver.find_element(By.ID, "tab-caption").click()
    Select(driver.find_element(By.ID, "caption-model")).select_by_value(name)
    browser_test.caption(driver, os.path.abspath(args.image))
    text, error = browser_test.caption_status(driver)
    if error:
        sys.exit(f"captioning {args.image} failed: {text}")
    words = driver.execute_script("return window.attend.caption.answer.words;")
    t = next((i for i, w in enumerate(words) if (w == args.word if args.word else w in ITEMS)), 0)
    span = driver.find_elements(By.CSS_SELECTOR, "#caption-text .word")[t]
    ActionChains(driver).move_to_element(span).perform()
    canvas = driver.find_element(By.ID, "caption-view")
    fit_window(driver, canvas.location["y"] + canvas.size["height"] + 60)
    path = os.path.join(args.out, f"{args.prefix}caption.png")
    driver.save_screenshot(path)
    print(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attend", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sentence", help="the sentence translated (with -m)")
    ap.add_argument("--prefix", default="")
    ap.add_argument("-m", dest="models", action="append", default=[], help="translation model, NAME=CHECKPOINT")
    ap.add_argument("--speech", help="speech model, NAME=CHECKPOINT or CHECKPOINT (with --wav)")
    ap.add_argument("--wav", help="the WAV file transcribed (with --speech)")
    ap.add_argument("--caption", help="captioning model, NAME=CHECKPOINT or CHECKPOINT (with --image)")
    ap.add_argument("--image", help="the image captioned (with --caption)")
    ap.add_argument("--word", help="the caption's word hovered (default: the first item word)")
    args = ap.parse_args()
    if not args.models and not args.speech and not args.caption:
        ap.error("give translation models (-m), a speech model (--speech) or a captioner (--caption)")
    if bool(args.caption) != bool(args.image):
        ap.error("--caption and --image go together")
    if args.models and not args.sentence:
        ap.error("-m needs --sentence")
    if bool(args.speech) != bool(args.wav):
        ap.error("--speech and --wav go together")
    models = dict(m.split("=", 1) for m in args.models)
    names = [m.split("=", 1)[0] for m in args.models]
    speech_name = None
    if args.speech:
        speech_name, path = args.speech.split("=", 1) if "=" in args.speech else ("speech", args.speech)
        models[speech_name] = path
    caption_name = None
    if args.caption:
        caption_name, path = args.caption.split("=", 1) if "=" in args.caption else ("captioner", args.caption)
        models[caption_name] = path
    os.makedirs(args.out, exist_ok=True)
    server = fixture.Server(args.attend, models)
    driver = browser_test.make_driver(args.out)
    try:
        driver.get(server.url)
        # Every view sets its status once the models are listed (a hidden one has no .text).
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "speech-status").get_attribute("textContent") == "ready")
        if names:
            translation(driver, args, names)
        if speech_name:
            speech(driver, args, speech_name)
        if caption_name:
            caption(driver, args, caption_name)
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    main()
