"""Property-based fuzzing: random bytes, mutated valid frames and random cuts of a valid stream.
Nothing escapes as an exception, every finding is a listed one, both paths give identical
columns, and a stream decodes the same however it is cut into segments."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.common import Summary
from plantwarden.protocols.s7comm import S7Finding, decode_payload
from tests.unit.protocols.s7comm import builders as b
from tests.unit.protocols.s7comm.support import both

VALID = [
    b.connect(0xE0, b"\x01\x00", b"\x01\x02"),
    b.connect(0xD0, b"\x01\x00", b"\x01\x02"),
    b.dt(b.setup(1, 1, 1, 480)),
    b.dt(b.setup(3, 1, 1, 240)),
    b.dt(
        b.read_var_job(
            [b.any_item(1, 1, "DB", db=1), b.any_item(2, 10, "M", byte=4), b.any_item(0x1D, 1, "T", byte=3)]
        )
    ),
    b.dt(
        b.read_var_ack(
            [b.data_item(0xFF, 0x04, b"\x01\x02\x03", bits=True, last=False), b.data_item(0x0A, 0, b"")]
        )
    ),
    b.dt(b.write_var_job([b.any_item(2, 1, "Q", byte=1)], [b.data_item(0, 0x04, b"\x07", bits=True)])),
    b.dt(b.write_var_ack([0xFF])),
    b.dt(
        b.read_var_job([b.dbread_item([(1, 68, 358), (10, 68, 394)]), b.any_item(4, 1, "DB", db=2, byte=8)])
    ),
    b.dt(b.block_job(0x1A, b.filename("0A", 1), part2=b"1000216000088")),
    b.dt(b.block_job(0x1B, b.filename("08", 1))),
    b.dt(b.block_job(0x1E, None, upload_id=9)),
    b.dt(b.s7(3, 5, b"\x1b\x00", b"\x00\x02\x00\xfb\x70\x70")),
    b.dt(b.pi_service(b"_INSE", [b"0A00001P"])),
    b.dt(b.pi_service(b"P_PROGRAM", [])),
    b.dt(b.plc_stop()),
    b.dt(b.s7(3, 3, b"\x29", error=(0x81, 0x04))),
    b.dt(b.szl_request(0x0424, 0)),
    b.dt(b.szl_response(0x001C, 1, b"\x00" * 34, 34)),
    b.dt(b.userdata(4, 7, 1, b.ud_data(0x0A, 0, b""))),
    b.dt(b.userdata(4, 5, 1, b.ud_data(0xFF, 0x09, b"12345678"))),
    b.dt(b.userdata(8, 4, 1, b.ud_data(0xFF, 0x09, b"\x00\x11\x22\x33"), seq=2, follow=(5, 0, 0))),
    b.dt(b.userdata(8, 7, 1, b.ud_data(0xFF, 0x09, bytes.fromhex("00191408201159439124")), follow=(0, 0, 0))),
    b.dt(b.userdata(0, 2, 7, b.ud_data(0xFF, 0x09, b"\x01\x02\x03"), follow=(0, 0, 0))),
    b.dt(b.userdata(8, 1, 14, b.ud_data(0x0A, 0, b""), follow=(0, 0, 0x8104))),
    b.dt(b.userdata(4, 3, 1, b"")),
    b.dt(b.plus(3, 0x31, 0x04F2, True)),
    b.dt(b.plus(2, 0x32, 0x054C, False)),
    b.dt(b"", eot=False) + b.dt(b.szl_request(0x0011, 0)),
]
FINDINGS = set(S7Finding)


def check(segments: list[bytes], from_server: list[bool]) -> None:
    columns, _ = both(segments, from_server)
    assert set(columns.summary.finding.tolist()) <= {int(f) for f in FINDINGS}
    assert S7Finding.UNEXPECTED not in columns.summary.finding.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6), st.data())
def test_random_bytes(segments: list[bytes], data: st.DataObject) -> None:
    check(segments, data.draw(st.lists(st.booleans(), min_size=len(segments), max_size=len(segments))))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(VALID), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    st.integers(0, 400),
    st.booleans(),
)
def test_mutated_frames(frames: list[bytes], flips: list[tuple[int, int]], cut: int, server: bool) -> None:
    stream = bytearray(b"".join(frames))
    for at, value in flips:
        stream[at % len(stream)] = value
    check([bytes(stream), bytes(stream[: cut % (len(stream) + 1)])], [server, not server])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(VALID), min_size=1, max_size=6), st.lists(st.integers(1, 60), max_size=8))
def test_a_stream_decodes_the_same_however_cut(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frames)
    whole, rest = decode_payload(stream, False)
    assert rest == b"" and len(whole) == len(frames) and all(m.finding == S7Finding.OK for m in whole)
    pieces, at = [], 0
    for size in cuts:
        pieces.append(stream[at : at + size])
        at += size
    pieces.append(stream[at:])
    found: list[Summary] = []
    left = b""
    for piece in pieces:
        messages, left = decode_payload(left + piece, False)
        found += [m.summary() for m in messages]
    assert left == b"" and found == [m.summary() for m in whole]
