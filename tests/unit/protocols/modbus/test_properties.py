"""Property tests: garbage and mutated ADUs never raise, give only listed findings, never
`UNEXPECTED`, and the column extractor always equals the exact decoder."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.protocols.modbus import ModbusFinding, Operation, decode

from .plant_mix import exchanges
from .support import adu, both_paths

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = [frame for pair in exchanges(60, seed=3) for frame in pair]
CODES = st.one_of(
    st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43, 65, 100, 90]),
    st.integers(0, 255),
)


@st.composite
def structured_pdu(draw: st.DrawFn) -> bytes:
    """A sound MBAP header around a function code and data that is often nearly right."""
    code = draw(CODES) | (0x80 if draw(st.booleans()) and draw(st.integers(0, 9)) == 0 else 0)
    head = draw(st.sampled_from([b"", b"\x0e", b"\x0d", b"\x00\x00", b"\x00\x01", b"\x0e\x01\x00"]))
    counts = draw(st.lists(st.integers(0, 255), max_size=3))
    tail = draw(st.binary(max_size=40))
    pdu = (bytes((code,)) + head + bytes(counts) + tail)[:253]
    return adu(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 255)), pdu)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Valid ADUs laid end to end, then bytes overwritten, cut or inserted."""
    payload = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(payload)))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and at < len(payload):
            payload[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del payload[at:]
        else:
            payload[at:at] = draw(st.binary(min_size=1, max_size=3))
    return bytes(payload)


SEGMENTS = st.lists(
    st.tuples(st.one_of(st.binary(max_size=300), structured_pdu(), mutated()), st.booleans()),
    max_size=8,
)


def _check(payloads: list[tuple[bytes, bool]]) -> None:
    result = both_paths([payload for payload, _ in payloads], [server for _, server in payloads])
    assert set(result.columns.finding.tolist()) <= {int(finding) for finding in ModbusFinding}
    assert set(result.columns.operation.tolist()) <= {int(operation) for operation in Operation}
    assert ModbusFinding.UNEXPECTED not in result.columns.finding.tolist()
    for (payload, _), left in zip(payloads, result.leftover.tolist(), strict=True):
        assert 0 <= left <= len(payload)


@SETTINGS
@given(SEGMENTS)
def test_any_segments_give_equal_columns_on_both_paths(payloads: list[tuple[bytes, bool]]) -> None:
    _check(payloads)


@SETTINGS
@given(st.lists(st.tuples(structured_pdu(), st.booleans()), min_size=1, max_size=8))
def test_sound_headers_around_odd_pdus_give_equal_columns(payloads: list[tuple[bytes, bool]]) -> None:
    _check(payloads)
    _check([(b"".join(payload for payload, _ in payloads), payloads[0][1])])


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_decode_never_raises_on_bytes(adu_bytes: bytes, from_server: bool) -> None:
    message = decode(adu_bytes, from_server)
    assert message.finding in set(ModbusFinding) and message.finding != ModbusFinding.UNEXPECTED
