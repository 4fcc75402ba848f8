"""Live capture through AF_PACKET, in a network namespace of its own per test.

The capture runs in a child process started with `ip netns exec`, which sends known packets,
reads them back and prints what it saw as JSON. These tests need root (AF_PACKET, namespaces):
they skip without it, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plantwarden.capture.errors import InterfaceNotFound, LiveCaptureNotPermitted
from plantwarden.capture.live import LiveCapture

IN_CI = os.environ.get("CI", "").lower() == "true"
IS_ROOT = os.geteuid() == 0
ETHERNET, IPV4, UDP = 14, 20, 8
MARK = b"PWLIVE"

CHILD = r"""
import json, socket, sys, time
from plantwarden.capture.live import LiveCapture

args = json.loads(sys.stdin.read())
sent, records = 0, []
with LiveCapture(args["interface"], **args["options"]) as capture:
    if args.get("filter_in_user_space"):
        capture._drop_outgoing = True  # what happens where the kernel lacks PACKET_IGNORE_OUTGOING
    if args["mode"] == "udp":
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        send = lambda data: sender.sendto(data, receiver.getsockname())
    else:
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        sender.bind((args["send_on"], 0))
        send = sender.send
    payloads = [bytes.fromhex(p) for p in args["payloads"]]
    t0 = time.time_ns()
    for start in range(0, len(payloads), args["round"]):
        for payload in payloads[start : start + args["round"]]:
            send(payload)
            sent += 1
        deadline = time.monotonic() + 5
        while len(records) < sent * args["copies"] and time.monotonic() < deadline:
            batch = capture.read(0.1)
            for i in range(len(batch) if batch else 0):
                records.append([int(batch.ts_ns[i]), batch.packet(i).hex(), int(batch.wire_lengths[i]),
                                int(batch.linktypes[i]), int(batch.interfaces[i])])
    t1 = time.time_ns()
    while (batch := capture.read(0.3)) is not None:  # anything more would be an extra packet
        records += [[int(batch.ts_ns[i]), batch.packet(i).hex(), int(batch.wire_lengths[i]),
                     int(batch.linktypes[i]), int(batch.interfaces[i])] for i in range(len(batch))]
    stats = capture.stats()
print(json.dumps({"t0": t0, "t1": t1, "records": records, "linktype": capture.linktype,
                  "stats": [stats.packets, stats.received, stats.dropped, stats.freeze_queue]}))
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh network namespace with `lo` up, deleted afterwards whatever happens."""
    if not IS_ROOT or shutil.which("ip") is None:
        _unavailable("live capture tests need root (AF_PACKET, network namespaces) and iproute2's ip")
    name = f"pw-live-{uuid.uuid4().hex[:10]}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as error:
        _unavailable(f"cannot create a network namespace: {error.stderr.decode().strip()}")
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True, timeout=30)


def capture_in(namespace: str, **args: Any) -> dict[str, Any]:
    """Run the child in the namespace and return what it saw."""
    command = ["ip", "netns", "exec", namespace, sys.executable, "-c", CHILD]
    result = subprocess.run(
        command, input=json.dumps(args), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


def udp_payloads(count: int) -> list[bytes]:
    return [MARK + struct.pack("!I", n) + bytes(n % 200) for n in range(count)]


def check_udp(seen: dict[str, Any], payloads: list[bytes], copies: int = 1) -> None:
    """Each payload seen `copies` times in order, with the right lengths and times, nothing else."""
    records = seen["records"]
    assert len(records) == len(payloads) * copies
    frames = [bytes.fromhex(frame) for _, frame, _, _, _ in records]
    expected = [payload for payload in payloads for _ in range(copies)]
    assert [frame[ETHERNET + IPV4 + UDP :] for frame in frames] == expected
    assert [len(f) for f in frames] == [wire for _, _, wire, _, _ in records]
    assert all(len(f) == ETHERNET + IPV4 + UDP + len(p) for f, p in zip(frames, expected, strict=True))
    assert all(frame[:12] == bytes(12) and frame[12:14] == b"\x08\x00" for frame in frames)
    times = [ts for ts, _, _, _, _ in records]
    assert times == sorted(times) and seen["t0"] <= times[0] and times[-1] <= seen["t1"]
    assert {(linktype, interface) for _, _, _, linktype, interface in records} == {(1, 0)}
    assert seen["linktype"] == 1


def test_udp_on_loopback_is_seen_once_each_with_lengths_and_times(namespace: str) -> None:
    payloads = udp_payloads(300)
    seen = capture_in(
        namespace,
        interface="lo",
        options={},
        mode="udp",
        payloads=[p.hex() for p in payloads],
        round=300,
        copies=1,
    )
    check_udp(seen, payloads)
    packets, received, dropped, _ = seen["stats"]
    assert (packets, received, dropped) == (300, 300, 0)


def test_loopback_shows_each_packet_twice_when_outgoing_packets_are_kept(namespace: str) -> None:
    payloads = udp_payloads(50)
    seen = capture_in(
        namespace,
        interface="lo",
        options={"outgoing": True},
        mode="udp",
        payloads=[p.hex() for p in payloads],
        round=50,
        copies=2,
    )
    check_udp(seen, payloads, copies=2)
    assert seen["stats"][:3] == [100, 100, 0]


def test_outgoing_packets_are_left_out_in_user_space_where_the_kernel_cannot(namespace: str) -> None:
    payloads = udp_payloads(50)
    seen = capture_in(
        namespace,
        interface="lo",
        options={"outgoing": True},
        mode="udp",
        payloads=[p.hex() for p in payloads],
        round=50,
        copies=1,
        filter_in_user_space=True,
    )
    check_udp(seen, payloads)
    assert seen["stats"][:3] == [50, 100, 0]  # the kernel still delivered both copies


def test_a_small_ring_wraps_around_many_times_without_loss(namespace: str) -> None:
    payloads = udp_payloads(1000)
    options = {"block_size": 4096, "block_count": 4, "block_timeout_ms": 2}
    seen = capture_in(
        namespace,
        interface="lo",
        options=options,
        mode="udp",
        payloads=[p.hex() for p in payloads],
        round=10,
        copies=1,
    )
    check_udp(seen, payloads)
    assert seen["stats"][:3] == [1000, 1000, 0]


def test_ethernet_frames_keep_their_vlan_tags_802_1q_and_802_1ad(namespace: str) -> None:
    """Frames sent into one end of a veth pair, captured at the other end in promiscuous mode."""
    _ip("-n", namespace, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    for end in ("v0", "v1"):
        _ip("-n", namespace, "link", "set", end, "up")
    frames = []
    for n in range(20):
        tag = struct.pack("!HH", 0x8100 if n % 4 == 1 else 0x88A8, (n % 8) << 13 | 100 + n) if n % 2 else b""
        frames.append(
            b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + tag + b"\x88\xb5" + MARK + bytes(40 + n)
        )
    seen = capture_in(
        namespace,
        interface="v1",
        options={"promiscuous": True},
        mode="raw",
        send_on="v0",
        payloads=[f.hex() for f in frames],
        round=20,
        copies=1,
    )
    ours = [(bytes.fromhex(frame), wire) for _, frame, wire, _, _ in seen["records"]]
    marked = [(frame, wire) for frame, wire in ours if MARK in frame]  # IPv6 chatter may come too
    assert marked == [(frame, len(frame)) for frame in frames]
    assert seen["linktype"] == 1 and seen["stats"][2] == 0


def test_an_unknown_interface_is_named_with_the_known_ones() -> None:
    with pytest.raises(
        InterfaceNotFound, match=r"no network interface is named 'pw-nonexistent0' \(there are: .*lo"
    ):
        LiveCapture("pw-nonexistent0")


def _has_cap_net_raw() -> bool:
    status = dict(
        line.split(":\t", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":\t" in line
    )
    return bool(int(status.get("CapEff", "0"), 16) & 1 << 13)


NOT_PERMITTED = "from plantwarden.capture.live import LiveCapture\ntry:\n LiveCapture('lo')\n"
NOT_PERMITTED += "except Exception as error:\n print(error)"


def test_without_root_or_cap_net_raw_the_error_says_what_is_needed() -> None:
    expected = "live capture needs root or CAP_NET_RAW (setcap cap_net_raw+ep "
    if not IS_ROOT:
        if _has_cap_net_raw():
            pytest.skip("this process may capture (it has CAP_NET_RAW)")
        with pytest.raises(LiveCaptureNotPermitted, match=re.escape(expected)):
            LiveCapture("lo")
        return
    if shutil.which("setpriv") is None:
        _unavailable("setpriv (util-linux) is needed to drop CAP_NET_RAW")
    drop = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw"]
    command = [*drop, sys.executable, "-c", NOT_PERMITTED]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.startswith(expected), result.stdout + result.stderr


def test_stats_and_the_link_type_of_loopback_without_traffic(namespace: str) -> None:
    seen = capture_in(namespace, interface="lo", options={}, mode="udp", payloads=[], round=1, copies=1)
    assert seen["records"] == [] and seen["stats"] == [0, 0, 0, 0] and seen["linktype"] == 1
