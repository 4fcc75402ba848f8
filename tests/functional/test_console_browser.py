"""The console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium with the system chromedriver: nothing is downloaded), against `plantwarden demo`: the
admin logs in with the printed one-time password, sets a password, enrols the second factor,
launches an attack from the Exercises page, finds its alert with its technique and evidence, and
acknowledges it; a new alert appears on the open Alerts page without a reload; an operator who
types an administration URL gets 403. Every step saves a screenshot (into
$PW_TEST_SCREENSHOTS when set, as docs/demo.md's were made; else the test's directory)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from plantwarden.accounts import totp
from tests.helpers import free_port, wait_for

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").lower() == "true"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
pytestmark = pytest.mark.skipif(
    not HAVE_BROWSER and not IN_CI,
    reason="needs Debian's chromium and chromium-driver (scripts/debian-packages.txt; scripts/test installs"
    " them as root)",
)
PASSWORD = "a long and quiet valve"


@dataclass
class Demo:
    url: str
    directory: Path
    one_time: str


def _healthy(port: int) -> bool | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return True if answer.status == 200 else None
    except OSError:
        return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("browser")
    port, directory = free_port(), base / "demo"
    command = [sys.executable, "-m", "plantwarden", "--data-dir", str(base / "data"), "demo",
               "--dir", str(directory), "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    said: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: said.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        one_time = wait_for(
            lambda: (found := re.search(r"login:    admin / (\S+)", "".join(said))) and found[1],
            timeout=60,
            what="the demo's banner",
        )
        wait_for(lambda: _healthy(port), timeout=60, what="the demo's console")
        yield Demo(f"http://127.0.0.1:{port}", directory, str(one_time))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        reader.join(5)
        process.stderr.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    assert HAVE_BROWSER, "CI installs chromium and chromium-driver (scripts/debian-packages.txt)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("PW_TEST_SCREENSHOTS")
    where = Path(chosen) if chosen else tmp_path / "screenshots"
    where.mkdir(parents=True, exist_ok=True)
    return where


def _wait(driver: WebDriver, seconds: float = 20) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def _submit(driver: WebDriver, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        box = driver.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def _first_login(driver: WebDriver, url: str, username: str, one_time: str, shots: Path | None) -> None:
    """Log in with a one-time password, set a password and, where asked, enrol the second factor."""
    driver.get(f"{url}/login")
    if shots:
        driver.save_screenshot(str(shots / "01-login.png"))
    _submit(driver, {"username": username, "password": one_time})
    _wait(driver).until(expected_conditions.url_contains("/account/password"))
    _submit(driver, {"new_password": PASSWORD, "repeat": PASSWORD})
    _wait(driver).until(lambda d: "/account/password" not in d.current_url)
    if "/account/mfa" in driver.current_url:
        secret = driver.find_element(By.CSS_SELECTOR, "code.secret").text
        if shots:
            driver.save_screenshot(str(shots / "02-second-factor.png"))
        code = totp.code_at(totp.secret_from_base32(secret), datetime.now(UTC))
        _submit(driver, {"code": code})
        _wait(driver).until(lambda d: "recovery" in d.page_source.lower())


def test_log_in_launch_an_attack_see_its_alert_and_acknowledge_it(
    demo: Demo, browser: WebDriver, tmp_path: Path
) -> None:
    shots = _shots(tmp_path)
    _first_login(browser, demo.url, "admin", demo.one_time, shots)
    browser.get(f"{demo.url}/exercises")
    launch = _wait(browser).until(
        expected_conditions.element_to_be_clickable((By.ID, "launch-out-of-range-setpoint"))
    )
    browser.save_screenshot(str(shots / "03-exercises.png"))
    launch.click()
    _wait(browser).until(lambda d: "out-of-range-setpoint" in d.find_element(By.TAG_NAME, "main").text)
    browser.get(f"{demo.url}/alerts")
    # the alert comes within seconds: in the page as it loads, or added live by the page's script
    link = _wait(browser, 30).until(
        lambda d: d.find_element(By.PARTIAL_LINK_TEXT, "Setpoint written outside its safe range")
    )
    browser.save_screenshot(str(shots / "04-alerts.png"))
    link.click()
    _wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "acknowledge")))
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "T0836" in page, page
    assert browser.find_elements(By.CSS_SELECTOR, "section.panel pre"), "the alert shows no evidence"
    browser.save_screenshot(str(shots / "05-alert.png"))
    browser.find_element(By.NAME, "note").send_keys("checking the boiler's setpoint")
    browser.find_element(By.ID, "acknowledge").click()
    _wait(browser).until(lambda d: "acknowledged" in d.find_element(By.TAG_NAME, "main").text)
    assert not browser.find_elements(By.ID, "acknowledge")
    browser.save_screenshot(str(shots / "06-acknowledged.png"))
    # live: with the Alerts page open, a new attack's alert appears without a reload
    browser.get(f"{demo.url}/alerts")
    token = browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] input[name=csrf_token]")
    browser.execute_script(
        "fetch('/exercises/unauthorized-write', {method: 'POST', headers: {'X-CSRF-Token': arguments[0]}})",
        token.get_attribute("value"),
    )
    _wait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.live-new"))
    assert browser.find_element(By.ID, "live-alerts").is_displayed()
    browser.save_screenshot(str(shots / "07-live.png"))


def test_an_operator_who_types_an_administration_url_gets_403(
    demo: Demo, browser: WebDriver, tmp_path: Path
) -> None:
    added = subprocess.run(
        [sys.executable, "-m", "plantwarden", "--data-dir", str(demo.directory), "user", "add", "olga",
         "--role", "operator", "--site", "riverside"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    one_time = re.search(r"one-time password \(shown once\): (\S+)", added)
    assert one_time is not None, added
    _first_login(browser, demo.url, "olga", one_time[1], None)
    for url in ("/api/v1/users", "/exercises"):
        browser.get(f"{demo.url}{url}")
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "403" in text or "permission" in text.lower() or "not allowed" in text.lower(), (url, text)
    browser.save_screenshot(str(_shots(tmp_path) / "08-operator-403.png"))
