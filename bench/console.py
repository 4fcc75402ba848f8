"""Console pages on a full store: 10,000,000 protocol records, 5,000 assets, 100,000 alerts.

The store is filled by `console_fill.py` (the plant model, records, inventory, baselines, alerts
and their events, written as the application writes them) into
`.cache/bench-console/<fill version and size>/` and kept there: a second run measures the same
store without filling it again (delete the folder to refill). `--quick` fills and measures a small
store (100,000 records, 500 assets, 5,000 alerts).

The real server (`python -m plantwarden serve`, uvicorn, TLS off, on a free loopback port) runs
on that store in its own process. The benchmark logs in through the console's form (password and
a TOTP code) as a user who is admin and security analyst at both sites, then requests every GET
page of the route table (path parameters filled with real ids: the newest alert, the asset with
the most communications, the busiest conduit, the largest baseline scope) plus the filters the
pages offer, sequentially over one keep-alive connection: 3 warm-ups, then 50 timed requests each
(1 and 10 with --quick), each read to its end. Target: p95 <= 300 ms for every page. The first
request of each page is reported on its own (`first`): a page that keeps what it drew (the map,
until the inventory changes) answers that one cold and the timed ones warm; `/map.svg` and
`/map` draw the same map, so `/map.svg`'s first is warm already.

References, same server and store, same run:
- `GET /api/v1/me` (the caller as JSON): what any authenticated request costs on this stack
  (session, policy, middleware, HTTP), the floor of every page; each page's p95 is given as a
  multiple of it.
- The alert list's own SQL (the statements `/alerts` runs, with its filters) run through
  `sqlite3` directly on the same database file: the floor of that page's data access.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite

from bench.console_fill import FULL, QUICK, Size, fill, settings_for
from plantwarden.accounts import totp
from plantwarden.alerts.models import Alert
from plantwarden.alerts.queries import AlertFilter, _filtered, _in_places
from plantwarden.core.access import AUTHENTICATED_ACTION
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.detection.baselines.models import BaselineFact
from plantwarden.inventory.models import StoredEdge
from plantwarden.web.app import create_app
from plantwarden.web.route_table import route_table

TARGET_MS = 300.0
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench-console"
SOURCE = Path(__file__).resolve().parents[1] / "src"
SKIPPED = {"/live": "an endless event stream, not a page"}
EXTRA = ("/alerts?severity=high", "/alerts?status=new", "/alerts?suppressed=1", "/assets?site=plant-b",
         "/assets?role=plc", "/assets?page=25", "/conduits/supervisory-cells?page=24",
         "/map?site=plant-b", "/zones?site=plant-b")  # fmt: skip


def filled_store(size: Size) -> Path:
    """The data directory of a filled store of `size`, filled now unless the cache holds one."""
    folder = CACHE / size.key
    if (folder / "fill.json").exists():
        info = json.loads((folder / "fill.json").read_text())
        print(f"store: cached in {folder} (filled in {info['seconds']:.0f} s; delete it to refill)")
        return folder
    partial = CACHE / f"{size.key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    counts = f"{size.records:,} records, {size.assets:,} assets, {size.alerts:,} alerts"
    print(f"store: filling {partial} ({counts})")
    info = fill(partial, size)
    partial.rename(folder)
    print(f"store: filled in {info['seconds']:.0f} s")
    return folder


@contextmanager
def server(data_dir: Path) -> Iterator[int]:
    """`plantwarden serve` on the store in `data_dir`, on a free port; yields the port."""
    with tempfile.TemporaryDirectory(prefix="pw-bench-console-") as folder:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWARDEN_")}
        env["PLANTWARDEN_DATA_DIR"] = str(data_dir)
        env["PYTHONPATH"] = os.pathsep.join([str(SOURCE), *filter(None, [env.get("PYTHONPATH")])])
        log = Path(folder) / "server.log"
        command = [sys.executable, "-m", "plantwarden", "serve", "--port", str(port), "--tls", "off"]
        with log.open("w") as output:
            child = subprocess.Popen(command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_for_health(port, child, log)
            yield port
        except (OSError, http.client.HTTPException):
            print(log.read_text()[-5000:])
            raise
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_health(port: int, child: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the server stopped:\n{log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /healthz in 120 s:\n{log.read_text()}")


class Browser:
    """One keep-alive HTTP connection with the console's cookies."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()  # the server closed an idle keep-alive connection: open anew
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("set-cookie") or ():
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "expires=Thu, 01 Jan 1970" in header or value in ('""', ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.status, content

    def log_in(self, info: dict[str, Any]) -> None:
        """Through the login form, with a TOTP code of the user's authenticator (a code is valid
        once: when the fill's confirmation used this step's code, wait for the next)."""
        secret = totp.secret_from_base32(info["secret"])
        for _ in range(3):
            _, page = self.request("GET", "/login")
            csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page)
            if csrf is None:
                raise SystemExit("no CSRF token on the login page")
            code = totp.code_at(secret, _utc_now())
            form = {"username": info["username"], "password": info["password"], "totp": code}
            status, _ = self.request("POST", "/login", {**form, "csrf_token": csrf[1].decode()})
            if status == 303:
                return
            time.sleep(31 - time.time() % 30)
        raise SystemExit(f"cannot log in (last answer {status})")


def _utc_now() -> Any:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.now(UTC)


@dataclass(frozen=True)
class Timing:
    path: str
    times_ms: list[float]
    size: int
    first_ms: float = 0.0
    """The first request (the first warm-up): the cold one of a page that keeps what it drew."""

    def quantile(self, share: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(browser: Browser, path: str, warm: int, runs: int) -> Timing:
    times, size, first = [], 0, 0.0
    for number in range(warm + runs):
        started = time.perf_counter()
        status, content = browser.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise SystemExit(f"GET {path}: {status}\n{content[:2000].decode(errors='replace')}")
        first = first or elapsed
        if number >= warm:
            times.append(elapsed)
            size = len(content)
    return Timing(path, times, size, first)


def console_pages(data_dir: Path) -> list[str]:
    """Every GET page of the route table (not the API, not public or account pages), with path
    parameters filled from the store, then the filters in `EXTRA`."""
    settings = settings_for(data_dir)
    store = Store.from_settings(settings[CoreSettings])
    try:
        ids = _path_values(store)
        ids["username"] = json.loads((data_dir / "fill.json").read_text())["username"]
        found: list[str] = []
        for entry in route_table(create_app(settings, store)):
            if "GET" not in entry.methods or entry.path.startswith(("/api/", "/.well-known/")):
                continue
            if entry.permission in ("public", AUTHENTICATED_ACTION) or entry.path in SKIPPED:
                continue
            found.append(re.sub(r"\{(\w+)\}", lambda m: ids[m[1]], entry.path))
        return [*found, *EXTRA, *_list_filters(store)]
    finally:
        store.close()


def _path_values(store: Store) -> dict[str, str]:
    with store.transaction() as session:
        newest = session.scalars(
            select(Alert.id).where(Alert.suppressed.is_(False)).order_by(Alert.last_seen.desc()).limit(1)
        ).one()
        ends = (
            select(StoredEdge.client_asset_id.label("asset"))
            .union_all(select(StoredEdge.server_asset_id.label("asset")))
            .subquery()
        )
        busiest = session.execute(
            select(ends.c.asset).group_by(ends.c.asset).order_by(func.count().desc()).limit(1)
        ).scalar_one()
        site, scope = session.execute(
            select(BaselineFact.site, BaselineFact.scope)
            .group_by(BaselineFact.site, BaselineFact.scope)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
    return {"alert_id": str(newest), "key": str(busiest), "conduit_id": "supervisory-cells",
            "site": site, "scope": urllib.parse.quote(scope, safe="")}  # fmt: skip


def _list_filters(store: Store) -> list[str]:
    """The alert list filtered by the commonest technique and by the address in most alerts."""
    with store.transaction() as session:
        rows = session.execute(select(Alert.techniques, Alert.assets).limit(5000)).all()
    techniques: dict[str, int] = {}
    assets: dict[str, int] = {}
    for found_techniques, found_assets in rows:
        for item in found_techniques:
            techniques[item] = techniques.get(item, 0) + 1
        for item in found_assets:
            assets[item] = assets.get(item, 0) + 1
    return [f"/alerts?technique={max(techniques, key=techniques.__getitem__)}",
            f"/alerts?asset={max(assets, key=assets.__getitem__)}"]  # fmt: skip


def alert_list_sql(database: Path, runs: int) -> tuple[float, str]:
    """p95 of the default alert list's statements (list and suppressed count) through sqlite3,
    and the list's query plan."""
    query = AlertFilter(suppressed=False, limit=200)
    places = [("plant-a", None), ("plant-b", None)]
    listed = _filtered(select(Alert), query).where(_in_places(places))
    listed = listed.order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(200)
    counted = _filtered(select(Alert), AlertFilter(suppressed=True)).where(_in_places(places))
    statements = [
        str(s.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        for s in (listed, select(func.count()).select_from(counted.subquery()))
    ]
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        times = []
        for number in range(runs + 3):
            started = time.perf_counter()
            for statement in statements:
                connection.execute(statement).fetchall()
            if number >= 3:
                times.append((time.perf_counter() - started) * 1000)
        plan = "; ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {statements[0]}"))
    finally:
        connection.close()
    return Timing("sql", times, 0).quantile(0.95), plan


def _row(timing: Timing, floor_ms: float) -> str:
    p50, p95, most = statistics.median(timing.times_ms), timing.quantile(0.95), max(timing.times_ms)
    mark = "" if p95 <= TARGET_MS else "  MISSES"
    figures = (
        f"{timing.first_ms:>6.1f}ms {p50:>6.1f}ms {p95:>6.1f}ms {most:>6.1f}ms {timing.size / 1024:>6.0f}"
    )
    return f"{timing.path[:62]:<62} {figures} x{p95 / floor_ms:>6.1f}{mark}"


def run(quick: bool = False, pages: str | None = None) -> None:
    """Fill (or reuse) the store, serve it, and time every console page (those whose path matches
    the regular expression `pages`, if given)."""
    size = QUICK if quick else FULL
    warm, runs = (1, 10) if quick else (3, 50)
    data_dir = filled_store(size)
    info = json.loads((data_dir / "fill.json").read_text())
    print(f"input: {info['records']:,} stored records, {size.assets:,} assets, {size.alerts:,} alerts"
          f" (fill {size.key}); SQLite; {warm} warm-ups and {runs} timed requests a page")  # fmt: skip
    paths = [path for path in console_pages(data_dir) if pages is None or re.search(pages, path)]
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    timings = []
    with server(data_dir) as port:
        browser = Browser(port)
        browser.log_in(info)
        floor = measure(browser, "/api/v1/me", warm, runs)
        print(f"{'page':<62} {'first':>8} {'p50':>8} {'p95':>8} {'max':>8} {'KiB':>6} {'p95/me':>7}")
        print(_row(floor, floor.quantile(0.95)))
        for path in paths:
            timings.append(measure(browser, path, warm, runs))
            print(_row(timings[-1], floor.quantile(0.95)), flush=True)
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    alerts = next((t for t in timings if t.path == "/alerts"), None)
    if alerts is not None:
        sql_p95, plan = alert_list_sql(data_dir / "plantwarden.db", runs)
        print(
            f"reference: the alert list's SQL through sqlite3: p95 {sql_p95:.1f} ms;"
            f" /alerts p95 is x{alerts.quantile(0.95) / sql_p95:.1f} that"
        )
        print(f"  its plan: {plan}")
    missed = [t.path for t in timings if t.quantile(0.95) > TARGET_MS]
    verdict = "PASS" if not missed else f"FAIL ({len(missed)} pages over: {', '.join(missed)})"
    print(f"target p95 <= {TARGET_MS:.0f} ms on every page: {verdict}")
