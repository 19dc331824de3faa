"""Screenshots of the page of `attend serve` for the docs: each view of one sentence, in headless
Chromium. Models are given as NAME=CHECKPOINT; the first is shown, the second (if any) beside it.

usage: python3 scripts/screenshots.py --attend build/attend --out docs/images \
           --sentence "Could not open the file" -m rnn-attention=runs/quickstart/best.ckpt
"""
import argparse
import os
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "web"))
import browser_test  # noqa: E402
import fixture  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attend", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sentence", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("-m", dest="models", action="append", required=True)
    args = ap.parse_args()
    models = dict(m.split("=", 1) for m in args.models)
    names = [m.split("=", 1)[0] for m in args.models]
    os.makedirs(args.out, exist_ok=True)
    server = fixture.Server(args.attend, models)
    driver = browser_test.make_driver(args.out)
    try:
        driver.get(server.url)
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "status").text == "ready")
        Select(driver.find_element(By.ID, "model")).select_by_value(names[0])
        if len(names) > 1:
            Select(driver.find_element(By.ID, "compare")).select_by_value(names[1])
        browser_test.translate(driver, args.sentence)
        for view in ("table", "heads", "grid"):
            Select(driver.find_element(By.ID, "view")).select_by_value(view)
            canvas = driver.find_element(By.CSS_SELECTOR, "canvas.view")
            driver.set_window_size(1400, max(700, canvas.location["y"] + canvas.size["height"] + 60))
            path = os.path.join(args.out, f"{args.prefix}{view}.png")
            driver.save_screenshot(path)
            print(path)
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    main()
