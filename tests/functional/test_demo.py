"""`plantwarden demo` as a new user runs it: up within 30 seconds (the console answers, the plant
and the sensor run), an attack launched against the plant becomes an alert within 10 seconds and
the plant's own polls raise none, the same attack through the security gateway in front of the
PLCs is refused there and raises the gateway's alert, the PLCs' telemetry reaches the store
through the demo's broker, Ctrl-C stops every process.

Then the console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium with the system chromedriver: nothing is downloaded), against another demo: the admin
logs in with the printed one-time password, sets a password, enrols the second factor, launches an
attack from the Exercises page, finds its alert with its technique and evidence, and acknowledges
it; a new alert appears on the open Alerts page without a reload; an operator who types an
administration URL gets 403. Every step saves a screenshot (into $PW_TEST_SCREENSHOTS when set, as
docs/demo.md's were made; else the test's directory).

From the keyboard alone, a new user logs in, reaches a page from the top bar, launches a scenario
and highlights an asset of the map (the skip link first in every page's tab order).

One module, so that the two demos never run at once (their plant's ports are fixed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from plantwarden.accounts import totp
from plantwarden.alerts.models import Alert
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import console_up, free_port, wait_for

UP_WITHIN, ALERT_WITHIN = 30.0, 10.0
SITE = "riverside"
PASSWORD = "a long and quiet valve"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").lower() == "true"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
needs_browser = pytest.mark.skipif(
    not HAVE_BROWSER and not IN_CI,
    reason="needs Debian's chromium and chromium-driver (scripts/debian-packages.txt; scripts/test installs"
    " them as root)",
)


def _alerts(directory: Path) -> list[tuple[str, str]]:
    """(rule, title) of every alert in the demo's store."""
    runtime = Runtime(make_settings(directory), SystemClock())
    try:
        with runtime.store().transaction() as session:
            return [(rule, title) for rule, title in session.execute(select(Alert.rule_id, Alert.title))]
    finally:
        runtime.close()


def _form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def _set_up_admin(console: httpx.Client, one_time: str) -> httpx.Response:
    """The first login of the demo's admin, as in a browser; the Exercises page at the end."""
    login = console.get("/login")
    answer = console.post(
        "/login", data={"username": "admin", "password": one_time, "csrf_token": _form_token(login.text)}
    )
    assert answer.url.path == "/account/password", answer.text[:2000]
    new = {"new_password": PASSWORD, "repeat": PASSWORD}
    answer = console.post("/account/password", data={**new, "csrf_token": _form_token(answer.text)})
    assert answer.url.path == "/account/mfa", answer.text[:2000]
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', answer.text)
    assert secret is not None, answer.text[:2000]
    code = totp.code_at(totp.secret_from_base32(secret[1]), datetime.now(UTC))
    confirmed = console.post("/account/mfa", data={"code": code, "csrf_token": _form_token(answer.text)})
    assert confirmed.status_code == 200, confirmed.text[:2000]
    return console.get("/exercises")


def _telemetry(directory: Path) -> set[str]:
    """The devices with telemetry samples in the demo's store."""
    query = subprocess.run(
        [sys.executable, "-m", "plantwarden", "--data-dir", str(directory), "telemetry", "query",
         "--site", "riverside"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return {line.split()[1] for line in query.stdout.splitlines() if len(line.split()) > 2}


def test_the_demo_comes_up_raises_an_attacks_alert_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, directory = free_port(), tmp_path / "demo"
    command = [sys.executable, "-m", "plantwarden", "--data-dir", str(tmp_path / "data"), "demo",
               "--dir", str(directory), "--port", str(port)]  # fmt: skip
    started = time.monotonic()
    demo = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    said: list[str] = []
    assert demo.stderr is not None

    def drain() -> None:  # the demo's messages: they must never fill the pipe
        said.extend(demo.stderr or ())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(lambda: console_up(port), timeout=UP_WITHIN, what="the demo's console")
        # and the security gateway in front of the PLCs
        gateway = "gateway of site riverside listening: modbus 127.10.1.60:5020"
        wait_for(lambda: True if gateway in "".join(said) else None, timeout=UP_WITHIN, what="the gateway")
        # and the plant (its control socket carries the Exercises page's launches): with bytecode
        # compiled the console can answer before the plant has started
        control = directory / "sim" / "control.sock"
        wait_for(lambda: control.exists() or None, timeout=UP_WITHIN, what="the plant's control socket")
        up = time.monotonic() - started
        banner = "".join(said)
        assert f"console:  http://127.0.0.1:{port}/" in banner, banner
        assert "login:    admin / " in banner and "one-time password" in banner, banner
        assert up <= UP_WITHIN
        # the plant runs and the sensor reads its tap: the attack goes through the plant's
        # control socket (its tap sees it) and the sensor's rules raise the alert
        # the demo's admin logs in with the one-time password, sets a password, enrols the second
        # factor, and launches the attack from the console's Exercises page
        one_time = re.search(r"login:    admin / (\S+)", banner)
        assert one_time is not None, banner
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, follow_redirects=True) as console:
            page = _set_up_admin(console, one_time[1])
            assert 'id="launch-out-of-range-setpoint"' in page.text, page.text[:2000]
            launched = time.monotonic()
            answer = console.post(
                "/exercises/out-of-range-setpoint", data={"csrf_token": _form_token(page.text)}
            )
            assert answer.status_code == 200 and "out-of-range-setpoint" in answer.text  # back on the page
            cookies = console.cookies

        wait_for(
            lambda: True if "pw-setpoint-out-of-range" in dict(_alerts(directory)) else None,
            timeout=ALERT_WITHIN,
            what="the attack's alert",
        )
        assert time.monotonic() - launched <= ALERT_WITHIN
        # the same attack through the security gateway in front of the PLCs: refused by its safety
        # envelope (14 bar is above boiler-1's 2-10 bar), recorded, and the gateway's alert raised
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, follow_redirects=True) as console:
            console.cookies = cookies
            page = console.get("/exercises")
            assert 'id="launch-out-of-range-setpoint-gateway"' in page.text, page.text[:2000]
            answer = console.post(
                "/exercises/out-of-range-setpoint",
                data={"csrf_token": _form_token(page.text), "via": "gateway"},
            )
            assert answer.status_code == 200 and "(through the gateway)" in answer.text
        wait_for(
            lambda: [title for rule, title in _alerts(directory) if rule == "pw-gateway-denied"
                     and "envelope:boiler-1/pressure_setpoint" in title] or None,
            timeout=ALERT_WITHIN,
            what="the gateway's alert",
        )  # fmt: skip
        # the plant's own polls are what its model allows (the demo moved its Modbus channels to
        # the port its PLCs serve): none of them is an alert
        hmi, historian = "127.10.1.10", "127.10.1.30"
        assert not [title for _, title in _alerts(directory) if hmi in title or historian in title]
        # the PLCs' telemetry goes through the demo's broker to the store (every 10 s)
        wait_for(lambda: _telemetry(directory) or None, timeout=30, what="the PLCs' telemetry in the store")
        _sensor_survives_a_kill(demo.pid, directory, said)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
        finally:
            reader.join(5)
            demo.stderr.close()
    assert code == 0
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-s", str(demo.pid)], capture_output=True, text=True, check=False)
    assert alive.stdout.strip() == "", f"processes left behind: {alive.stdout}"


def _sensor_survives_a_kill(session: int, directory: Path, said: list[str]) -> None:
    """The sensor killed: the supervisor starts another, the plant's tap starts a new capture
    section for it, and it reads on; no client of the plant fails (a broken pipe on the tap
    once ended every HMI and historian client, and each new sensor read a capture from its middle)."""
    found = subprocess.run(["pgrep", "-s", str(session), "-f", f"sensor run --tap {directory}"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    (pid,) = found.stdout.split()
    before = len(said)
    os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: True if "a reader opened the tap again" in "".join(said[before:]) else None,
             timeout=UP_WITHIN, what="the tap's new section for the restarted sensor")  # fmt: skip
    started = len(said)
    progress = re.compile(r"^\d[\d,]* packets ", re.MULTILINE)
    wait_for(lambda: progress.search("".join(said[started:])), timeout=UP_WITHIN,
             what="the restarted sensor's progress")  # fmt: skip
    assert "client failed" not in "".join(said[before:])


# --- the console in a browser ------------------------------------------------------------------


@dataclass
class Demo:
    url: str
    directory: Path
    one_time: str
    said: list[str]


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
        wait_for(lambda: console_up(port), timeout=60, what="the demo's console")
        # the plant (its control socket lists the scenarios) and the gateway, not only the console
        gateway = "gateway of site riverside listening"
        wait_for(lambda: (directory / "sim" / "control.sock").exists() or None, timeout=60, what="the plant")
        wait_for(lambda: gateway in "".join(said) or None, timeout=60, what="the gateway")
        yield Demo(f"http://127.0.0.1:{port}", directory, str(one_time), said)
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
    # a click that submits a form leaves the old page in place for a moment: an element found
    # there goes stale as the new page loads, and the next poll finds the new page's. Chromium
    # reports the same race, when the page goes between finding an element and reading it, as
    # an "unknown error" ("Node with given id does not belong to the document"), a plain
    # WebDriverException: the next poll is asked too (a browser gone for good times out here).
    return WebDriverWait(driver, seconds, poll_frequency=0.2, ignored_exceptions=(WebDriverException,))


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


def _add_user(demo: Demo, username: str, role: str, *more: str) -> str:
    """Add a user of the demo's site with `role` (and `more` roles) by the CLI; the one-time password."""

    def cli(*arguments: str) -> str:
        command = [sys.executable, "-m", "plantwarden", "--data-dir", str(demo.directory), "user", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout

    added = cli("add", username, "--role", role, "--site", SITE)
    one_time = re.search(r"one-time password \(shown once\): (\S+)", added)
    assert one_time is not None, added
    for other in more:
        cli("grant", username, "--role", other, "--site", SITE)
    return one_time[1]


def _diagnosis(demo: Demo, browser: WebDriver) -> str:
    """What the demo did, for a wait that timed out: the launches, the alerts, its last words."""
    browser.get(f"{demo.url}/exercises")
    launches = browser.find_element(By.TAG_NAME, "main").text
    said = "".join(demo.said[-60:])
    return f"launches:\n{launches}\nalerts in the store: {_alerts(demo.directory)}\nthe demo said:\n{said}"


def _until_found(demo: Demo, browser: WebDriver, seconds: float, find: Callable[[WebDriver], object]) -> Any:
    try:
        return _wait(browser, seconds).until(find)
    except TimeoutException:
        raise AssertionError(_diagnosis(demo, browser)) from None


@needs_browser
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
    # back on the page, the launch listed (still running, or done): not an error page
    _wait(browser, 30).until(
        lambda d: re.search(
            r"out-of-range-setpoint\s+T0836\s+admin\s+(running|done)",
            d.find_element(By.TAG_NAME, "main").text,
        )
    )
    browser.get(f"{demo.url}/alerts")
    # the alert comes within seconds: in the page as it loads, or added live by the page's script
    link = _until_found(
        demo,
        browser,
        60,
        lambda d: d.find_element(By.PARTIAL_LINK_TEXT, "Setpoint written outside its safe range"),
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
    _until_found(demo, browser, 60, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.live-new"))
    assert browser.find_element(By.ID, "live-alerts").is_displayed()
    browser.save_screenshot(str(shots / "07-live.png"))

    # the overview's charts: the open alerts (two now) and, once the sensor saved its inventory
    # (every 10 s), the assets it found per zone
    def overview_with_assets(driver: WebDriver) -> bool:
        driver.get(f"{demo.url}/")
        return bool(driver.find_elements(By.ID, "chart-assets"))

    _until_found(demo, browser, 60, overview_with_assets)
    overview = browser.find_element(By.TAG_NAME, "main").text
    assert "Open alerts by severity" in overview and "Assets per zone" in overview, overview
    assert browser.find_elements(By.CSS_SELECTOR, "main svg"), "the overview draws no chart"
    browser.save_screenshot(str(shots / "09-overview.png"))
    # users and roles: the demo's admin is listed with its two roles
    browser.get(f"{demo.url}/users")
    users = browser.find_element(By.TAG_NAME, "main").text
    assert "admin" in users and "security_analyst" in users, users
    browser.save_screenshot(str(shots / "10-users.png"))


@needs_browser
def test_an_operator_who_types_an_administration_url_gets_403(
    demo: Demo, browser: WebDriver, tmp_path: Path
) -> None:
    _first_login(browser, demo.url, "olga", _add_user(demo, "olga", "operator"), None)
    for url in ("/api/v1/users", "/exercises"):
        browser.get(f"{demo.url}{url}")
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "403" in text or "permission" in text.lower() or "not allowed" in text.lower(), (url, text)
    browser.save_screenshot(str(_shots(tmp_path) / "08-operator-403.png"))


def _keys(driver: WebDriver, *keys: str) -> None:
    driver.switch_to.active_element.send_keys(*keys)


def _focused(driver: WebDriver, name: str) -> None:
    """Wait until the page has put the focus in its field `name` (autofocus, once loaded)."""
    _wait(driver).until(lambda d: d.switch_to.active_element.get_attribute("name") == name)


def _tab_to(driver: WebDriver, wanted: Callable[[Any], bool], limit: int = 80) -> Any:
    """Press Tab until the focused element is `wanted` (at most `limit` times)."""
    for _ in range(limit):
        _keys(driver, Keys.TAB)
        focused = driver.switch_to.active_element
        if wanted(focused):
            return focused
    raise AssertionError(f"{limit} Tab presses never reached the element on {driver.current_url}")


@needs_browser
def test_the_console_works_from_the_keyboard(demo: Demo, browser: WebDriver) -> None:
    # a security analyst works alerts and runs exercises; the map is for those who read sites
    one_time = _add_user(demo, "kim", "security_analyst", "viewer")
    # the first login, with the keys alone: each form's first field has the focus (a security
    # analyst's roles ask for no second factor; the admin's walk above enrols one)
    browser.get(f"{demo.url}/login")
    _focused(browser, "username")
    _keys(browser, "kim", Keys.TAB, one_time, Keys.ENTER)
    _wait(browser).until(expected_conditions.url_contains("/account/password"))
    _focused(browser, "new_password")
    _keys(browser, PASSWORD, Keys.TAB, PASSWORD, Keys.ENTER)
    _wait(browser).until(lambda d: "/account/password" not in d.current_url)
    if "/account/mfa" in browser.current_url:  # where the user's roles ask for a second factor
        secret = browser.find_element(By.CSS_SELECTOR, "code.secret").text
        _focused(browser, "code")
        _keys(browser, totp.code_at(totp.secret_from_base32(secret), datetime.now(UTC)), Keys.ENTER)
        _wait(browser).until(lambda d: "recovery" in d.page_source.lower())
    # the first Tab of a page reaches the skip link, which moves the focus to the content
    browser.get(f"{demo.url}/alerts")
    skip = _tab_to(browser, lambda element: element.get_attribute("class") == "skip", limit=1)
    assert skip.is_displayed()
    _keys(browser, Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    # the top bar's links reach every page; the one shown is marked as the current page
    _tab_to(browser, lambda element: element.get_attribute("href") == f"{demo.url}/exercises")
    _keys(browser, Keys.ENTER)
    _wait(browser).until(expected_conditions.url_contains("/exercises"))
    current = browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]")
    assert current.text == "Exercises"
    # a scenario is launched with Tab and Enter
    _tab_to(browser, lambda element: element.get_attribute("id") == "launch-scan", limit=200)
    _keys(browser, Keys.ENTER)
    _wait(browser, 30).until(
        lambda d: re.search(r"scan\s+T0846\s+kim\s+(running|done)", d.find_element(By.TAG_NAME, "main").text)
    )
    # the map's assets take the focus; Enter highlights one with its peers, Escape clears
    browser.get(f"{demo.url}/map")
    node = _tab_to(
        browser, lambda element: "node" in (element.get_attribute("class") or "").split(), limit=40
    )
    _keys(browser, Keys.ENTER)
    assert "hl" in (node.get_attribute("class") or "").split()
    _keys(browser, Keys.ESCAPE)
    assert not browser.find_elements(By.CSS_SELECTOR, "svg.commmap .hl")
