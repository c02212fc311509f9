"""The page at ``/`` in a real headless Chromium (Debian's, driven by selenium through chromedriver): upload an
image, type classes, see the labels, move the slider (no new request), store the vocabulary; a segmenting model's
masks are drawn. A screenshot is kept under pytest's tmp folder and, if ``OVDET_SCREENSHOT_DIR`` is set, there too.

CI installs chromium and chromium-driver (.ci/run); with ``CI`` set, a missing browser fails the test instead of
skipping it.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.media import small_frames, write_clip
from tests.serve.conftest import TOKEN, MaskDetector, metric, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install -y chromium "
                "chromium-driver); CI installs them", allow_module_level=True)  # fmt: skip

from selenium import webdriver  # noqa: E402  (after the skip: selenium is only needed here)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOWN_BOXES = 6  # the screenshot's threshold keeps about this many boxes, so the labels stay readable


@pytest.fixture
def browser(tmp_path: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def detect_requests(server) -> float:
    with server.client() as client:
        return metric(client.get("/metrics").text, "ovdet_requests_total", route="/v1/detect")


def boxes_listed(driver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#detections li"))


def move_slider(driver, value: float) -> None:
    """Move it by keyboard, as a user can: Home (or End), then one step (0.001) per arrow key."""
    slider = driver.find_element(By.ID, "threshold")
    slider.send_keys(Keys.END if value >= 1 else Keys.HOME + Keys.ARROW_RIGHT * round(value * 1000))


def test_try_classes_on_an_image_refilter_and_store_the_vocabulary(server, browser, bottle_frames, tmp_path: Path):
    image = tmp_path / "ward.png"
    cv2.imwrite(str(image), bottle_frames[0])
    wait = WebDriverWait(browser, 60)
    browser.get(server.url)
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "file").send_keys(str(image))
    browser.find_element(By.ID, "classes").send_keys("bottle, person")
    requests_before = detect_requests(server)
    move_slider(browser, 0.0)
    browser.find_element(By.ID, "detect").click()
    wait.until(
        lambda driver: (
            boxes_listed(driver) > 0 or "error" in driver.find_element(By.ID, "status").get_attribute("class")
        )
    )
    status = browser.find_element(By.ID, "status").text
    everything = boxes_listed(browser)
    assert everything > SHOWN_BOXES, status
    labels = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#detections li")]
    assert all(label.split()[0] in ("bottle", "person") for label in labels), labels[:5]
    assert detect_requests(server) == requests_before + 1

    scores = sorted(browser.execute_script("return state.record.detections.map(d => d.confidence)"), reverse=True)
    move_slider(browser, scores[SHOWN_BOXES] + 0.001)
    shown = boxes_listed(browser)
    assert 0 < shown < everything
    assert shown == sum(
        score >= float(browser.find_element(By.ID, "threshold").get_attribute("value")) for score in scores
    )
    move_slider(browser, 1.0)
    assert boxes_listed(browser) == sum(score >= 1.0 for score in scores)
    move_slider(browser, scores[SHOWN_BOXES] + 0.001)
    assert detect_requests(server) == requests_before + 1, "the slider refilters in the page, with no new request"
    _keep_screenshot(browser, tmp_path)

    browser.find_element(By.ID, "vocabulary-name").send_keys("ward-page")
    browser.find_element(By.ID, "save-server").click()
    wait.until(lambda driver: "stored vocabulary ward-page" in driver.find_element(By.ID, "status").text)
    with server.client() as client:
        stored = yaml.safe_load(client.get("/v1/vocabularies/ward-page").text)
    threshold = float(browser.find_element(By.ID, "threshold").get_attribute("value"))
    assert stored == {"classes": {"bottle": {"conf": threshold}, "person": {"conf": threshold}}}
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, '#vocabulary option[value="ward-page"]'))


def _keep_screenshot(browser, tmp_path: Path) -> None:
    shot = tmp_path / "serve-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0
    if folder := os.environ.get("OVDET_SCREENSHOT_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def test_pick_a_frame_of_a_video_and_detect_on_it(server, browser, tmp_path: Path):
    clip = write_clip(tmp_path / "ward.webm", small_frames(10), fps=Fraction(10), codec="libvpx")
    wait = WebDriverWait(browser, 60)
    browser.get(server.url)
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    wait.until(lambda driver: driver.execute_script("return state.name") == "ward.webm at 0.00 s")
    browser.find_element(By.ID, "frame-time").send_keys(Keys.ARROW_RIGHT * 50)  # 0.01 s a step
    wait.until(lambda driver: driver.execute_script("return state.name") == "ward.webm at 0.50 s")
    assert browser.execute_script("return [state.image.width, state.image.height]") == [192, 112]
    browser.find_element(By.ID, "classes").send_keys("bottle")
    browser.find_element(By.ID, "detect").click()
    wait.until(lambda driver: driver.execute_script("return state.record && state.record.source"))
    record = browser.execute_script("return state.record")
    assert record["source"] == "ward.webm at 0.50 s" and (record["width"], record["height"]) == (192, 112)


GRAY = 128
MASK_COLOUR = (0xE6, 0x19, 0x4B)  # the page's colour of class 0
MASK_ALPHA = 0.45


def test_masks_are_drawn_on_the_image(browser, tmp_path: Path):
    image = tmp_path / "gray.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), GRAY, np.uint8))
    with serve(MaskDetector(), tmp_path / "data", warm_up=False) as live:
        browser.get(live.url)
        browser.find_element(By.CSS_SELECTOR, "details summary").click()
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "file").send_keys(str(image))
        browser.find_element(By.ID, "classes").send_keys("bottle")
        browser.find_element(By.ID, "detect").click()
        WebDriverWait(browser, 60).until(lambda driver: boxes_listed(driver) == 1)
    assert browser.execute_script("return state.record.detections[0].polygon.length") == 2, "the part and its hole"
    inside, hole, outside = browser.execute_script(
        "const context = document.getElementById('canvas').getContext('2d');"
        "return [[40, 40], [80, 60], [150, 110]].map(([x, y]) => Array.from(context.getImageData(x, y, 1, 1).data));"
    )
    blended = [round(GRAY * (1 - MASK_ALPHA) + channel * MASK_ALPHA) for channel in MASK_COLOUR]
    assert all(abs(got - want) <= 2 for got, want in zip(inside[:3], blended)), (inside, blended)
    assert hole[:3] == outside[:3] == [GRAY] * 3, (hole, outside)
