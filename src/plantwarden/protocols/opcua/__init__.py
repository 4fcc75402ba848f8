"""OPC UA binary (OPC UA Part 6: UA Connection Protocol and UA Secure Conversation over TCP).

Two paths, identical records:

- exact: `decode_payload(payload, from_server)` gives one payload's `OpcuaMessage`s and the bytes
  of an incomplete last message;
- fast: `extract(buffer, starts, lengths, from_server)` frames and decodes many payloads at once
  into `OpcuaColumns`.
"""

from plantwarden.protocols.common import ProtocolModule, Support
from plantwarden.protocols.opcua.columns import SCHEMA, OpcuaColumns
from plantwarden.protocols.opcua.exact import decode, decode_payload, decode_segments, split_messages
from plantwarden.protocols.opcua.extract import extract
from plantwarden.protocols.opcua.findings import OpcuaFinding
from plantwarden.protocols.opcua.messages import MESSAGE_TYPES, OpcuaMessage
from plantwarden.protocols.opcua.services import NAMES, POLICY_NONE, SECURITY_MODES

MODULE = ProtocolModule(
    name="opcua",
    support=Support.PARTIAL,
    references=(
        "OPC 10000-6 UA Part 6: Mappings, v1.04, §5.2 (binary encoding), §6.7 (UA Secure Conversation), "
        "§7.1 (UA Connection Protocol)",
        "OPC 10000-4 UA Part 4: Services, v1.04, §5.5.2 (OpenSecureChannel), §7.28-7.29 (request and "
        "response headers)",
        "OPC 10000-7 UA Part 7: Profiles (security policy URIs)",
    ),
    tcp_ports=(4840,),
)

__all__ = [
    "MESSAGE_TYPES",
    "MODULE",
    "NAMES",
    "POLICY_NONE",
    "SCHEMA",
    "SECURITY_MODES",
    "OpcuaColumns",
    "OpcuaFinding",
    "OpcuaMessage",
    "decode",
    "decode_payload",
    "decode_segments",
    "extract",
    "split_messages",
]
