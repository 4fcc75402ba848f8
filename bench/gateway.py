"""The Modbus/TCP security gateway's cost: pymodbus's own TLS server reached directly, against the
same kind of server behind the gateway, in the same run.

Peers, each in a process of its own (spawned), on loopback:
- the PLCs: pymodbus 3.16.1's `ModbusTlsServer` (mbaps, the direct path; its TLS context is the
  gateway's: TLS 1.2+, client certificate required from the platform CA) and its plain
  `ModbusTcpServer` (the PLC behind the gateway), in one process, with the same ten registers;
- the gateway: `plantwarden gateway run` (mbaps listener; policy from the plant file and the store;
  certificate checks against the inventory; revocation watch; records into the records plane),
  its process pinned to one core; its upstream pool (2 connections) keeps one request in flight
  per connection (`--pipeline-depth 1`), because pymodbus's server loses pipelined requests;
- the clients, in this process: a lean asyncio mbaps client (TLS with an operator certificate
  issued by a test platform CA), the same for both paths; each request reads holding registers
  0-9 and the answer is checked byte for byte.
Measures: latency at one client (4,000 requests in alternating blocks, after a warm-up; added =
gateway percentile - direct percentile); throughput of closed-loop clients at 1 and 16 clients
(best of 2 alternating rounds of 2 s; 1 s with --quick); a plant-shaped load of 50 clients at 10
requests/s each for 20 s (5 s with --quick), timeout 1 s. Wall-clock time on a shared machine:
the load average is printed with the numbers. Targets of issue 13 beside them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import re
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from plantwarden.cli.catalog import SECTIONS
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import Settings, load_settings
from plantwarden.gateway.identity import server_context
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.keys import key_pem, new_key
from plantwarden.pki.service_certs import Purpose, ServiceIdentity, ensure_service_identity
from plantwarden.sim.modbus_server._pymodbus import ModbusServerContext, ModbusTcpServer, untyped

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock
    from pymodbus.server import ModbusTlsServer

SITE, ZONE, ROLE = "plant-a", "cell-1", "operator"
HOLDING = [1000 + 7 * address for address in range(10)]
REGISTERS = "\n".join(
    f"          - {{address: {a}, name: r{a}, kind: holding, type: uint16, writers: [engineer]}}"
    for a in range(10)
)
PLANT = f"""\
version: 1
sites:
  - id: {SITE}
    zones:
      - {{id: {ZONE}, purdue_level: 1, subnets: [127.0.0.0/8], security_level: 2}}
    assets:
      - id: plc-1
        address: 127.0.0.1
        unit_id: 1
        gateway_only: true
        registers:
{REGISTERS}
    rights:
      - {{role: operator, zones: [{ZONE}], operations: ["modbus.read"]}}
      - {{role: engineer, zones: [{ZONE}], operations: ["modbus.read", "modbus.write"]}}
"""
REQUEST = struct.pack(">BHH", 3, 0, len(HOLDING))
ANSWER = struct.pack(f">BB{len(HOLDING)}H", 3, 2 * len(HOLDING), *HOLDING)
LATENCY_REQUESTS, LATENCY_BLOCKS, WARM_UP = 4_000, 8, 200
PLANT_CLIENTS, PLANT_RATE, PLANT_TIMEOUT = 50, 10.0, 1.0


@dataclass(frozen=True)
class Setup:
    """The files both sides need: the data directory (store, PKI) and the certificates."""

    data_dir: Path
    server: ServiceIdentity
    client_certificate: Path
    client_key: Path


def _settings(data_dir: Path) -> Settings:
    return load_settings(SECTIONS, environ={}, cwd=data_dir, overrides={"data_dir": str(data_dir)})


def prepare(data_dir: Path) -> Setup:
    """A platform CA, an operator certificate in the inventory and the servers' certificate."""
    runtime = Runtime(_settings(data_dir))
    try:
        ca = CertificateAuthority.initialise(pki_directory(runtime.core.data_path), b"benchmark passphrase")
        key = new_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hmi-1")]))
            .sign(key, hashes.SHA256())
        )
        with runtime.ready_store().transaction() as session:
            issued = services.issue(
                session, runtime.context("bench"), None, ca,
                identity=services.DeviceIdentity(SITE, "hmi-1", ZONE, ROLE), csr=csr,
            )  # fmt: skip
        server = ensure_service_identity(ca, "gateway-bench", Purpose.SERVER, hosts=("127.0.0.1",))
    finally:
        runtime.close()
    certificate, client_key = data_dir / "hmi-1.pem", data_dir / "hmi-1.key"
    certificate.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
    client_key.write_bytes(key_pem(key, None))
    return Setup(data_dir, server, certificate, client_key)


# --- the peers (each in a spawned process) ------------------------------------------------------


def _plc_context() -> Any:
    logging.getLogger("pymodbus").setLevel(logging.ERROR)  # its v4 deprecation notice, in every run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        # pymodbus 3.16.1's sequential block starts at address - 1: address 1 serves register 0
        device = ModbusDeviceContext(hr=untyped(ModbusSequentialDataBlock)(1, list(HOLDING)))
        return ModbusServerContext(devices=device, single=True)


def _servers_main(setup: Setup, conn: Connection) -> None:
    asyncio.run(_servers(setup, conn))


async def _servers(setup: Setup, conn: Connection) -> None:
    """pymodbus's TLS server (direct) and plain server (behind the gateway); their ports."""
    context = _plc_context()
    tls = ModbusTlsServer(context, address=("127.0.0.1", 0), sslctx=server_context(setup.server))
    plain = ModbusTcpServer(context, address=("127.0.0.1", 0))
    ports = []
    for server in (tls, plain):
        await untyped(server).serve_forever(background=True)
        ports.append(int(untyped(server).transport.sockets[0].getsockname()[1]))
    conn.send(tuple(ports))
    await asyncio.to_thread(conn.recv)
    for server in (tls, plain):
        await untyped(server).shutdown()
    conn.send({})


GATEWAY = """\
import os, runpy, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
sys.argv = ["plantwarden", *sys.argv[2:]]
runpy.run_module("plantwarden", run_name="__main__")
"""
"""The gateway's process: pinned to one core before anything else runs, then the command line."""


@contextmanager
def _gateway(setup: Setup, plc_port: int, core: int, options: tuple[str, ...]) -> Iterator[Peer]:
    """`plantwarden gateway run` (with `options`) in a process of its own, on a copy of the data
    directory (two gateways of one site must not share a records plane); ready with its mbaps
    port, final with the number of requests it recorded."""
    data_dir = Path(tempfile.mkdtemp(prefix="gateway-", dir=setup.data_dir))
    shutil.copytree(setup.data_dir, data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("gateway-*"))
    plant_file = data_dir / "bench-plant.yaml"
    plant_file.write_text(PLANT)
    command = [
        sys.executable, "-c", GATEWAY, str(core), "--data-dir", str(data_dir), "gateway", "run",
        "--plant", str(plant_file), "--site", SITE, "--mbaps", "127.0.0.1:0", "--host-name", "127.0.0.1",
        "--upstream", f"plc-1=127.0.0.1:{plc_port}", "--pipeline-depth", "1",
        # every client of the bench comes from 127.0.0.1: lift the per-address limits
        "--max-sessions-per-address", "64", "--source-rate-limit", "1000000", *options,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    stderr = process.stderr
    assert stderr is not None

    def drain() -> None:  # the gateway's log: it must never fill the pipe
        for line in stderr:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        said: list[str] = []
        while not (found := re.search(r"listening: .*mbaps 127\.0\.0\.1:(\d+)", said[-1] if said else "")):
            try:
                said.append(lines.get(timeout=60))
            except queue.Empty:
                raise RuntimeError(f"the gateway did not start within 60 s: {''.join(said)}") from None
        peer = Peer(process.pid, int(found[1]))
        yield peer
        process.terminate()
        process.wait(30)
        assert process.stdout is not None
        recorded = re.search(r"(\d+) requests recorded", process.stdout.read())
        peer.final = int(recorded[1]) if recorded else None
        while not lines.empty():  # what the gateway logged while it ran (warnings, errors)
            sys.stderr.write(f"gateway: {lines.get()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


@dataclass
class Peer:
    """A child process: what it said when ready, and what it said when stopped."""

    pid: int
    ready: Any
    final: Any = None


@contextmanager
def _child(target: Callable[..., None], *args: Any) -> Iterator[Peer]:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    try:
        if not ours.poll(60):
            raise RuntimeError(f"{target.__name__} did not start within 60 s")
        assert process.pid is not None
        peer = Peer(process.pid, ours.recv())
        yield peer
        ours.send("stop")
        if ours.poll(30):
            peer.final = ours.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the clients and the measures ----------------------------------------------------------


class Mbaps(asyncio.Protocol):
    """A lean mbaps client: one request at a time, its answer found by transaction id and checked
    against `ANSWER` (AssertionError); `request` gives the round trip in nanoseconds."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.transaction = 0
        self.answered = 0
        self.waiting: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 7 and len(buffer) >= (end := 6 + int.from_bytes(buffer[4:6], "big")):
            frame = bytes(buffer[:end])
            del buffer[:end]
            waiting = self.waiting  # a late answer (its request timed out) finds no one waiting
            if waiting is not None and not waiting.done() and frame[0] << 8 | frame[1] == self.transaction:
                waiting.set_result(frame[7:])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ConnectionError(f"the server closed the connection ({exc})"))

    async def request(self, timeout: float) -> int:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.transaction = (self.transaction + 1) & 0xFFFF
        self.waiting = waiting = loop.create_future()
        timer = loop.call_later(timeout, waiting.cancel)
        started = time.perf_counter_ns()
        self.transport.write(struct.pack(">HHHB", self.transaction, 0, len(REQUEST) + 1, 1) + REQUEST)
        try:
            answer = await waiting
        except asyncio.CancelledError:
            if not waiting.cancelled():
                raise
            raise TimeoutError from None
        finally:
            timer.cancel()
        elapsed = time.perf_counter_ns() - started
        self.answered += 1
        assert answer == ANSWER, f"unexpected answer {answer.hex()}"
        return elapsed


async def _connect(port: int, tls: ssl.SSLContext, count: int) -> list[Mbaps]:
    """`count` clients (TLS handshake done), warmed up."""
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(count):
        _, client = await loop.create_connection(
            Mbaps, "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1"
        )
        clients.append(client)
    for client in clients:
        for _ in range(max(1, WARM_UP // count)):
            await client.request(5.0)
    return clients


def _close(clients: list[Mbaps]) -> None:
    for client in clients:
        assert client.transport is not None
        client.transport.close()


async def _closed_loop(clients: list[Mbaps], seconds: float) -> tuple[int, float]:
    """Requests answered and seconds taken, each client asking again as soon as it is answered."""
    started = time.perf_counter()
    deadline = started + seconds

    async def one(client: Mbaps) -> int:
        done = 0
        while time.perf_counter() < deadline:
            await client.request(5.0)
            done += 1
        return done

    counts = await asyncio.gather(*(one(client) for client in clients))
    return sum(counts), time.perf_counter() - started


async def _plant(clients: list[Mbaps], seconds: float) -> tuple[list[int], int]:
    """Each client asks PLANT_RATE times a second, at its own phase: latencies and timeouts."""
    latencies: list[int] = []
    timeouts = 0
    start = time.perf_counter() + 0.1

    async def one(index: int, client: Mbaps) -> None:
        nonlocal timeouts
        due = start + index / len(clients) / PLANT_RATE
        while due < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                latencies.append(await client.request(PLANT_TIMEOUT))
            except TimeoutError:
                timeouts += 1
            due += 1 / PLANT_RATE

    await asyncio.gather(*(one(index, client) for index, client in enumerate(clients)))
    return latencies, timeouts


PATHS = ("direct", "gateway")
TUNED = ("--busy-poll", "200", "--plc-connections", "16")
"""The gateway's options on a core of its own: it polls 200 µs before sleeping, and keeps up to 16
connections to the PLC (the direct path's 16 clients hold as many; the default is 4). The same
measures are taken again with the gateway's defaults, without targets."""


@dataclass
class Results:
    """By path (`PATHS`): latencies (ns), rates (per client count), CPU seconds a request at 16
    clients (the TLS server's process, the gateway's), plant latencies and timeouts; the options
    the gateway ran with and the requests it recorded."""

    options: tuple[str, ...]
    latency: dict[str, list[int]] = field(default_factory=lambda: {path: [] for path in PATHS})
    rate: dict[tuple[str, int], float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    plant: dict[str, tuple[list[int], int]] = field(default_factory=dict)
    clients: dict[str, list[Mbaps]] = field(default_factory=lambda: {path: [] for path in PATHS})
    tls_version: str = ""
    recorded: int | None = None


async def measure(
    setup: Setup, ports: dict[str, int], pids: dict[str, int], results: Results, quick: bool
) -> None:
    """Every measure on both paths, alternating them where they are repeated."""

    async def connect(path: str, count: int) -> list[Mbaps]:
        clients = await _connect(ports[path], tls, count)
        results.clients[path] += clients
        return clients

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.load_verify_locations(cafile=str(setup.server.chain))
    tls.load_cert_chain(setup.client_certificate, setup.client_key)
    single = {path: await connect(path, 1) for path in PATHS}
    results.tls_version = str(single["gateway"][0].transport.get_extra_info("ssl_object").version())  # type: ignore[union-attr]
    for _ in range(LATENCY_BLOCKS):
        for path in PATHS:
            client = single[path][0]
            results.latency[path] += [
                await client.request(5.0) for _ in range(LATENCY_REQUESTS // LATENCY_BLOCKS)
            ]
    for count in (1, 16):
        clients = {path: single[path] if count == 1 else await connect(path, count) for path in PATHS}
        for _ in range(2):
            for path in PATHS:
                cpu = _cpu_seconds(pids[path])
                answered, seconds = await _closed_loop(clients[path], 1.0 if quick else 2.0)
                if answered / seconds > results.rate.get((path, count), 0.0):
                    results.rate[path, count] = answered / seconds
                    results.cpu[path] = (_cpu_seconds(pids[path]) - cpu) / answered
        if count > 1:
            _close(clients["direct"] + clients["gateway"])
    for path in PATHS:
        clients[path] = await connect(path, PLANT_CLIENTS)
        results.plant[path] = await _plant(clients[path], 5.0 if quick else 20.0)
        _close(clients[path] + single[path])


def _us(nanoseconds: float) -> str:
    return f"{nanoseconds / 1000:,.0f} µs"


def _row(title: str, direct: str, gateway: str, added: str = "", target: str = "", met: bool = True) -> None:
    verdict = f": {'met' if met else 'NOT met'}" if target else ""
    print(f"{title:34} {direct:>11} {gateway:>11} {added:>10}  {target}{verdict}".rstrip())


def report(results: Results, quick: bool, *, targets: bool = True) -> None:
    """Print the numbers (beside the targets of issue 13 when `targets`)."""
    print(f"{'':34} {'direct':>11} {'gateway':>11} {'added':>10}  {'target' if targets else ''}")
    latency = {path: np.percentile(values, [50, 99]) for path, values in results.latency.items()}
    for index, (name, limit) in enumerate((("p50", 100_000), ("p99", 300_000))):
        direct, through = latency["direct"][index], latency["gateway"][index]
        _row(f"1 client, {name} ({LATENCY_REQUESTS:,} requests)", _us(direct), _us(through),
             _us(through - direct), f"<= {_us(limit)}" * targets, through - direct <= limit)  # fmt: skip
    for count in (1, 16):
        direct, through = results.rate["direct", count], results.rate["gateway", count]
        _row(f"requests/s, {count} client{'s' * (count > 1)}", f"{direct:,.0f}", f"{through:,.0f}",
             f"{through / direct:.0%}", ">= 60 %" * targets, through / direct >= 0.6)  # fmt: skip
    _row("CPU a request, 16 clients", _us(results.cpu["direct"] * 1e9), _us(results.cpu["gateway"] * 1e9))
    plant = {path: np.percentile(values, [50, 99]) for path, (values, _) in results.plant.items()}
    for index, name in enumerate(("p50", "p99")):
        direct, through = plant["direct"][index], plant["gateway"][index]
        title = f"{PLANT_CLIENTS} x {PLANT_RATE:.0f}/s, {5 if quick else 20} s, {name}"
        _row(title, _us(direct), _us(through), _us(through - direct),
             "<= 1,000 µs" * (targets and index == 1), through - direct <= 1e6)  # fmt: skip
    late = {path: f"{timeouts} / {len(values):,}" for path, (values, timeouts) in results.plant.items()}
    _row("  timeouts (1 s) / answered", late["direct"], late["gateway"], "", "none" * targets,
         results.plant["gateway"][1] == 0)  # fmt: skip
    sent = sum(client.answered for client in results.clients["gateway"])
    told = "?" if results.recorded is None else f"{results.recorded:,}"
    print(f"   {sent:,} requests answered through the gateway; it recorded {told}")


def run(*, quick: bool = False) -> None:
    core = max(os.sched_getaffinity(0))
    runs = (Results(TUNED), Results(()))
    with tempfile.TemporaryDirectory(prefix="pw-bench-gateway-") as directory:
        setup = prepare(Path(directory))
        with _child(_servers_main, setup) as servers:
            tls_port, plc_port = servers.ready
            for results in runs:  # one gateway at a time: an idle one would take from the other's core
                with _gateway(setup, plc_port, core, results.options) as gateway:
                    ports = {"direct": tls_port, "gateway": gateway.ready}
                    pids = {"direct": servers.pid, "gateway": gateway.pid}
                    asyncio.run(measure(setup, ports, pids, results, quick))
                results.recorded = gateway.final
    tuned, defaults = runs
    print(f"## gateway: mbaps ({tuned.tls_version}), read 10 holding registers: pymodbus 3.16.1's TLS")
    print(f"   server direct, and through `plantwarden gateway run --pipeline-depth 1 {' '.join(TUNED)}`")
    print(f"   (its own process, pinned to core {core}) to pymodbus's Modbus/TCP server;"
          f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    report(tuned, quick)
    print("   CPU a request: of the TLS server's process, of the gateway's process")
    print("## the same, the gateway with its defaults (--plc-connections 4, no --busy-poll), no targets")
    report(defaults, quick, targets=False)


if __name__ == "__main__":
    run()
