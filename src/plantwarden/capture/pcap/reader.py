"""`CaptureReader`: a pcap or pcapng capture (file, FIFO, stdin) read as a stream of `PacketBatch`es."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.errors import CaptureError, CaptureTruncated, NotACapture
from plantwarden.capture.pcap.classic import PCAP_MAGICS, PcapParser
from plantwarden.capture.pcap.columns import Parser, Pending, Problem
from plantwarden.capture.pcap.ng import SECTION_HEADER, PcapngParser
from plantwarden.capture.pcap.source import IDLE_TIMEOUT, READ_SIZE, ChunkSource, Status, is_followed

DEFAULT_BATCH_SIZE = 65536
Source = str | os.PathLike[str] | BinaryIO


def _describe_start(start: bytes) -> str:
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in start[:16])
    return f"it starts with {start[:16].hex(' ')} ({text!r})"


def _parser_for(name: str, start: bytes) -> tuple[str, Parser]:
    """The format and parser the magic number at the start names."""
    if start[:4] in PCAP_MAGICS:
        order, fraction_ns = PCAP_MAGICS[start[:4]]
        return "pcap", PcapParser(order, fraction_ns)
    if start[:4] == SECTION_HEADER:
        return "pcapng", PcapngParser()
    if not start:
        raise NotACapture(f"{name} is empty, not a pcap or pcapng capture", details={"source": name})
    message = f"{name} is not a pcap or pcapng capture: {_describe_start(start)}"
    raise NotACapture(message, details={"source": name, "start": start[:16].hex()})


class CaptureReader:
    """A pcap or pcapng capture read as a stream of `PacketBatch`es (iterate it once).

    `format` is "pcap" or "pcapng"; `packets_read` counts the packets handed out so far, and the
    batches number their packets on from 1 across the whole capture.
    """

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        idle_timeout: float | None = None,
        read_size: int = READ_SIZE,
        owns_stream: bool = False,
    ) -> None:
        if batch_size < 1 or read_size < 1:
            raise CaptureError(f"batch_size and read_size must be positive ({batch_size}, {read_size})")
        self.name = name
        self.batch_size = batch_size
        self.packets_read = 0
        self._stream, self._owns_stream = stream, owns_stream
        self._source = ChunkSource(stream, idle_timeout, read_size)
        self._base = 0
        chunk, status = self._source.fill(b"")
        while len(chunk) < 4 and status is not Status.END:
            chunk, status = self._source.fill(chunk)
        self.format, self._parser = _parser_for(name, chunk)
        self._batches = self._read(chunk, status)

    def __iter__(self) -> Iterator[PacketBatch]:
        return self._batches

    def close(self) -> None:
        """Stop reading, and close the stream if the reader opened it."""
        self._batches.close()
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _read(self, chunk: bytes, status: Status) -> Generator[PacketBatch, None, None]:
        try:
            yield from self._read_chunks(chunk, status)
        finally:
            if self._owns_stream:
                self._stream.close()

    def _read_chunks(self, chunk: bytes, status: Status) -> Generator[PacketBatch, None, None]:
        pos, pending = 0, Pending()
        while True:
            try:
                pos = yield from self._parse(chunk, pos, pending)
            except Problem as problem:
                if pending.count:
                    yield self._take(chunk, pending)
                raise self._error(problem.kind, problem.offset, problem.reason) from None
            if status is Status.END:
                break
            if pending.count and (
                status is Status.IDLE or len(chunk) - pending.first_offset() > self._source.read_size // 2
            ):
                yield self._take(chunk, pending)
            keep = pending.first_offset() if pending.count else pos
            chunk, status = self._source.fill(memoryview(chunk)[keep:])
            pending.shift(-keep)
            pos -= keep
            self._base += keep
        if pending.count:
            yield self._take(chunk, pending)
        if pos < len(chunk):
            reason = f"the input ends inside {self._parser.partial(chunk, pos)}"
            raise self._error(CaptureTruncated, pos, reason)

    def _parse(self, chunk: bytes, pos: int, pending: Pending) -> Generator[PacketBatch, None, int]:
        while True:
            pos, more = self._parser.parse(chunk, pos, pending, self.batch_size)
            if pending.count >= self.batch_size:
                yield self._take(chunk, pending)
            if more:
                return pos

    def _take(self, chunk: bytes, pending: Pending) -> PacketBatch:
        batch = pending.take(chunk, self.packets_read + 1)
        self.packets_read += len(batch)
        return batch

    def _error(self, kind: type[CaptureError], offset: int, reason: str) -> CaptureError:
        where = self._base + offset
        state = "truncated" if kind is CaptureTruncated else "corrupt"
        message = (
            f"capture {self.name} is {state} at byte offset {where} "
            f"(after {self.packets_read} complete packets): {reason}"
        )
        return kind(message, details={"source": self.name, "offset": where, "packets": self.packets_read})


def open_capture_reader(
    source: Source,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    follow: bool | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    read_size: int = READ_SIZE,
) -> CaptureReader:
    """A reader of the pcap or pcapng capture at a path or in a binary stream (format by magic).

    `follow` (default: for streams that are not regular files, such as FIFOs and stdin) yields the
    packets read so far whenever the input pauses for `idle_timeout` seconds. The first bytes are
    read here, so opening a FIFO waits for its writer. Raises `NotACapture` for other input.
    """
    stream: BinaryIO
    if isinstance(source, str | os.PathLike):
        name, stream, owns = os.fspath(source), Path(source).open("rb", buffering=0), True  # noqa: SIM115 (the reader closes it)
    else:
        name, stream, owns = str(getattr(source, "name", "<stream>")), source, False
    follows = is_followed(stream) if follow is None else follow
    try:
        return CaptureReader(
            stream,
            name,
            batch_size=batch_size,
            idle_timeout=idle_timeout if follows else None,
            read_size=read_size,
            owns_stream=owns,
        )
    except BaseException:
        if owns:
            stream.close()
        raise


def read_capture(source: Source, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[PacketBatch]:
    """The batches of a capture file or stream, closing what it opened at the end."""
    with open_capture_reader(source, batch_size=batch_size) as reader:
        yield from reader
