"""`EvidenceRing`: the ring of pcap segments on disk, appended to per batch and sliced."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import re
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.errors import CaptureError
from plantwarden.capture.evidence.items import (
    EvidenceError,
    EvidenceRingBusy,
    EvidenceSlice,
    address_keys,
    check_window,
    parse_hosts,
)
from plantwarden.capture.evidence.records import (
    FILE_HEADER,
    PCAP_MAGIC_NANO,
    RECORD_HEADER,
    SNAPLEN,
    capture_file,
    pcap_file_header,
    pcap_records,
    subset,
    take,
)
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.capture.pcap import read_capture
from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import NotFound
from plantwarden.core.files import atomic_write

MIN_SEGMENT_BYTES = 1 << 16
DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_SEGMENT_BYTES = 64 << 20
INDEX_NAME = "index.json"
LOCK_NAME = "lock"
SEGMENT_SUFFIX = ".pcap"
INDEX_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Segment:
    """One pcap file of the ring: its name, link type, packets, size in bytes and time span.

    `first_ns` and `last_ns` are the earliest and the latest packet time in it (packets from a
    live interface are not always in time order); both 0 while it holds no packet.
    """

    name: str
    linktype: int
    packets: int
    size: int
    first_ns: int
    last_ns: int

    def overlaps(self, since_ns: int, until_ns: int) -> bool:
        """Whether a packet of this segment can lie in `since_ns <= time < until_ns`."""
        return self.packets > 0 and self.first_ns < until_ns and self.last_ns >= since_ns


def _write_all(fd: int, data: npt.NDArray[np.uint8] | bytes) -> None:
    view = memoryview(data if isinstance(data, bytes) else data.data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


SEGMENT_NUMBER = re.compile(r"[0-9]+")
"""A segment file's name before its suffix (ASCII digits: `str.isdigit()` also takes '²')."""


def _segment_number(name: str) -> int:
    return int(name.removesuffix(SEGMENT_SUFFIX))


class EvidenceRing:
    """Recent packets of one sensor on disk, as a ring of pcap segments (see the module's text).

    `max_bytes` bounds the whole directory's segments (a single packet record longer than
    `segment_bytes` gets a segment of its own and may exceed it by that much); `segment_bytes`
    (64 KiB at least) is the size at which a segment is closed and a new one begun; `max_age_s`
    (optional) drops a closed segment once its newest packet is that much older than the newest
    packet appended.
    """

    def __init__(
        self,
        directory: os.PathLike[str] | str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_age_s: float | None = None,
        readonly: bool = False,
    ) -> None:
        _check_limits(max_bytes, segment_bytes, max_age_s)
        self.directory = Path(directory)
        self.max_bytes, self.segment_bytes = max_bytes, segment_bytes
        self.max_age_ns = None if max_age_s is None else int(max_age_s * SECOND_NS)
        self.readonly = readonly
        self._closed: deque[Segment] = deque()
        self._closed_bytes = 0
        self._open: Segment | None = None
        self._fd: int | None = None
        self._lock: int | None = None
        self._next_number = 1
        self._newest_ns = 0
        self._open_directory()

    def _open_directory(self) -> None:
        if self.readonly:
            if not self.directory.is_dir():
                raise NotFound(f"no evidence ring at {self.directory}", details={"path": str(self.directory)})
        else:
            if self.directory.exists() and not self.directory.is_dir():
                raise EvidenceError(f"{self.directory} exists and is not a directory")
            self.directory.mkdir(parents=True, exist_ok=True)
            self._take_lock()
        try:
            self._recover()
            if not self.readonly:
                self._enforce_limits(0)
                self._write_index()
        except BaseException:
            self.close()
            raise

    def _take_lock(self) -> None:
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EvidenceRingBusy(
                f"another process writes to the evidence ring at {self.directory}",
                details={"path": str(self.directory)},
            ) from None
        self._lock = fd

    # Recovery -------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Take back the segments on disk: those the index lists as they are, the others read again."""
        indexed = self._load_index()
        self._closed.clear()
        self._closed_bytes = 0
        for path in sorted(self.directory.glob("*" + SEGMENT_SUFFIX)):
            if not SEGMENT_NUMBER.fullmatch(path.name.removesuffix(SEGMENT_SUFFIX)):
                continue
            self._next_number = max(self._next_number, _segment_number(path.name) + 1)
            known = indexed.get(path.name)
            segment = known if known is not None and known.size == path.stat().st_size else self._scan(path)
            if segment is not None:
                self._closed.append(segment)
                self._closed_bytes += segment.size
                self._newest_ns = max(self._newest_ns, segment.last_ns)

    def _load_index(self) -> dict[str, Segment]:
        try:
            data = json.loads((self.directory / INDEX_NAME).read_text(encoding="utf-8"))
            return {entry["name"]: Segment(**entry) for entry in data["segments"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}  # no index, or a damaged one: every segment is read again

    def _scan(self, path: Path) -> Segment | None:
        """Read a segment the index does not vouch for; cut a torn end back to the last whole packet."""
        packets, first, last, linktype = 0, 0, 0, -1
        good = FILE_HEADER.size  # the end of the last whole record (the ring writes no snap-cut packet)
        try:
            for batch in read_capture(path):
                if len(batch):
                    first = int(batch.ts_ns.min()) if not packets else min(first, int(batch.ts_ns.min()))
                    last = max(last, int(batch.ts_ns.max()))
                    linktype = int(batch.linktypes[0])
                    packets += len(batch)
                    good += int(batch.lengths.sum(dtype=np.int64)) + RECORD_HEADER * len(batch)
        except CaptureError:
            if not self.readonly:
                self._cut(path, good)
        except FileNotFoundError:
            return None
        if not packets:
            if not self.readonly:
                path.unlink(missing_ok=True)
            return None
        size = path.stat().st_size if self.readonly else good
        return Segment(path.name, linktype, packets, size, first, last)

    @staticmethod
    def _cut(path: Path, size: int) -> None:
        with path.open("r+b") as stream:
            stream.truncate(size)

    def _write_index(self) -> None:
        """Rewrite `index.json` (closed segments) through a new file, so that it is never half written."""
        entries = [asdict(segment) for segment in self._closed]
        temporary = self.directory / (INDEX_NAME + ".new")
        temporary.write_text(json.dumps({"format": INDEX_FORMAT, "segments": entries}), encoding="utf-8")
        temporary.replace(self.directory / INDEX_NAME)

    # Appending ------------------------------------------------------------------------------

    def add(self, batch: PacketBatch) -> None:
        """Append the packets of `batch` (one write per segment it touches, usually one)."""
        if self.readonly:
            raise EvidenceError(f"the evidence ring at {self.directory} was opened read-only")
        if self._lock is None:
            raise EvidenceError(f"the evidence ring at {self.directory} is closed")
        count = len(batch)
        if not count:
            return
        linktypes = batch.linktypes
        if linktypes[0] == linktypes[-1] and not (linktypes != linktypes[0]).any():
            self._add_run(batch, 0, count)
        else:
            bounds = [0, *(np.flatnonzero(linktypes[1:] != linktypes[:-1]) + 1).tolist(), count]
            for start, stop in itertools.pairwise(bounds):
                self._add_run(batch, start, stop)
        self._newest_ns = max(self._newest_ns, int(batch.ts_ns.max()))
        self._drop_old()

    def _add_run(self, batch: PacketBatch, start: int, stop: int) -> None:
        """Append packets `start:stop` of one link type, splitting them where segments fill up."""
        linktype = int(batch.linktypes[start])
        ends = np.cumsum(np.minimum(batch.lengths[start:stop], SNAPLEN).astype(np.int64) + RECORD_HEADER)
        done = 0
        while start + done < stop:
            if self._open is None or self._open.linktype != linktype or self._open.size >= self.segment_bytes:
                self._roll(linktype)
            assert self._open is not None
            base = int(ends[done - 1]) if done else 0
            fits = (
                int(np.searchsorted(ends, base + self.segment_bytes - self._open.size, side="right")) - done
            )
            if fits <= 0:
                if self._open.packets:
                    self._roll(linktype)
                    continue
                fits = 1
            self._write(batch, start + done, start + done + fits)
            done += fits

    def _write(self, batch: PacketBatch, start: int, stop: int) -> None:
        records = pcap_records(batch, start, stop)
        self._enforce_limits(len(records))
        assert self._open is not None
        assert self._fd is not None
        _write_all(self._fd, records)
        ts = batch.ts_ns[start:stop]
        segment = self._open
        low, high = int(ts.min()), int(ts.max())
        self._open = Segment(
            segment.name,
            segment.linktype,
            segment.packets + (stop - start),
            segment.size + len(records),
            min(segment.first_ns, low) if segment.packets else low,
            max(segment.last_ns, high),
        )

    def _roll(self, linktype: int) -> None:
        """Close the open segment (into the index) and begin the next one."""
        self._close_open()
        header = pcap_file_header(linktype)
        self._enforce_limits(len(header))
        name = f"{self._next_number:012d}{SEGMENT_SUFFIX}"
        self._next_number += 1
        self._fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        _write_all(self._fd, header)
        self._open = Segment(name, linktype, 0, len(header), 0, 0)

    def _close_open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._open is not None:
            if self._open.packets:
                self._closed.append(self._open)
                self._closed_bytes += self._open.size
            else:
                (self.directory / self._open.name).unlink(missing_ok=True)
            self._open = None
            self._write_index()

    def _enforce_limits(self, incoming: int) -> None:
        """Delete the oldest closed segments until `incoming` more bytes fit under `max_bytes`."""
        open_size = self._open.size if self._open is not None else 0
        changed = False
        while self._closed and self._closed_bytes + open_size + incoming > self.max_bytes:
            self._delete_oldest()
            changed = True
        if changed:
            self._write_index()

    def _drop_old(self) -> None:
        if self.max_age_ns is None:
            return
        horizon = self._newest_ns - self.max_age_ns
        changed = False
        while self._closed and self._closed[0].last_ns < horizon:
            self._delete_oldest()
            changed = True
        if changed:
            self._write_index()

    def _delete_oldest(self) -> None:
        oldest = self._closed.popleft()
        self._closed_bytes -= oldest.size
        (self.directory / oldest.name).unlink(missing_ok=True)

    # Reading --------------------------------------------------------------------------------

    def segments(self) -> tuple[Segment, ...]:
        """The segments, oldest first (the one being written last); re-read from disk if read-only."""
        if self.readonly:
            self._recover()
        return (*self._closed, *((self._open,) if self._open is not None and self._open.packets else ()))

    @property
    def size(self) -> int:
        """Bytes the segments take on disk."""
        return self._closed_bytes + (self._open.size if self._open is not None else 0)

    def slice(
        self,
        since_ns: int,
        until_ns: int,
        hosts: Sequence[str] = (),
        limit_packets: int | None = None,
    ) -> bytes:
        """A capture file (pcap; pcapng across link types) of the packets with `since_ns <= time <
        until_ns` whose IP source or destination is one of `hosts` (any packet when none are given),
        the first `limit_packets` of them at most, in the order they were appended."""
        data, _ = self._slice(since_ns, until_ns, hosts, limit_packets)
        return data

    def write_slice(
        self,
        path: os.PathLike[str] | str,
        since_ns: int,
        until_ns: int,
        hosts: Sequence[str] = (),
        limit_packets: int | None = None,
    ) -> EvidenceSlice:
        """Write `slice(...)` to `path` (whole or not at all) and say what it holds."""
        target = Path(path)
        if not target.parent.is_dir():
            raise EvidenceError(f"{target.parent} is not a directory")
        data, packets = self._slice(since_ns, until_ns, hosts, limit_packets)
        atomic_write(target, data, mode=0o600)  # packets, as the ring keeps them: credentials in clear
        kind = "pcap" if data[:4] == struct.pack("<I", PCAP_MAGIC_NANO) else "pcapng"
        addresses = tuple(str(address) for address in parse_hosts(hosts))
        digest = hashlib.sha256(data).hexdigest()
        return EvidenceSlice(target, since_ns, until_ns, addresses, packets, len(data), digest, kind)

    def _slice(
        self, since_ns: int, until_ns: int, hosts: Sequence[str], limit_packets: int | None
    ) -> tuple[bytes, int]:
        check_window(since_ns, until_ns)
        keys = address_keys(hosts)
        if limit_packets is not None and (
            isinstance(limit_packets, bool) or not isinstance(limit_packets, int) or limit_packets < 1
        ):
            raise EvidenceError(f"limit_packets must be 1 or more, not {limit_packets!r}")
        room = limit_packets if limit_packets is not None else -1
        pieces: list[tuple[int, bytes]] = []
        count = 0
        for segment in self.segments():
            if room == 0:
                break
            if not segment.overlaps(since_ns, until_ns):
                continue
            for batch in self._read_segment(segment):
                chosen = _select(batch, since_ns, until_ns, keys)
                if room >= 0:
                    chosen = chosen[:room]
                    room -= len(chosen)
                if len(chosen):
                    pieces.append((segment.linktype, take(batch, chosen)))
                    count += len(chosen)
                if room == 0:
                    break
        return capture_file(pieces), count

    def _read_segment(self, segment: Segment) -> Iterator[PacketBatch]:
        """The batches of a segment; a segment deleted meanwhile, or torn while read-only, ends early."""
        with contextlib.suppress(FileNotFoundError, CaptureError):
            yield from read_capture(self.directory / segment.name)

    # Lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the open segment into the index and let another process write to the ring."""
        if self._lock is None:
            return
        self._close_open()
        os.close(self._lock)
        self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _check_limits(max_bytes: int, segment_bytes: int, max_age_s: float | None) -> None:
    for name, value in (("max_bytes", max_bytes), ("segment_bytes", segment_bytes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvidenceError(f"{name} must be a whole number of bytes, not {value!r}")
    if segment_bytes < MIN_SEGMENT_BYTES:
        raise EvidenceError(f"segment_bytes must be at least {MIN_SEGMENT_BYTES}, not {segment_bytes}")
    if max_bytes < segment_bytes:
        raise EvidenceError(f"max_bytes ({max_bytes}) must be at least segment_bytes ({segment_bytes})")
    if max_age_s is not None and (isinstance(max_age_s, bool) or not max_age_s > 0):
        raise EvidenceError(f"max_age_s must be a positive number of seconds, not {max_age_s!r}")


def _select(
    batch: PacketBatch, since_ns: int, until_ns: int, keys: npt.NDArray[np.uint64]
) -> npt.NDArray[np.int64]:
    """The rows of `batch` in the window whose IP source or destination is one of `keys` (all if none)."""
    rows = np.flatnonzero((batch.ts_ns >= since_ns) & (batch.ts_ns < until_ns))
    if not len(keys) or not len(rows):
        return rows
    layers = decode_layers(subset(batch, rows))
    ip = layers.ip_version != 0
    sources = np.ascontiguousarray(layers.src_addr).view(np.uint64).reshape(-1, 2)
    destinations = np.ascontiguousarray(layers.dst_addr).view(np.uint64).reshape(-1, 2)
    match = np.zeros(len(rows), dtype=bool)
    for key in keys:
        match |= (sources == key).all(axis=1) | (destinations == key).all(axis=1)
    chosen: npt.NDArray[np.int64] = rows[match & ip]
    return chosen
