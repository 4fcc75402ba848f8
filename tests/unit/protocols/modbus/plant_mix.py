"""A plant's Modbus/TCP traffic as payload segments, built with the sim's encoder, and a benchmark.

Mostly reads (3, 4, 1, 2) with their responses of 12-260 bytes, some writes, diagnostics and
exceptions; 30 % of the segments carry several ADUs. Run `python -m tests.unit.protocols.modbus.plant_mix`
to print both paths' throughput.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from plantwarden.sim import modbus_messages as mm


class Segments(NamedTuple):
    buffer: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    from_server: np.ndarray
    adus: int


def _image(rng: random.Random) -> dict[str, dict[int, int]]:
    return {
        kind: {
            address: rng.randrange(0x10000 if kind in ("holding", "input") else 2) for address in range(2000)
        }
        for kind in ("coil", "discrete", "holding", "input")
    }


def _request(rng: random.Random) -> mm.Request:
    roll = rng.random()
    if roll < 0.85:
        code = rng.choice((3, 3, 3, 4, 4, 1, 2))
        most = mm.MAX_READ[code]
        count = rng.randint(1, most)
        return mm.read(code, rng.randrange(0, 2000 - count + 1 if code in (1, 2) else 2000 - count), count)
    if roll < 0.95:
        code = rng.choice((5, 6))
        return mm.write_single(code, rng.randrange(2000), rng.randrange(2 if code == 5 else 0x10000))
    if roll < 0.98:
        code = rng.choice((15, 16))
        count = rng.randint(1, 100)
        high = 2 if code == 15 else 0x10000
        return mm.write_multiple(code, rng.randrange(1000), [rng.randrange(high) for _ in range(count)])
    return mm.diagnostics(0, b"\x12\x34")


def exchanges(count: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """`count` (request ADU, response ADU) pairs; reads past the image get exception 2."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test traffic, not a secret)
    image = _image(rng)
    pairs = []
    for transaction_id in range(count):
        request = _request(rng)
        unit = rng.randint(1, 10)
        answer = mm.response_pdu(request, image if rng.random() > 0.02 else {})
        pairs.append(
            (mm.adu(transaction_id, unit, mm.request_pdu(request)), mm.adu(transaction_id, unit, answer))
        )
    return pairs


def segments(count: int, seed: int = 7, several: float = 0.3) -> Segments:
    """About `count` segments, alternating directions; `several` of them carry 2-4 ADUs."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test traffic, not a secret)
    pairs = exchanges(int(count * 1.4) + 4, seed)
    payloads: list[bytes] = []
    server: list[bool] = []
    adus = 0
    position = 0
    while len(payloads) < count and position + 4 <= len(pairs):
        group = rng.randint(2, 4) if rng.random() < several else 1
        chunk = pairs[position : position + group]
        position += group
        payloads += [b"".join(request for request, _ in chunk), b"".join(response for _, response in chunk)]
        server += [False, True]
        adus += 2 * len(chunk)
    lengths = np.array([len(payload) for payload in payloads], dtype=np.int32)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    buffer = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    return Segments(buffer, starts, lengths, np.array(server, dtype=bool), adus)


def rate(function: Callable[..., Any], batch: Segments, repeat: int = 3) -> float:
    """ADUs per second of `function(buffer, starts, lengths, from_server)`, best of `repeat`."""
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        function(batch.buffer, batch.starts, batch.lengths, batch.from_server)
        best = min(best, time.perf_counter() - begin)
    return batch.adus / best


if __name__ == "__main__":
    from plantwarden.protocols.modbus import decode_segments, extract

    batch = segments(200_000)
    print(f"{len(batch.lengths)} segments, {batch.adus} ADUs, {len(batch.buffer)} bytes")
    print(f"fast path:  {rate(extract, batch):,.0f} ADUs/s")
    print(f"exact path: {rate(decode_segments, batch, 1):,.0f} ADUs/s")
