"""The fast path's own parts, each held to the exact path's: the CRC checks of whole frames and of
many blocks at once, the object-header walk over many fragments at once, and the cache of
walked requests."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.common import MAX_TARGETS
from plantwarden.protocols.dnp3 import Reassembler, crc16, objects, walk
from plantwarden.protocols.dnp3.crc import RESIDUE, WORD_TABLE, blocks_ok, header_ok, residues
from plantwarden.protocols.dnp3.headers import walk_rows
from tests.unit.protocols.dnp3 import builders as b
from tests.unit.protocols.dnp3.support import both, columns_of
from tests.unit.protocols.dnp3.test_properties import OBJECTS

HEADERS = [
    *OBJECTS,
    b.start_stop(30, 1, 2, 3, width=2) + bytes(10),
    b.start_stop(1, 2, 0x10000, 0x10001, width=4) + bytes(2),
    b.counted(32, 1, 2, prefix=2, width=2) + bytes(2 * (2 + 5)),
    b.counted(2, 1, 1, prefix=3, width=4) + struct.pack("<I", 7) + bytes(1),
    b.counted(1, 1, 3, prefix=1),  # packed objects with an index prefix: unknown size
    b.start_stop(110, 0, 0, 0),  # an octet string of no length: unknown size
    b.counted(0, 240, 1) + bytes([7, 2, 0, 0]),  # a device attribute: sizes read one by one
    b.all_objects(60, 1),
    bytes([12, 1, 0x8A, 1]),  # a reserved qualifier
    b.start_stop(30, 2, 5, 4),  # a stop below its start
    b.counted(50, 1, 1) + bytes(6),
]
"""Object headers of every shape the walks tell apart (with their data, for a response)."""


def test_the_word_table_is_two_steps_of_the_byte_table() -> None:
    for word in (0, 1, 0x00FF, 0x1234, 0xFFFF):
        data = struct.pack("<H", word)
        assert WORD_TABLE[word] ^ 0xFFFF == crc16(data)
    assert sorted(WORD_TABLE) == list(range(1 << 16))  # a permutation: a wrong CRC never passes


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=16))
def test_a_block_and_its_crc_leave_the_residue(block: bytes) -> None:
    sent = block + struct.pack("<H", crc16(block))
    assert blocks_ok(b"\x00" + sent, 1, 1 + len(sent))
    assert not blocks_ok(b"\x00" + sent[:-1] + bytes([sent[-1] ^ 0x10]), 1, 1 + len(sent))
    words = np.frombuffer(bytes(18 - len(sent)) + sent, dtype="<u2")  # right-aligned behind zeros
    assert residues(words[None, :])[0] == RESIDUE


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=250), st.integers(-2, 15))
def test_the_frame_checks_find_every_bad_block(user_data: bytes, corrupt: int) -> None:
    frame = b.link_frame(b.MASTER_TO_OUTSTATION, 1, 2, user_data, corrupt_block=corrupt)
    blocks = -(-len(user_data) // 16)
    assert header_ok(frame) == (corrupt != -2)
    assert blocks_ok(frame, 10, len(frame)) == (corrupt < 0 or corrupt >= blocks)


def _bodies(draw: st.DrawFn) -> tuple[int, bytes]:
    function = draw(st.sampled_from([0, 1, 2, 5, 7, 11, 13, 20, 25, 129, 130]))
    body = b"".join(draw(st.lists(st.sampled_from(HEADERS), max_size=5)))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return function, body


@settings(max_examples=300, deadline=None)
@given(st.lists(st.composite(_bodies)(), min_size=1, max_size=8))
def test_the_vectorised_walk_is_the_walk(fragments: list[tuple[int, bytes]]) -> None:
    # each fragment as user data behind a 10-byte header: a CRC gap after every 16 bytes
    octets, first = bytearray(), []
    for _, body in fragments:
        first.append(len(octets))
        for at in range(0, max(len(body), 1), 16):
            octets += body[at : at + 16] + b"\xee\xee"
    octets += bytes(300)
    found = walk_rows(
        np.frombuffer(bytes(octets), dtype=np.uint8),
        np.array(first, dtype=np.int64),
        np.zeros(len(fragments), dtype=np.int64),
        np.array([len(body) for _, body in fragments], dtype=np.int64),
        np.array([function for function, _ in fragments], dtype=np.int64),
    )
    with_headers, targets = (
        found.targets(MAX_TARGETS) if len(found.row) else (np.zeros(0, np.int64), np.zeros(0, dtype=object))
    )
    texts = dict(zip(with_headers.tolist(), targets.tolist(), strict=True))
    for row, (function, body) in enumerate(fragments):
        expected = walk(function, body)
        if found.exact[row]:
            continue
        headers = [
            (group, variation, qualifier, start, stop, count, first_index)
            for row_of, group, variation, qualifier, start, stop, count, first_index in zip(
                found.row.tolist(),
                found.group.tolist(),
                found.variation.tolist(),
                found.qualifier.tolist(),
                found.start.tolist(),
                found.stop.tolist(),
                found.count.tolist(),
                found.first_index.tolist(),
                strict=True,
            )
            if row_of == row
        ]
        assert headers == [
            (h.group, h.variation, h.qualifier, h.start, h.stop, h.count, h.first_index)
            for h in expected.headers
        ]
        assert (found.status[row], found.finding[row]) == (expected.status, expected.finding)
        assert texts.get(row, ()) == tuple(header.text() for header in expected.headers)


def test_only_the_first_targets_of_a_long_request_are_texts() -> None:
    request = b.request(1, b"".join(b.start_stop(30, 1, index, index) for index in range(MAX_TARGETS + 8)))
    frame = b.link_frame(b.MASTER_TO_OUTSTATION, 10, 1, b.transport(request))
    (message,), _ = both(frame)
    summary = message.summary()
    assert summary.targets == tuple(f"g30v1 {index}-{index}" for index in range(MAX_TARGETS))


def test_requests_are_remembered_and_responses_are_not() -> None:
    objects._requests.clear()
    read = b.all_objects(60, 2) + b.all_objects(60, 1)
    assert objects.walk_fragment(1, read) is objects.walk_fragment(1, read)
    assert objects.walk_fragment(1, read) == walk(1, read)
    values = b.start_stop(30, 2, 0, 0) + bytes(3)
    assert objects.walk_fragment(129, values) is not objects.walk_fragment(129, values)
    assert list(objects._requests) == [(1, read)]


def test_the_remembered_requests_are_bounded() -> None:
    objects._requests.clear()
    for index in range(objects.REQUEST_CACHE_SIZE + 10):
        objects.walk_fragment(1, b.start_stop(30, 1, 0, index, width=2))
    assert 0 < len(objects._requests) <= objects.REQUEST_CACHE_SIZE


def test_a_batch_of_many_shapes_is_the_same_on_both_paths() -> None:
    payloads, servers = [], []
    for index, objects_ in enumerate(HEADERS):
        payloads.append(b.link_frame(b.MASTER_TO_OUTSTATION, 10, 1, b.transport(b.request(2, objects_))))
        response = b.response(129, 0, index, objects_)
        payloads.append(b.link_frame(b.OUTSTATION_TO_MASTER, 1, 10, b.transport(response)))
        servers += [False, True]
    fast, exact = columns_of(payloads, servers)
    assert fast.differences(exact) == []


def test_a_reassembled_fragment_is_walked_as_a_whole() -> None:
    values = b"".join(struct.pack("<Bh", 1, value) for value in range(100))
    fragment = b.response(129, 0, 0, b.start_stop(30, 2, 0, 99) + values + b.all_objects(60, 1))
    frames = b.frames_for(fragment, b.OUTSTATION_TO_MASTER, 1, 10)
    messages, _ = Reassembler().decode_payload(b"".join(frames), True)
    assert messages[-1].fragments == len(frames) > 1
    assert messages[-1].summary().targets == ("g30v2 0-99", "g60v1 all")
