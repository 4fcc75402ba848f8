"""The oracle: the sensor's ARP, DHCP, LLDP and PROFINET DCP decoding against tshark's, frame by
frame and field by field, on every shared capture that holds these protocols and on a capture
written here by scapy (an independent encoder and pcap writer).

Frames are picked with the sensor's own layer decoder (EtherType 0x0806/0x8035, 0x88CC, 0x8892
with a DCP frame id; UDP 67/68), decoded by the exact decoders, and compared with tshark's
fields: ARP opcode and addresses; DHCP message type, xid, chaddr, yiaddr, host name; LLDP chassis
id, port id, TTL, system name; DCP frame id, service id and type, xid, NameOfStation, IP, vendor
and device id. Codes and ids must agree on every frame both sides see, and neither side may see a
frame the other does not, apart from the reviewed differences (each with its reason). Both paths
(`extract_identity` and the exact decoders) must agree, and the finding UNEXPECTED never occurs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from scapy.contrib.lldp import (
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUPortID,
    LLDPDUSystemName,
    LLDPDUTimeToLive,
)
from scapy.contrib.pnio import ProfinetIO
from scapy.contrib.pnio_dcp import (
    DCPControlBlock,
    DCPDeviceIDBlock,
    DCPIPBlock,
    DCPNameOfStationBlock,
    ProfinetDCP,
)
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from plantwarden.capture.layers.columns import PROTO_UDP
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.capture.pcap import read_capture
from plantwarden.protocols.identity import (
    ArpMessage,
    DcpMessage,
    DhcpMessage,
    IdentityFinding,
    Kind,
    LldpMessage,
    decode_identity,
    decode_identity_frames,
    extract_identity,
)
from plantwarden.protocols.identity.fields import ipv4_text, mac_text
from tests.tshark_support import fields

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
ETHERTYPES = {0x0806: Kind.ARP, 0x8035: Kind.ARP, 0x88CC: Kind.LLDP, 0x8892: Kind.DCP}
DHCP_PORTS = (67, 68)
CAPTURES = {
    # capture: frames with an identity protocol (ARP, LLDP, DCP, DHCP), as found by tshark
    "pcaps/cisagov-icsnpp/bsap/bsap-ip_example.pcap": 147,
    "pcaps/cisagov-icsnpp/enip/enip_cip_example.pcap": 6,
    "pcaps/cisagov-icsnpp/synchrophasor/c37118_1100_unclean.pcap": 34,
    "pcaps/ipal-energy-iec104/orig.pcap": 8,
    "pcaps/iti-ics-security-tools/beckhoff-ads/addroute.pcapng": 2,
    "pcaps/iti-ics-security-tools/beckhoff-ads/beckoffiplinktc.pcapng": 2,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-ChangeDateAttempt.pcap": 4,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-ChangeTimeAttempt.pcap": 5,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-ControlProtocolChangeAttempt.pcap": 29,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-FirmwareChangeFailure.pcap": 3,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-RebootorRestart.pcap": 1,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-RemoteModeChangeAttempt.pcap": 3,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-SoftwareDownloadFailure.pcap": 53,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-SoftwareUpload.pcap": 4,
    "pcaps/iti-ics-security-tools/enip-cip/quickdraw/EIP-SoftwareUploadFailure.pcap": 42,
    "pcaps/iti-ics-security-tools/hart-ip/hart_ip.pcap": 4,
    "pcaps/iti-ics-security-tools/profinet/ChangeIPUsingDCP.pcap": 6,
    "pcaps/iti-ics-security-tools/profinet/PROFINET-RT.pcap": 14,
    "pcaps/iti-ics-security-tools/profinet/Profinet_Failed.pcap": 40,
    "pcaps/iti-ics-security-tools/profinet/profinet-wireshark-bug.pcap": 4,
    "pcaps/iti-ics-security-tools/s7comm/s7comm_reading_plc_status.pcap": 2,
    "pcaps/iti-ics-security-tools/s7comm/s7comm_reading_setting_plc_time.pcap": 2,
    "pcaps/iti-ics-security-tools/s7comm/s7comm_varservice_libnodavedemo.pcap": 2,
    "pcaps/lemay-modbus-cset16/characterization_modbus_6RTU_with_operate.pcap": 13,
    "pcaps/lemay-modbus-cset16/moving_two_files_modbus_6RTU.pcap": 4,
}
REVIEWED: dict[str, dict[tuple[int, str], str]] = {}
"""(frame, field) pairs where the sensor and tshark differ on purpose, with the reason; none yet."""

TSHARK_FIELDS = [
    "frame.number",
    "frame.protocols",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.hw_mac",
    "arp.dst.proto_ipv4",
    "dhcp.option.dhcp",
    "dhcp.id",
    "dhcp.hw.mac_addr",
    "dhcp.ip.your",
    "dhcp.option.hostname",
    "lldp.chassis.subtype",
    "lldp.chassis.id",
    "lldp.chassis.id.mac",
    "lldp.chassis.id.ip4",
    "lldp.port.subtype",
    "lldp.port.id",
    "lldp.port.id.mac",
    "lldp.time_to_live",
    "lldp.tlv.system.name",
    "pn_rt.frame_id",
    "pn_dcp.service_id",
    "pn_dcp.service_type",
    "pn_dcp.xid",
    "pn_dcp.suboption_device_nameofstation",
    "pn_dcp.suboption_ip_ip",
    "pn_dcp.suboption_vendor_id",
    "pn_dcp.suboption_device_id",
]
FILTER = "arp or lldp or pn_dcp or dhcp"
FIRST_ONLY = ("pn_dcp.suboption_ip_ip", "pn_dcp.suboption_vendor_id", "pn_dcp.suboption_device_id")
"""Fields tshark may list several times in a frame (an IP filter and the IP block, say): the
sensor keeps the first block's value."""


def identity_frames(capture: Path) -> Iterator[tuple[int, Kind, bytes, bool]]:
    """(frame number, kind, bytes, whether both paths agree on its batch) of every identity frame."""
    for batch in read_capture(capture):
        layers = decode_layers(batch)
        rows, kinds, starts, lengths = [], [], [], []
        for row in range(len(batch)):
            end = int(batch.offsets[row]) + int(batch.lengths[row])
            ethertype, l3 = int(layers.ethertype[row]), int(layers.l3_offset[row])
            if ethertype in ETHERTYPES and l3 >= 0:
                start, kind = l3, ETHERTYPES[ethertype]
                if kind == Kind.DCP:
                    frame_id = batch.buffer[l3 : l3 + 2].tobytes()
                    if len(frame_id) < 2 or not 0xFEFC <= int.from_bytes(frame_id, "big") <= 0xFEFF:
                        continue
                length = end - l3
            elif (
                int(layers.ip_proto[row]) == PROTO_UDP
                and int(layers.payload_offset[row]) >= 0
                and (int(layers.src_port[row]) in DHCP_PORTS or int(layers.dst_port[row]) in DHCP_PORTS)
            ):
                start, kind = int(layers.payload_offset[row]), Kind.DHCP
                length = int(layers.payload_length[row])
            else:
                continue
            rows.append(row)
            kinds.append(kind)
            starts.append(start)
            lengths.append(length)
        if not rows:
            continue
        arrays = (np.array(starts, np.int64), np.array(lengths, np.int64), np.array(kinds, np.uint8))
        fast = extract_identity(batch.buffer, *arrays)
        agree = fast.differences(decode_identity_frames(batch.buffer, *arrays)) == []
        for row, kind, start, length in zip(rows, kinds, starts, lengths, strict=True):
            yield batch.first_number + row, kind, batch.buffer[start : start + length].tobytes(), agree


def ours(message: object) -> dict[str, str]:
    """The compared fields of one message, as tshark writes them ("" where there is none)."""
    if isinstance(message, ArpMessage):
        if message.sender_mac < 0:
            return {"arp.opcode": str(message.opcode)}
        return {
            "arp.opcode": str(message.opcode),
            "arp.src.hw_mac": mac_text(message.sender_mac),
            "arp.src.proto_ipv4": ipv4_text(message.sender_ip),
            "arp.dst.hw_mac": mac_text(message.target_mac),
            "arp.dst.proto_ipv4": ipv4_text(message.target_ip),
        }
    if isinstance(message, DhcpMessage):
        return {
            "dhcp.option.dhcp": str(message.message_type) if message.message_type >= 0 else "",
            "dhcp.id": f"0x{message.xid:08x}",
            "dhcp.hw.mac_addr": mac_text(message.client_mac) if message.client_mac >= 0 else "",
            "dhcp.ip.your": ipv4_text(message.yiaddr),
            "dhcp.option.hostname": message.host_name,
        }
    if isinstance(message, LldpMessage):
        chassis = {4: "lldp.chassis.id.mac", 5: "lldp.chassis.id.ip4"}.get(
            message.chassis_subtype, "lldp.chassis.id"
        )
        port = "lldp.port.id.mac" if message.port_subtype == 3 else "lldp.port.id"
        return {
            "lldp.chassis.subtype": str(message.chassis_subtype),
            chassis: message.chassis_raw.hex() if chassis == "lldp.chassis.id" else message.chassis_id,
            "lldp.port.subtype": str(message.port_subtype),
            port: message.port_id,
            "lldp.time_to_live": str(message.ttl),
            "lldp.tlv.system.name": message.system_name,
        }
    assert isinstance(message, DcpMessage)
    return {
        "pn_rt.frame_id": str(message.frame_id),
        "pn_dcp.service_id": str(message.service_id),
        "pn_dcp.service_type": str(message.service_type),
        "pn_dcp.xid": f"0x{message.xid:08x}",
        "pn_dcp.suboption_device_nameofstation": message.name_of_station,
        "pn_dcp.suboption_ip_ip": ipv4_text(message.ip) if message.ip >= 0 else "",
        "pn_dcp.suboption_vendor_id": f"0x{message.vendor_id:04x}" if message.vendor_id >= 0 else "",
        "pn_dcp.suboption_device_id": f"0x{message.device_id:04x}" if message.device_id >= 0 else "",
    }


@dataclass
class Comparison:
    matched: int = 0
    fields_compared: int = 0
    differences: list[tuple[int, str, str, str]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    """Frames tshark dissects as an identity protocol and the sensor does not pick."""
    extra: list[int] = field(default_factory=list)
    unexpected: int = 0
    paths_disagree: int = 0


def compare(capture: Path) -> Comparison:
    theirs = {
        int(row[0]): dict(zip(TSHARK_FIELDS, row, strict=True))
        for row in fields(capture, TSHARK_FIELDS, FILTER)
    }
    result = Comparison()
    seen = set()
    for frame, kind, data, agree in identity_frames(capture):
        seen.add(frame)
        message = decode_identity(kind, data)
        summary = message.summary()
        result.unexpected += summary.finding == IdentityFinding.UNEXPECTED
        result.paths_disagree += not agree
        if frame not in theirs:
            result.extra.append(frame)
            continue
        result.matched += 1
        for name, value in ours(message).items():
            result.fields_compared += 1
            their = theirs[frame][name]
            their = their.split(",")[0] if name in FIRST_ONLY else their
            if name == "lldp.chassis.id":
                their = their.replace(":", "")
            if value != their:
                result.differences.append((frame, name, value, their))
    result.missing = sorted(set(theirs) - seen)
    return result


def check(capture: Path, name: str) -> Comparison:
    result = compare(capture)
    reviewed = REVIEWED.get(name, {})
    unexplained = [d for d in result.differences if d[:2] not in reviewed]
    assert unexplained == [], f"{name}: {unexplained[:10]}"
    assert {d[:2] for d in result.differences} == set(reviewed), (
        "a reviewed difference is gone: update the list"
    )
    assert result.missing == [] and result.extra == [], name
    assert result.unexpected == 0 and result.paths_disagree == 0
    return result


def datasets_present() -> bool:
    if (DATASETS / "PCAP_INVENTORY.tsv").exists():
        return True
    message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("relative", sorted(CAPTURES), ids=lambda path: Path(path).name)
def test_the_sensor_agrees_with_tshark_on_a_shared_capture(relative: str) -> None:
    datasets_present()
    result = check(DATASETS / relative, Path(relative).name)
    assert result.matched == CAPTURES[relative]


def test_every_shared_capture_with_identity_frames_is_listed() -> None:
    datasets_present()
    rows = [line.split("\t") for line in (DATASETS / "PCAP_INVENTORY.tsv").read_text().splitlines()[1:]]
    found = {row[0] for row in rows if any(True for _ in identity_frames(DATASETS / row[0]))}
    assert found == set(CAPTURES)


def scapy_frames() -> list[Packet]:
    """Frames of every kind, built by scapy: ARP (request, reply, gratuitous, probe), a DHCP
    exchange, LLDP, and DCP (identify, response, set IP and name, reset, get, VLAN-tagged)."""
    plc, hmi, bcast = "00:1b:1b:01:02:03", "00:0e:8c:aa:bb:cc", "ff:ff:ff:ff:ff:ff"
    frames: list[Packet] = [
        Ether(src=hmi, dst=bcast) / ARP(op=1, hwsrc=hmi, psrc="10.0.0.20", pdst="10.0.0.10"),
        Ether(src=plc, dst=hmi) / ARP(op=2, hwsrc=plc, psrc="10.0.0.10", hwdst=hmi, pdst="10.0.0.20"),
        Ether(src=plc, dst=bcast) / ARP(op=1, hwsrc=plc, psrc="10.0.0.10", pdst="10.0.0.10"),
        Ether(src=plc, dst=bcast) / ARP(op=1, hwsrc=plc, psrc="0.0.0.0", pdst="10.0.0.11"),
    ]
    chaddr = bytes.fromhex(plc.replace(":", ""))
    for op, kind, source, destination, yiaddr in (
        (1, "discover", ("0.0.0.0", 68), ("255.255.255.255", 67), "0.0.0.0"),
        (2, "offer", ("10.0.0.1", 67), ("10.0.0.10", 68), "10.0.0.10"),
        (1, "request", ("0.0.0.0", 68), ("255.255.255.255", 67), "0.0.0.0"),
        (2, "ack", ("10.0.0.1", 67), ("10.0.0.10", 68), "10.0.0.10"),
    ):
        options = [("message-type", kind), ("hostname", "plc-1"), ("vendor_class_id", "Siemens"), "end"]
        frames.append(
            Ether(src=plc, dst=bcast)
            / IP(src=source[0], dst=destination[0])
            / UDP(sport=source[1], dport=destination[1])
            / BOOTP(op=op, xid=0x3903F326, chaddr=chaddr, yiaddr=yiaddr)
            / DHCP(options=options)
        )
    frames.append(
        Ether(src=plc, dst="01:80:c2:00:00:0e")
        / LLDPDUChassisID(subtype=4, id=plc)
        / LLDPDUPortID(subtype=7, id="port-001.plc-1")
        / LLDPDUTimeToLive(ttl=20)
        / LLDPDUSystemName(system_name="plc-1")
        / LLDPDUEndOfLLDPDU()
    )
    frames.append(
        Ether(src=hmi, dst="01:80:c2:00:00:0e")
        / LLDPDUChassisID(subtype=7, id="scada-pc-1")
        / LLDPDUPortID(subtype=3, id=hmi)
        / LLDPDUTimeToLive(ttl=120)
        / LLDPDUEndOfLLDPDU()
    )
    dcp = "01:0e:cf:00:00:00"
    identify = ProfinetDCP(
        service_id=5, service_type=0, reserved=1, option=255, sub_option=255, dcp_data_length=4
    )
    blocks = [
        DCPNameOfStationBlock(name_of_station=b"plc-1"),
        DCPDeviceIDBlock(vendor_id=0x002A, device_id=0x0A01, dcp_block_length=6, padding=b""),
        DCPIPBlock(
            ip="10.0.0.10", netmask="255.255.255.0", gateway="10.0.0.1", dcp_block_length=14, padding=b""
        ),
    ]
    length = sum(len(bytes(block)) for block in blocks)
    set_ip = ProfinetDCP(
        service_id=4,
        service_type=0,
        option=1,
        sub_option=2,
        dcp_block_length=14,
        block_qualifier=1,
        ip="10.0.0.99",
        netmask="255.255.255.0",
        gateway="10.0.0.1",
        dcp_data_length=18,
    )
    set_name = ProfinetDCP(
        service_id=4,
        service_type=0,
        option=2,
        sub_option=2,
        dcp_block_length=9,
        block_qualifier=1,
        name_of_station=b"plc-new",
        dcp_data_length=14,
    )
    reset = ProfinetDCP(
        service_id=4,
        service_type=0,
        option=5,
        sub_option=6,
        dcp_block_length=2,
        block_qualifier=2,
        dcp_data_length=6,
    )
    frames += [
        Ether(src=hmi, dst=dcp) / ProfinetIO(frameID=0xFEFE) / identify,
        Ether(src=plc, dst=hmi)
        / ProfinetIO(frameID=0xFEFF)
        / ProfinetDCP(service_id=5, service_type=1, dcp_data_length=length, dcp_blocks=blocks),
        Ether(src=hmi, dst=plc) / ProfinetIO(frameID=0xFEFD) / set_ip,
        Ether(src=hmi, dst=plc) / Dot1Q(vlan=0) / ProfinetIO(frameID=0xFEFD) / set_name,
        Ether(src=hmi, dst=plc) / ProfinetIO(frameID=0xFEFD) / reset,
        Ether(src=plc, dst=hmi)
        / ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(
            service_id=4,
            service_type=1,
            dcp_data_length=8,
            dcp_blocks=[DCPControlBlock(response=1, response_sub_option=2, block_error=0)],
        ),
    ]
    return frames


def test_the_sensor_agrees_with_tshark_on_scapy_frames(tmp_path: Path) -> None:
    capture = tmp_path / "identity.pcap"
    frames = scapy_frames()
    wrpcap(str(capture), frames)
    result = check(capture, capture.name)
    assert result.matched == len(frames)
