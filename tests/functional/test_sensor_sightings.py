"""The sensor's sightings against tshark: on the shared captures that carry ARP, LLDP and PROFINET
DCP (and on a capture written here by scapy for DHCP, which no shared capture holds), every
sighting's time, addresses and names equal tshark's fields of the same frames, in the same order;
and an asset book fed with them gives assets whose facts (DCP station names and ids, LLDP system
names, DHCP host names) equal tshark's values.

The expected sightings are built from tshark's fields by the rules of `monitoring.sightings`
(which frames count, which address is the device's), so a difference is a decoding or
selection difference, never a rule restated from our own output.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from plantwarden.capture.layers.decode import decode_layers
from plantwarden.capture.pcap.reader import read_capture
from plantwarden.inventory import Asset, AssetBook, SegmentAddress, Sighting
from plantwarden.monitoring.sensor import Sensor
from plantwarden.monitoring.sightings import capability_names, sightings
from tests.tshark_support import fields

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
SITE, SEGMENT = "plant", "cell-1"
BATCH = 64
"""Small batches, so that flows are counted per batch across many batch boundaries."""
CAPTURES = {
    # capture: identity sightings expected (ARP, LLDP, DCP), as counted from tshark's fields
    "pcaps/iti-ics-security-tools/profinet/ChangeIPUsingDCP.pcap": 4,
    "pcaps/iti-ics-security-tools/profinet/profinet-wireshark-bug.pcap": 2,
    "pcaps/iti-ics-security-tools/profinet/Profinet_Failed.pcap": 40,
    "pcaps/iti-ics-security-tools/profinet/PROFINET-RT.pcap": 0,
    "pcaps/cisagov-icsnpp/bsap/bsap-ip_example.pcap": 141,
    "pcaps/cisagov-icsnpp/enip/enip_cip_example.pcap": 6,
    "pcaps/ipal-energy-iec104/orig.pcap": 8,
    "pcaps/iti-ics-security-tools/hart-ip/hart_ip.pcap": 4,
}
TSHARK_FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ipv6.src",
    "udp.srcport",
    "udp.dstport",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "dhcp.option.dhcp",
    "dhcp.hw.mac_addr",
    "dhcp.ip.your",
    "dhcp.option.hostname",
    "dhcp.option.vendor_class_id",
    "lldp.chassis.id",
    "lldp.chassis.id.mac",
    "lldp.port.id",
    "lldp.port.id.mac",
    "lldp.tlv.system.name",
    "lldp.tlv.system.desc",
    "lldp.tlv.enable_system_cap",
    "lldp.mgn.addr.ip4",
    "pn_dcp.service_id",
    "pn_dcp.service_type",
    "pn_dcp.suboption_device_nameofstation",
    "pn_dcp.suboption_ip_ip",
    "pn_dcp.suboption_vendor_id",
    "pn_dcp.suboption_device_id",
    "pn_dcp.suboption_device_devicevendorvalue",
]
Expected = tuple[int, str, str, str, dict[str, str]]
"""(time in ns, source, IP, MAC, attributes) of one sighting."""


def datasets_present() -> None:
    if (DATASETS / "PCAP_INVENTORY.tsv").exists():
        return
    message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def ours(capture: Path) -> tuple[list[Sighting], list[range]]:
    """The sensor's sightings of `capture`, and the frame numbers of each batch."""
    sensor = Sensor(identity=True)
    found: list[Sighting] = []
    batches = []
    for batch in read_capture(capture, batch_size=BATCH):
        sensor.process(batch)
        found += sightings(batch, decode_layers(batch), sensor.last_identity, SITE, SEGMENT)
        batches.append(range(batch.first_number, batch.first_number + len(batch)))
    return found, batches


def nanoseconds(epoch: str) -> int:
    return int(Decimal(epoch) * 1_000_000_000)


def first(cell: str) -> str:
    return cell.split(",")[0]


def host_ip(text: str) -> str:
    """tshark's address if it names one host, else "" (as `Sighting` requires)."""
    if not text:
        return ""
    address = ipaddress.ip_address(text)
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        return ""
    return str(address)


def station(mac: str) -> bool:
    return bool(mac) and not int(mac[:2], 16) & 1 and mac != "00:00:00:00:00:00"


def theirs(capture: Path, batches: list[range]) -> list[tuple[str, Expected]]:
    """tshark's view of the same sightings, each with its kind ("identity" or "flow"), in frame
    order (identity before flow within a frame)."""
    rows = [dict(zip(TSHARK_FIELDS, row, strict=True)) for row in fields(capture, TSHARK_FIELDS)]
    batch_of = {number: index for index, frames in enumerate(batches) for number in frames}
    seen: set[tuple[int, str, str]] = set()
    expected: list[tuple[str, Expected]] = []
    for row in rows:
        ts_ns = nanoseconds(row["frame.time_epoch"])
        identity = identity_of(row, ts_ns)
        if identity is not None:
            expected.append(("identity", identity))
        ip = host_ip(first(row["ip.src"]) or first(row["ipv6.src"]))
        pair = (batch_of[int(row["frame.number"])], row["eth.src"], ip)
        if ip and station(row["eth.src"]) and pair not in seen:
            seen.add(pair)
            expected.append(("flow", (ts_ns, "flow", ip, row["eth.src"], {})))
    return expected


def identity_of(row: dict[str, str], ts_ns: int) -> Expected | None:
    """The sighting a frame gives by the rules of `monitoring.sightings`, read from tshark."""
    if row["arp.opcode"] in ("1", "2") and host_ip(row["arp.src.proto_ipv4"]):
        return (ts_ns, "arp", row["arp.src.proto_ipv4"], row["arp.src.hw_mac"], {})
    if row["dhcp.option.dhcp"]:
        return dhcp_of(row, ts_ns)
    if row["lldp.port.id"] or row["lldp.port.id.mac"]:
        chassis = (
            row["lldp.chassis.id.mac"] or bytes.fromhex(row["lldp.chassis.id"].replace(":", "")).decode()
        )
        attributes = {
            "chassis_id": chassis,
            "port_id": row["lldp.port.id"] or row["lldp.port.id.mac"],
            "system_name": row["lldp.tlv.system.name"],
            "system_description": row["lldp.tlv.system.desc"],
            "enabled_capabilities": capability_names(int(row["lldp.tlv.enable_system_cap"] or "-1", 0)),
        }
        return (ts_ns, "lldp", host_ip(first(row["lldp.mgn.addr.ip4"])), row["eth.src"], attributes)
    if row["pn_dcp.service_id"]:
        return dcp_of(row, ts_ns)
    return None


def dhcp_of(row: dict[str, str], ts_ns: int) -> Expected | None:
    attributes = {"hostname": row["dhcp.option.hostname"], "vendor_class": row["dhcp.option.vendor_class_id"]}
    if row["dhcp.option.dhcp"] == "5" and row["udp.dstport"] == "68":
        return (ts_ns, "dhcp", host_ip(row["dhcp.ip.your"]), row["dhcp.hw.mac_addr"], attributes)
    if row["udp.srcport"] == "68" and any(attributes.values()):
        return (ts_ns, "dhcp", "", row["dhcp.hw.mac_addr"], attributes)
    return None


def dcp_of(row: dict[str, str], ts_ns: int) -> Expected | None:
    ip = host_ip(first(row["pn_dcp.suboption_ip_ip"]))
    if row["pn_dcp.service_type"] == "1" or row["pn_dcp.service_id"] == "6":
        attributes = {
            "station_name": row["pn_dcp.suboption_device_nameofstation"],
            "vendor_id": first(row["pn_dcp.suboption_vendor_id"]),
            "device_id": first(row["pn_dcp.suboption_device_id"]),
            "device_vendor": row["pn_dcp.suboption_device_devicevendorvalue"],
        }
        if not ip and not any(attributes.values()):
            return None
        return (ts_ns, "pn_dcp", ip, row["eth.src"], attributes)
    if row["pn_dcp.service_id"] == "4" and (ip or row["pn_dcp.suboption_device_nameofstation"]):
        attributes = {"station_name": row["pn_dcp.suboption_device_nameofstation"]}
        return (ts_ns, "pn_dcp", ip, row["eth.dst"], attributes)
    return None


def as_expected(sighting: Sighting) -> Expected:
    return (sighting.ts_ns, sighting.source, sighting.ip, sighting.mac, dict(sighting.attributes))


def without_blanks(expected: Expected) -> Expected:
    ts_ns, source, ip, mac, attributes = expected
    return (ts_ns, source, ip, mac, {name: value for name, value in attributes.items() if value.strip()})


def compare(capture: Path) -> tuple[list[Sighting], list[tuple[str, Expected]]]:
    found, batches = ours(capture)
    expected = theirs(capture, batches)
    mine = [as_expected(sighting) for sighting in found]
    # tshark does not decode LLDP's port description in a field of its own: left out of the match
    for item in mine:
        item[4].pop("port_description", None)
    assert mine == [without_blanks(item) for _, item in expected]
    return found, expected


def asset_with_mac(book: AssetBook, mac: str) -> Asset:
    (asset,) = [asset for asset in book.assets() if SegmentAddress(SEGMENT, mac) in asset.macs]
    return asset


def check_facts(found: list[Sighting], expected: list[tuple[str, Expected]]) -> int:
    """Feed `found` to a book; each device's named facts must be tshark's last stated values
    (stated: not a DCP Set, which the device's own later statements outrank). How many checked."""
    book = AssetBook()
    book.add_many(found)
    last: dict[str, dict[str, str]] = {}
    for _, (_, source, _, mac, attributes) in expected:
        if source == "pn_dcp" and set(attributes) == {"station_name"}:
            continue  # a Set request
        named = {name: value for name, value in attributes.items() if value.strip()}
        if named:
            last.setdefault(mac, {}).update(named)
    checked = 0
    for mac, facts in last.items():
        asset = asset_with_mac(book, mac)
        for name, value in facts.items():
            assert asset.facts[name].value == value, (mac, name)
            checked += 1
    return checked


@pytest.mark.parametrize("relative", sorted(CAPTURES), ids=lambda path: Path(path).name)
def test_sightings_equal_tsharks_fields_on_a_shared_capture(relative: str) -> None:
    datasets_present()
    found, expected = compare(DATASETS / relative)
    assert sum(1 for kind, _ in expected if kind == "identity") == CAPTURES[relative]
    assert any(kind == "flow" for kind, _ in expected) or "profinet" in relative
    check_facts(found, expected)


def test_the_assets_carry_tsharks_station_names_and_system_names() -> None:
    datasets_present()
    names: dict[str, str] = {}
    for relative in CAPTURES:
        found, _ = compare(DATASETS / relative)
        book = AssetBook()
        book.add_many(found)
        for asset in book.assets():
            for name in ("station_name", "system_name", "device_id", "vendor_id"):
                if name in asset.facts:
                    names[f"{Path(relative).name}:{name}"] = asset.facts[name].value
    assert names == {
        "ChangeIPUsingDCP.pcap:station_name": "X208-BORD",
        "ChangeIPUsingDCP.pcap:vendor_id": "0x002a",
        "ChangeIPUsingDCP.pcap:device_id": "0x0a01",
        "profinet-wireshark-bug.pcap:station_name": "%n%n%n ",
        "profinet-wireshark-bug.pcap:vendor_id": "0x002a",
        "profinet-wireshark-bug.pcap:device_id": "0x0101",
        "Profinet_Failed.pcap:system_name": "SCADA-PC-060839",
    }


def dhcp_frames() -> Iterator[Ether]:
    """A DHCP exchange with host names and vendor classes, and an ACK relayed to an agent."""
    plc, server = "00:1b:1b:01:02:03", "00:50:56:00:00:01"
    chaddr = bytes.fromhex(plc.replace(":", ""))
    for kind, source, destination, yiaddr, giaddr in (
        ("discover", ("0.0.0.0", 68), ("255.255.255.255", 67), "0.0.0.0", "0.0.0.0"),
        ("offer", ("10.0.0.1", 67), ("10.0.0.10", 68), "10.0.0.10", "0.0.0.0"),
        ("request", ("0.0.0.0", 68), ("255.255.255.255", 67), "0.0.0.0", "0.0.0.0"),
        ("ack", ("10.0.0.1", 67), ("10.0.0.10", 68), "10.0.0.10", "0.0.0.0"),
        ("ack", ("10.9.0.1", 67), ("10.0.0.1", 67), "10.0.0.77", "10.0.0.1"),
    ):
        options: list[object] = [("message-type", kind)]
        if kind != "offer":
            options += [
                ("hostname", "plc-1" if kind != "ack" else "plc-1.plant"),
                ("vendor_class_id", "Siemens"),
            ]
        yield (
            Ether(src=plc if source[1] == 68 else server, dst="ff:ff:ff:ff:ff:ff")
            / IP(src=source[0], dst=destination[0])
            / UDP(sport=source[1], dport=destination[1])
            / BOOTP(
                op=1 if source[1] == 68 else 2, xid=0x3903F326, chaddr=chaddr, yiaddr=yiaddr, giaddr=giaddr
            )
            / DHCP(options=[*options, "end"])
        )


def test_dhcp_sightings_and_host_names_equal_tsharks_on_a_scapy_capture(tmp_path: Path) -> None:
    capture = tmp_path / "dhcp.pcap"
    wrpcap(str(capture), list(dhcp_frames()))
    found, expected = compare(capture)
    assert [(s.source, s.ip, s.binding.value) for s in found if s.source == "dhcp"] == [
        ("dhcp", "", "none"),
        ("dhcp", "", "none"),
        ("dhcp", "10.0.0.10", "authoritative"),
    ]
    assert check_facts(found, expected) == 2
    book = AssetBook()
    book.add_many(found)
    asset = book.find(SITE, SEGMENT, "10.0.0.10")
    assert asset is not None
    assert asset.facts["hostname"].value == "plc-1.plant"  # the ACK's, the last stated
    assert book.find(SITE, SEGMENT, "10.0.0.77") is None  # relayed: the client is elsewhere
