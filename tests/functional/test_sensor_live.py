"""Live: a generated capture replayed by tcpreplay into a veth pair, and the live sensor records the
same Modbus PDUs as the file reader, with zero loss reported.

Each test creates a network namespace (deleted afterwards whatever happens) holding both ends of a
veth pair, with IPv6 off so that the namespace's own stack sends nothing (no router solicitations,
no multicast reports) and the capture sees only what is replayed. A child process in the namespace
captures on `v1` (`LiveCapture`, promiscuous) and feeds a fresh `Sensor`; tcpreplay sends the
capture into `v0` at a fixed rate; when the replay is over the child reads on until nothing has
come for a second and prints what it saw. The same capture read from the file by another fresh
`Sensor` must give the same multiset of frames and of Modbus PDU rows (live order and times are
the replay's, not the file's, so multisets are compared, never times).

Which frames cross a veth as they are (pinned down by the second test): every Ethernet frame of
at least 14 bytes up to the MTU plus its link header, but for the exceptions below, including
frames with stacked tags (802.1ad + 802.1Q, 802.1Q in 802.1Q, a priority tag with an inner tag,
three tags): the receiving kernel takes only the outermost tag off, into the socket buffer's
`vlan_tci` with its TPID, which TPACKET_V3 reports (TP_STATUS_VLAN_TPID_VALID) and the live reader
puts back; the inner tags stay in the frame. What does not cross, each for the kernel's reason
(Linux `net/packet/af_packet.c` and `net/core/dev.c`):

- under 14 bytes: tcpreplay's `send()` on its packet socket fails with EINVAL (`packet_snd` ->
  `dev_validate_header`: shorter than the Ethernet header);
- over MTU + 14 bytes (1514 at MTU 1500), or over MTU + 18 when the outer TPID is 0x8100:
  `send()` fails with EMSGSIZE (`packet_snd` allows four more bytes for an 802.1Q tag only, so
  an 802.1ad frame gets no allowance);
- a frame whose outer TPID is 0x8100 or 0x88a8 but shorter than 20 bytes: sent, then freed by the
  receiving side's `skb_vlan_untag` (it needs the tag and the two bytes after the inner type)
  before any packet socket sees it.

The generator writes none of these (its frames are 54 to about 1,340 bytes), as the first test
checks, so every frame of its capture must cross byte for byte. The receiving veth's `rx_dropped`
counts the 802.1ad frames too: the namespace's stack has no handler for them and drops them after
the capture has its copy, which is no capture loss (tcpreplay's own count and the ring's are
checked).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.sensor import Sensor
from plantwarden.sim.attacks import SCENARIOS
from plantwarden.sim.traffic.generator import generate

IN_CI = os.environ.get("CI", "").lower() == "true"
IS_ROOT = os.geteuid() == 0
PACKETS = 20_000
REPLAY_PPS = 40_000  # fixed, so that a busy machine's softirq backlog cannot overflow as at top speed
MTU = 1500
FIELDS = ("transaction_id", "function_code", "is_response", "unit_id", "address", "quantity")
Row = tuple[int, ...]

CHILD = r"""
import json, select, sys
from plantwarden.capture.live import LiveCapture
from plantwarden.monitoring.sensor import Sensor

fields = sys.argv[2].split(",")
sensor, frames, rows = Sensor(), {}, {}
with LiveCapture(sys.argv[1], promiscuous=True, outgoing=False) as capture:
    print("ready", flush=True)
    replayed = False
    while True:  # until the replay is over and then nothing has come for a second
        batch = capture.read(1.0 if replayed else 0.1)
        if batch is None:
            if replayed:
                break
            replayed = bool(select.select([sys.stdin], [], [], 0)[0])
            continue
        for i in range(len(batch)):
            frame = batch.packet(i).hex()
            frames[frame] = frames.get(frame, 0) + 1
        columns = sensor.process(batch).columns
        for row in zip(*(getattr(columns, name).tolist() for name in fields)):
            rows[row] = rows.get(row, 0) + 1
    stats = capture.stats()
sensor.finish()
print(json.dumps({
    "packets": sensor.counters.packets,
    "stats": {"packets": stats.packets, "received": stats.received, "dropped": stats.dropped},
    "frames": list(frames.items()),
    "rows": [[list(row), count] for row, count in rows.items()],
}))
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh namespace with IPv6 off and the veth pair v0 (replay) - v1 (capture) up; deleted
    afterwards whatever happens."""
    if not IS_ROOT or shutil.which("ip") is None:
        _unavailable("the live sensor test needs root (AF_PACKET, network namespaces) and iproute2's ip")
    if shutil.which("tcpreplay") is None:
        _unavailable("the live sensor test needs tcpreplay (scripts/debian-packages.txt)")
    name = f"pw-sensor-{uuid.uuid4().hex[:10]}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as error:
        _unavailable(f"cannot create a network namespace: {error.stderr.decode().strip()}")
    try:
        quiet = "for f in /proc/sys/net/ipv6/conf/all /proc/sys/net/ipv6/conf/default; do "
        quiet += '[ -d "$f" ] && echo 1 > "$f/disable_ipv6"; done; true'
        subprocess.run(["ip", "netns", "exec", name, "sh", "-c", quiet], check=True, timeout=30)
        _ip("-n", name, "link", "add", "v0", "mtu", str(MTU), "type", "veth", "peer", "name", "v1")
        for device in ("lo", "v0", "v1"):
            _ip("-n", name, "link", "set", device, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True, timeout=30)


def replay_live(namespace: str, capture: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Replay `capture` into v0 while the child captures on v1: what the child saw, and
    tcpreplay's counts of the packets it sent and failed to send."""
    command = ["ip", "netns", "exec", namespace, sys.executable, "-c", CHILD, "v1", ",".join(FIELDS)]
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        ready = child.stdout.readline() if select.select([child.stdout], [], [], 60)[0] else ""
        if ready != "ready\n":
            child.kill()
            pytest.fail(f"the capture did not start: {child.communicate()[1]}")
        replay = subprocess.run(
            ["ip", "netns", "exec", namespace, "tcpreplay", "-i", "v0", f"--pps={REPLAY_PPS}", str(capture)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        output, errors = child.communicate("over\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, errors
    counts = {
        name: int(match.group(1))
        for name in ("Successful", "Failed")
        if (match := re.search(rf"{name} packets:\s+(\d+)", replay.stdout))
    }
    assert set(counts) == {"Successful", "Failed"}, replay.stdout + replay.stderr
    seen: dict[str, Any] = json.loads(output)
    return seen, counts


def read_from_file(capture: Path) -> tuple[Counter[bytes], Counter[Row]]:
    """The frames and the Modbus PDU rows of a capture read from the file by a fresh sensor."""
    sensor, frames, rows = Sensor(), Counter[bytes](), Counter[Row]()
    for batch in read_capture(capture):
        frames.update(batch.packet(i) for i in range(len(batch)))
        columns = sensor.process(batch).columns
        rows.update(zip(*(getattr(columns, name).tolist() for name in FIELDS), strict=True))
    sensor.finish()
    return frames, rows


def crosses_a_veth(frame: bytes) -> bool:
    """Whether a frame can cross a veth as it is (see the module's docstring)."""
    tagged = frame[12:14] in (b"\x81\x00", b"\x88\xa8")
    limit = MTU + (18 if frame[12:14] == b"\x81\x00" else 14)
    return 14 <= len(frame) <= limit and not (tagged and len(frame) < 20)


@pytest.mark.slow
def test_the_live_sensor_records_the_same_pdus_as_the_file_reader_with_no_loss(
    namespace: str, tmp_path: Path
) -> None:
    capture = tmp_path / "plant.pcap"
    ledger = generate(capture, seed=5, packets=PACKETS, attacks=list(SCENARIOS)).ledger
    frames, rows = read_from_file(capture)
    assert sum(rows.values()) == ledger["modbus_pdus"] > 10_000
    stacked = sum(count for frame, count in frames.items() if frame[12:14] == b"\x88\xa8")
    assert stacked > 100  # the capture has 802.1ad + 802.1Q frames, which must cross too
    assert all(crosses_a_veth(frame) for frame in frames)

    seen, sent = replay_live(namespace, capture)

    assert sent == {"Successful": PACKETS, "Failed": 0}
    assert seen["stats"] == {"packets": PACKETS, "received": PACKETS, "dropped": 0}
    assert seen["packets"] == PACKETS
    live_frames = Counter({bytes.fromhex(frame): count for frame, count in seen["frames"]})
    missing, extra = frames - live_frames, live_frames - frames
    assert not missing and not extra, (
        f"{missing.total()} frames missing, {extra.total()} extra; first missing "
        f"{[f.hex() for f in list(missing)[:3]]}, first extra {[f.hex() for f in list(extra)[:3]]}"
    )
    live_rows = Counter({tuple(row): count for row, count in seen["rows"]})
    assert live_rows == rows
    assert live_rows.total() == ledger["modbus_pdus"]


MACS = bytes.fromhex("020000000002020000000001")  # destination, source
IPV4 = b"\x08\x00"
DOT1Q, DOT1AD = b"\x81\x00", b"\x88\xa8"


def tag(tpid: bytes, vid: int) -> bytes:
    return tpid + struct.pack("!H", vid)


ODD_FRAMES: dict[str, tuple[bytes, str | None]] = {
    # name: (frame, None if it crosses as it is, else why not)
    "10 bytes": (MACS[:10], "send() EINVAL: shorter than the Ethernet header"),
    "13 bytes": (MACS + b"\x08", "send() EINVAL: shorter than the Ethernet header"),
    "14 bytes, header only": (MACS + IPV4, None),
    "802.1Q tag, 16 bytes": (MACS + tag(DOT1Q, 100), "freed by skb_vlan_untag: tagged, under 20 bytes"),
    "802.1Q tag, 18 bytes": (
        MACS + tag(DOT1Q, 100) + IPV4,
        "freed by skb_vlan_untag: tagged, under 20 bytes",
    ),
    "802.1ad tag, 19 bytes": (
        MACS + tag(DOT1AD, 100) + IPV4 + b"E",
        "freed by skb_vlan_untag: tagged, under 20 bytes",
    ),
    "802.1Q tag, 20 bytes": (MACS + tag(DOT1Q, 100) + IPV4 + b"E\x00", None),
    "untagged, 1514 bytes": (MACS + IPV4 + b"E" + bytes(1499), None),
    "untagged, 1515 bytes": (MACS + IPV4 + b"E" + bytes(1500), "send() EMSGSIZE: over MTU + 14"),
    "802.1Q, 1518 bytes": (MACS + tag(DOT1Q, 100) + IPV4 + b"E" + bytes(1499), None),
    "802.1Q, 1519 bytes": (
        MACS + tag(DOT1Q, 100) + IPV4 + b"E" + bytes(1500),
        "send() EMSGSIZE: over MTU + 18",
    ),
    "802.1ad + 802.1Q, 1518 bytes": (
        MACS + tag(DOT1AD, 200) + tag(DOT1Q, 100) + IPV4 + b"E" + bytes(1495),
        "send() EMSGSIZE: over MTU + 14, and only an outer 802.1Q tag gets four more bytes",
    ),
    "802.1ad + 802.1Q, 64 bytes": (MACS + tag(DOT1AD, 200) + tag(DOT1Q, 100) + IPV4 + b"E" + bytes(41), None),
    "802.1Q in 802.1Q, 64 bytes": (MACS + tag(DOT1Q, 200) + tag(DOT1Q, 100) + IPV4 + b"E" + bytes(41), None),
    "priority tag + 802.1Q, 64 bytes": (
        MACS + tag(DOT1Q, 0x2000) + tag(DOT1Q, 100) + IPV4 + b"E" + bytes(41),
        None,
    ),
    "three tags, 64 bytes": (
        MACS + tag(DOT1AD, 200) + tag(DOT1Q, 100) + tag(DOT1Q, 101) + IPV4 + b"E" + bytes(37),
        None,
    ),
    "802.3 length field, 60 bytes": (MACS + b"\x00\x2e" + bytes(46), None),
}


def test_what_cannot_cross_a_veth_is_refused_or_freed_by_the_kernel(namespace: str, tmp_path: Path) -> None:
    capture = tmp_path / "odd.pcap"
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for number, (frame, _) in enumerate(ODD_FRAMES.values()):
        records.append(struct.pack("<IIII", 1_000 + number, 0, len(frame), len(frame)) + frame)
    capture.write_bytes(b"".join(records))

    seen, sent = replay_live(namespace, capture)

    refused = sum("send()" in (why or "") for _, why in ODD_FRAMES.values())
    assert sent == {"Successful": len(ODD_FRAMES) - refused, "Failed": refused}
    crossed = {frame for frame, _ in seen["frames"]}
    outcome = {name: frame.hex() in crossed for name, (frame, _) in ODD_FRAMES.items()}
    assert outcome == {name: why is None for name, (_, why) in ODD_FRAMES.items()}
    assert all(crosses_a_veth(frame) == (why is None) for frame, why in ODD_FRAMES.values())
    crossing = sum(why is None for _, why in ODD_FRAMES.values())
    assert seen["stats"] == {"packets": crossing, "received": crossing, "dropped": 0}
