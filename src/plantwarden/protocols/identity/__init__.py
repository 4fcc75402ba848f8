"""Identity sources on the plant network: ARP, DHCP, LLDP and PROFINET DCP, and the MAC vendor
registry (`vendors`).

Each protocol has an exact decoder (one frame's bytes from the layer-3 header on, or for DHCP
the UDP payload: `decode_arp`, `decode_dhcp`, `decode_lldp`, `decode_dcp`), whose messages give
a `Summary` and an `Identity`; `extract_identity` gives the same as `IdentityColumns` for many
frames of a batch at once (`Kind` says which protocol each frame is).
"""

from plantwarden.protocols.identity.arp import MODULE as ARP_MODULE
from plantwarden.protocols.identity.arp import ArpMessage, decode_arp
from plantwarden.protocols.identity.columns import SCHEMA, IdentityColumns, Kind
from plantwarden.protocols.identity.dhcp import MODULE as DHCP_MODULE
from plantwarden.protocols.identity.dhcp import DhcpMessage, decode_dhcp
from plantwarden.protocols.identity.extract import decode_identity, decode_identity_frames, extract_identity
from plantwarden.protocols.identity.fields import Identity
from plantwarden.protocols.identity.findings import IdentityFinding
from plantwarden.protocols.identity.lldp import MODULE as LLDP_MODULE
from plantwarden.protocols.identity.lldp import LldpMessage, decode_lldp
from plantwarden.protocols.identity.pn_dcp import MODULE as DCP_MODULE
from plantwarden.protocols.identity.pn_dcp import DcpBlock, DcpMessage, decode_dcp

MODULES = (ARP_MODULE, DHCP_MODULE, LLDP_MODULE, DCP_MODULE)

__all__ = [
    "ARP_MODULE",
    "DCP_MODULE",
    "DHCP_MODULE",
    "LLDP_MODULE",
    "MODULES",
    "SCHEMA",
    "ArpMessage",
    "DcpBlock",
    "DcpMessage",
    "DhcpMessage",
    "Identity",
    "IdentityColumns",
    "IdentityFinding",
    "Kind",
    "LldpMessage",
    "decode_arp",
    "decode_dcp",
    "decode_dhcp",
    "decode_identity",
    "decode_identity_frames",
    "decode_lldp",
    "extract_identity",
]
