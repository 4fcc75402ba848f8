"""One client's Modbus/TCP connection to a PLC, drawn into the output with real-world shape.

A request batch goes out in one segment when the client pipelines it (the PLC answers in one
segment too), or request by request. About one segment in a hundred that carries more than one
byte is split in two inside a PDU; a few segments are retransmitted after a timeout. The PLC's
answers come from the run (`Run.answer`), which applies writes to the process; a PLC in
listen-only mode acknowledges at the TCP level and answers nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.behaviour import MODBUS_PORT
from plantwarden.sim.traffic.output import PduMark
from plantwarden.sim.traffic.truth import Poll, PollKey

if TYPE_CHECKING:
    from plantwarden.sim.traffic.run import Run

SPLIT_RATE = 0.012
RETRANSMIT_RATE = 0.005
RETRANSMIT_TIMEOUT = 0.2
HEADER_AND_FUNCTION = 8
Label = tuple[str, str, str] | None


class ModbusLink:
    """A Modbus/TCP connection from `source` to PLC `plc`, optionally labelled as an attack's."""

    def __init__(self, run: Run, source: str, plc: str, rng: random.Random, label: Label = None) -> None:
        self.run = run
        self.plc = run.plant.plc(plc)
        self.rng = rng
        self.label = label
        self.connection = run.network.tcp(source, plc, MODBUS_PORT)
        self.rtt = run.rtt(source, plc)
        self.transaction = rng.randrange(0x10000)
        self.addresses = (run.network.host(source).address, self.plc.host.address)

    def open(self, time: float) -> float:
        """The handshake; the time it ends."""
        for segment in self.connection.handshake(time, self.rtt):
            self.run.out.add(segment, label=self.label)
        return time + self.rtt + 0.0001

    def close(self, time: float) -> float:
        """The client's orderly close; the time it ends."""
        for segment in self.connection.close(time, self.rtt):
            self.run.out.add(segment, label=self.label)
        return time + self.rtt + 0.0001

    def ack(self, time: float, from_client: bool = True) -> None:
        """A bare acknowledgement (the client's delayed ACK after the last answer)."""
        self.run.out.add(self.connection.ack(time, from_client), label=self.label)

    def exchange(self, time: float, requests: Sequence[modbus.Request], *, pipelined: bool) -> float:
        """The requests and their answers; the time the last answer is in."""
        if pipelined and len(requests) > 1:
            return self._batch(time, list(requests))
        for request in requests:
            time = self._batch(time, [request]) + self.rng.uniform(0.0002, 0.002)
        return time

    def _batch(self, time: float, requests: list[modbus.Request]) -> float:
        adus, marks, transactions, polls = [], [], [], []
        for request in requests:
            self.transaction = (self.transaction + 1) & 0xFFFF
            transactions.append(self.transaction)
            adus.append(modbus.adu(self.transaction, self.plc.unit_id, modbus.request_pdu(request)))
            marks.append((request.function_code, "request"))
            key: PollKey = (*self.addresses, "modbus", request.function_code)
            item = (self.plc.unit_id, request.address, request.count)
            polls.append(Poll(self.run.out.ledger.polling.token(), key, item))
        time = self.send(time, True, adus, marks, polls)
        answers, answer_marks, answer_polls = [], [], []
        for transaction, request, poll in zip(transactions, requests, polls, strict=True):
            pdu = self.run.answer(self.plc.name, request)
            if pdu is not None:
                answers.append(modbus.adu(transaction, self.plc.unit_id, pdu))
                answer_marks.append((request.function_code, "exception" if pdu[0] & 0x80 else "response"))
                answer_polls.append(Poll(poll.token))
        time += self.run.plc_delay(self.rng)
        if not answers:
            self.ack(time, from_client=False)
            return time
        return self.send(time, False, answers, answer_marks, answer_polls)

    def send(
        self,
        time: float,
        from_client: bool,
        adus: list[bytes],
        marks: list[PduMark],
        polls: list[Poll] | None = None,
    ) -> float:
        """`adus` in one segment (split or retransmitted now and then); the time the last copy is out.
        `polls` (one per ADU, for the ledger's polling) go with the frame that completes each."""
        polls = polls or []
        payload = b"".join(adus)
        shared = len(adus) > 1
        out, connection = self.run.out, self.connection
        if len(payload) > 1 and self.rng.random() < SPLIT_RATE:
            cut = self._cut(adus)
            whole = _complete_before(adus, cut)
            out.add(
                connection.send(time, from_client, payload[:cut], push=False),
                tuple(marks[:whole]),
                self.label,
                shared=shared,
                polls=tuple(polls[:whole]),
            )
            time += self.rng.uniform(0.0001, 0.001)
            last = payload[cut:]
            out.add(
                connection.send(time, from_client, last),
                tuple(marks[whole:]),
                self.label,
                shared=shared,
                split=True,
                polls=tuple(polls[whole:]),
            )
        else:
            last = payload
            out.add(
                connection.send(time, from_client, payload),
                tuple(marks),
                self.label,
                shared=shared,
                polls=tuple(polls),
            )
        if self.rng.random() < RETRANSMIT_RATE:
            time += RETRANSMIT_TIMEOUT + self.rng.uniform(0.0, 0.05)
            out.add(connection.retransmit(time, from_client, last), label=self.label)
        return time

    def _cut(self, adus: list[bytes]) -> int:
        """A cut inside one PDU, after its MBAP header and function code, so exactly one is split.

        Stacks that write the header and the body separately split there or later; Wireshark's
        Modbus/TCP dissector needs those first eight bytes in one segment to reassemble the rest.
        """
        index = self.rng.randrange(len(adus))
        start = sum(len(adu) for adu in adus[:index])
        return start + self.rng.randrange(HEADER_AND_FUNCTION, len(adus[index]))


def _complete_before(adus: list[bytes], cut: int) -> int:
    """How many of `adus` end at or before byte `cut` of their concatenation."""
    end = count = 0
    for adu in adus:
        end += len(adu)
        if end > cut:
            break
        count += 1
    return count
