"""The checks the sensor makes across a connection: IEC 104's sequence numbers, OPC UA's secure
channels. On the IPAL energy captures (a labelled benchmark: the same IEC 104 trace clean, and
with packets cloned, removed or swapped) the sequence check says nothing of the clean ones and
finds the manipulated ones; the channel check tells the unencrypted OPC UA channels apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from plantwarden.protocols.common import SummaryColumns
from plantwarden.protocols.iec104.exact import FORMAT_I, FORMAT_S
from plantwarden.protocols.iec104.sequences import Iec104Sequence, check_sequences
from plantwarden.protocols.opcua.channels import POLICY_NONE, OpcuaChannel, check_channels
from plantwarden.protocols.opcua.messages import MSG, OPN
from tests.functional.test_sensor_protocols import DATASETS

IPAL = DATASETS / "pcaps" / "ipal-energy-iec104"
OPCUA = DATASETS / "pcaps" / "cisagov-icsnpp" / "opcua-binary"
NO_SUMMARY = SummaryColumns.from_summaries([])


def checks(capture: Path, name: str) -> dict[str, int]:
    if not capture.exists():
        pytest.skip(f"the shared datasets are not at {DATASETS}")
    sensor = Sensor(protocols=(PROTOCOLS[name],))
    for batch in read_capture(capture):
        sensor.process(batch)
    return dict(sensor.finish().protocols[name].checks)


@pytest.mark.parametrize("relative", ["orig.pcap", "train.pcap", "test.pcap"])
def test_a_clean_iec104_trace_keeps_its_sequence_numbers(relative: str) -> None:
    assert checks(IPAL / relative, "iec104") == {}


@pytest.mark.parametrize("kind", ["C", "R", "S"])
def test_cloned_removed_or_swapped_iec104_frames_break_the_sequence(kind: str) -> None:
    found = checks(IPAL / "attacked" / f"{kind}-0.1-0.pcap", "iec104")
    assert sum(found.values()) > 0
    assert set(found) <= {"send_gap", "send_repeat", "ack_unsent"}


def sequences(rows: list[tuple[int, bool, int, int, int]]) -> list[int]:
    """Codes for rows of (connection, from_server, frame format, N(S), N(R))."""
    connection, server, frame, send, receive = (np.array(column) for column in zip(*rows, strict=True))
    own = {"frame_format": frame, "send_seq": send, "recv_seq": receive}
    codes: list[int] = check_sequences({}, connection, server, own, NO_SUMMARY).tolist()
    return codes


def test_sequence_numbers_are_checked_per_side_and_connection() -> None:
    i, s = FORMAT_I, FORMAT_S
    rows = [
        (1, False, i, 0, 0),  # client's first command
        (1, True, i, 0, 1),  # server confirms, acknowledging it
        (2, False, i, 5, 0),  # another connection: its own numbers
        (1, True, i, 1, 1),
        (1, False, s, -1, 2),  # the client acknowledges both
        (1, True, i, 3, 1),  # the server skips 2: a gap
        (1, False, s, -1, 9),  # acknowledges frames the server never sent
        (1, True, i, 3, 1),  # 3 again: a repeat
        (2, False, i, 6, 0),
    ]
    assert sequences(rows) == [
        0,
        0,
        0,
        0,
        0,
        Iec104Sequence.SEND_GAP,
        Iec104Sequence.ACK_UNSENT,
        Iec104Sequence.SEND_REPEAT,
        0,
    ]


def test_the_numbers_wrap_at_32768() -> None:
    rows = [(1, False, FORMAT_I, 32767, 0), (1, False, FORMAT_I, 0, 0), (1, True, FORMAT_S, -1, 1)]
    assert sequences(rows) == [0, 0, 0]


def test_opcua_channels_without_encryption_are_flagged_once_per_connection() -> None:
    basic = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
    rows = [
        (1, False, OPN, 1, POLICY_NONE, True),  # mode None: unencrypted
        (1, False, MSG, -1, "", True),
        (2, False, OPN, 3, basic, True),  # SignAndEncrypt
        (2, False, MSG, -1, "", False),
        (3, False, MSG, -1, "", True),  # its OPN came before the capture: readable all the same
        (3, False, MSG, -1, "", True),
        (4, False, OPN, 2, basic, True),  # Sign: signed, but readable
        (5, False, OPN, -1, basic, False),  # the body is encrypted: nothing known yet
        (5, False, MSG, -1, "", True),  # ... until a message is readable (mode Sign)
    ]
    connection, server, kind, mode, policy, readable = (
        np.array(column) for column in zip(*rows, strict=True)
    )
    own = {"message_type": kind, "security_mode": mode, "security_policy": policy, "body_readable": readable}
    unencrypted, readable_messages = OpcuaChannel.UNENCRYPTED_CHANNEL, OpcuaChannel.READABLE_MESSAGES
    assert check_channels({}, connection, server, own, NO_SUMMARY).tolist() == [
        unencrypted,
        0,
        0,
        0,
        readable_messages,
        0,
        unencrypted,
        0,
        readable_messages,
    ]


def test_an_encrypted_opcua_capture_shows_only_its_discovery_channel_unencrypted() -> None:
    # The client first asks for the endpoints over a channel with SecurityPolicy None, then opens
    # a Basic128Rsa15 SignAndEncrypt channel (tshark: OPN frames 9 and 11, then 31 and 33).
    assert checks(OPCUA / "open62541_client-server_encrypted.pcap", "opcua") == {"unencrypted_channel": 1}
