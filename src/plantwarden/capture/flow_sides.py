"""Which side of a new flow is its client, and which its server.

The flow table decides it once, from the packets of the batch that starts the flow, by the
first of these rules that applies:

1. the sender of its first SYN without ACK is the client (the connection was seen opening);
2. else the receiver of its first SYN with ACK is (the server answered the SYN);
3. else (a capture that starts in the middle of a connection, or UDP) the server is the side
   whose port is a service port, when only one side's is: a well-known port (below 1024) or one
   of the table's service ports (the industrial protocols' ports the sensor knows);
4. else, for TCP, the server is the side with the lower port (clients take high, ephemeral
   ports);
5. else (both ports equal, or UDP with no service port or two) the sender of its first packet
   is the client.

So a capture whose first packet is a PLC's answer from port 502 still stores its flow as the
master to the PLC on tcp/502, and one whose first packet is a Modbus master's poll from port
2404 to port 502 stores the master as the client.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.capture.flow_keys import Key
from plantwarden.capture.layers.columns import PROTO_TCP

SYN, ACK = 0x02, 0x10
WELL_KNOWN_PORTS = 1024
"""Ports below this are servers' (IANA's system ports)."""


class Openings:
    """Per group of a batch's packets (`order` lists them group by group, group `g` starting at
    `starts[g]`), for the groups of new flows (`rows`): whether it saw a SYN without ACK
    (`syn`), else a SYN with ACK (`answer`), and whether the first such packet (`opener_high`)
    and its first packet (`first_high`) were sent by the higher endpoint."""

    def __init__(
        self,
        order: npt.NDArray[np.int64],
        starts: npt.NDArray[np.int64],
        tcp_flags: npt.NDArray[np.uint16],
        swapped: npt.NDArray[np.bool_],
        rows: npt.NDArray[np.int64],
    ) -> None:
        flags = tcp_flags[order] & (SYN | ACK)
        count = len(flags)
        # One minimum per group: a SYN's position wins over a SYN-ACK's (moved up by `count`).
        rank = np.arange(count, dtype=np.int64)
        rank[flags == SYN | ACK] += count
        rank[(flags & SYN) == 0] = 2 * count
        first = np.minimum.reduceat(rank, starts)[rows]
        self.syn, self.answer = first < count, (first >= count) & (first < 2 * count)
        sent_high = swapped[order]
        self.opener_high = sent_high[first % count]
        self.first_high = sent_high[starts[rows]]


def high_clients(
    opened: Openings, service_ports: npt.NDArray[np.bool_], keys: list[Key]
) -> npt.NDArray[np.bool_]:
    """Per new flow (its canonical `keys`): whether its client is the higher endpoint, by the
    rules above (SYN, SYN with ACK, service port, lower TCP port, first packet). A flow from an
    endpoint to itself has all its packets go from its client."""
    ports = np.array([key[4] for key in keys], dtype=np.int64)
    low_port, high_port, transport = ports >> 24, ports >> 8 & 0xFFFF, ports & 0xFF
    looped = np.array([key[:2] == key[2:4] for key in keys], dtype=bool) & (low_port == high_port)
    low_service, high_service = service_ports[low_port], service_ports[high_port]
    clients: npt.NDArray[np.bool_] = np.select(
        [
            looped,
            opened.syn,
            opened.answer,
            low_service != high_service,
            (transport == PROTO_TCP) & (low_port != high_port),
        ],
        [False, opened.opener_high, ~opened.opener_high, low_service, low_port < high_port],
        opened.first_high,
    )
    return clients
