"""The exact path's record: one `OpcuaMessage` per OPC UA binary message (one chunk), and its
`Summary`. Numbers not read are -1; texts not read are empty."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.protocols.common import Operation, ParseStatus, Summary
from plantwarden.protocols.opcua.findings import OpcuaFinding
from plantwarden.protocols.opcua.services import NAMES, OPERATIONS

MESSAGE_TYPES = ("", "HEL", "ACK", "ERR", "RHE", "OPN", "MSG", "CLO")
"""Message type codes (the `message_type` column) by index; 0: unknown."""
TYPE_CODES = {name: code for code, name in enumerate(MESSAGE_TYPES) if name}
HEL, ACK, ERR, RHE, OPN, MSG, CLO = range(1, 8)
TYPE_NAMES = {
    0: "",
    HEL: "hello",
    ACK: "acknowledge",
    ERR: "error",
    RHE: "reverse_hello",
    OPN: "open_secure_channel",
    MSG: "message",
    CLO: "close_secure_channel",
}
"""The `function` of a message whose service is not read (transport messages, encrypted bodies)."""


@dataclass(frozen=True, slots=True)
class OpcuaMessage:
    """One OPC UA binary message (one chunk) as the exact decoder reads it."""

    offset: int
    """Byte offset of the message within its payload."""
    is_response: bool
    """Sent by the server."""
    message_type: int = 0
    """`MESSAGE_TYPES` index (1 HEL ... 7 CLO; 0 unknown)."""
    chunk_type: int = -1
    """The chunk type byte (ord of F, C or A)."""
    message_size: int = -1
    protocol_version: int = -1
    receive_buffer_size: int = -1
    send_buffer_size: int = -1
    max_message_size: int = -1
    max_chunk_count: int = -1
    endpoint_url: str = ""
    """HEL's EndpointUrl, RHE's EndpointUrl."""
    server_uri: str = ""
    """RHE's ServerUri."""
    error_code: int = -1
    """ERR's (or an abort chunk's) status code."""
    reason: str = ""
    secure_channel_id: int = -1
    security_policy: str = ""
    """OPN's SecurityPolicyUri (asymmetric security header)."""
    token_id: int = -1
    """MSG and CLO's TokenId (symmetric security header)."""
    sequence_number: int = -1
    """Sequence header, when the body is readable (it is encrypted with the body otherwise)."""
    request_id: int = -1
    body_readable: bool = False
    """Whether the body after the security headers was read (not encrypted, first chunk)."""
    service_id: int = -1
    """The body's type node id (numeric, namespace 0), e.g. 631 ReadRequest."""
    service_result: int = -1
    """A response's ResponseHeader.ServiceResult (a StatusCode)."""
    request_type: int = -1
    """OPN request: SecurityTokenRequestType (0 issue, 1 renew)."""
    security_mode: int = -1
    """OPN request: MessageSecurityMode (1 None, 2 Sign, 3 SignAndEncrypt)."""
    status: ParseStatus = ParseStatus.OK
    finding: OpcuaFinding = OpcuaFinding.OK

    def summary(self) -> Summary:
        """The message in common terms (see docs/protocols/opcua.md)."""
        if self.service_id in NAMES:
            function, operation = NAMES[self.service_id], OPERATIONS[self.service_id]
        else:
            function, operation = TYPE_NAMES[self.message_type], Operation.OTHER
        if self.message_type == 0:
            operation = Operation.MALFORMED
        code = self.error_code if self.error_code >= 0 else self.service_result
        return Summary(
            function_code=self.service_id,
            function=function,
            operation=operation,
            is_response=self.is_response,
            quantity=1 if self.endpoint_url else 0,
            targets=(self.endpoint_url,) if self.endpoint_url else (),
            result=code >> 16 if code >= 0 else -1,
            status=self.status,
            finding=int(self.finding),
        )
