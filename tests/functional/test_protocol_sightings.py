"""Device identity from the industrial protocols, held to tshark and to the simulated plant.

For each shared capture that carries identity answers (CIP ListIdentity, Modbus 43/14, S7 SZL,
BACnet I-Am and device ReadProperty ACKs), the sensor's sightings are reduced to (source, IP,
attribute, value) facts and compared, both ways, with the same facts read from tshark's
dissection of the same packets (PDML: its field values and, where tshark names a value without
a field, its display text). Then the generated plant: every Read Device Identification answer
of a PLC gives a sighting carrying the simulator's vendor, product and revision.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwarden.capture.pcap.reader import read_capture
from plantwarden.inventory import Binding, Sighting
from plantwarden.monitoring.protocol_sightings import ProtocolSightings
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from plantwarden.sim.behaviour import PRODUCT, REVISION, VENDOR
from plantwarden.sim.plant import default_plant
from plantwarden.sim.traffic.generator import generate
from tests.tshark_support import tshark

DATASETS = (
    Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets")) / "pcaps"
)
SITE, SEGMENT = "plant", "cell"
BATCH = 64
"""Small batches, so that answers fall on many batch boundaries."""

Fact = tuple[str, str, str, str]
"""(source, IP, attribute, value)."""


def capture(relative: str) -> Path:
    path = DATASETS / relative
    if not path.exists():
        pytest.skip(
            f"shared capture {relative} is absent (datasets not at {DATASETS.parent}; set PW_DATASETS)"
        )
    return path


def ours(path: Path) -> list[Sighting]:
    """The sensor's identity sightings of a capture."""
    sensor = Sensor(protocols=tuple(PROTOCOLS.values()))
    identities = ProtocolSightings(SITE, SEGMENT)
    found: list[Sighting] = []
    for batch in read_capture(path, batch_size=BATCH):
        modbus = sensor.process(batch)
        assert sensor.last_layers is not None
        found += identities.process(batch, sensor.last_layers, modbus, sensor.last_protocols)
    return found


def facts(sightings: list[Sighting], names: set[str]) -> set[Fact]:
    return {
        (sighting.source, sighting.ip, name, value)
        for sighting in sightings
        for name, value in sighting.attributes.items()
        if name in names
    }


def packets(path: Path, display_filter: str) -> Iterator[ElementTree.Element]:
    """tshark's PDML dissection of the packets `display_filter` keeps."""
    command = [tshark(), "-r", str(path), "-Y", display_filter, "-T", "pdml"]
    output = subprocess.run(command, capture_output=True, check=True, timeout=120).stdout
    # tshark's own output for a local capture, not data from elsewhere
    yield from ElementTree.fromstring(output).iter("packet")  # noqa: S314


def shown(packet: ElementTree.Element, name: str) -> list[str]:
    return [field.get("show", "") for field in packet.iter("field") if field.get("name") == name]


def source_ip(packet: ElementTree.Element) -> str:
    return shown(packet, "ip.src")[0]


def clean(text: str) -> str:
    """tshark's text of a padded string, as the sightings keep it: trailing spaces stripped."""
    return text.rstrip(" ")


# CIP identity: ListIdentity replies, Get_Attributes_All replies of the Identity object ------

LIST_IDENTITY = {
    "vendor": "enip.lir.vendor",
    "device_type": "enip.lir.devtype",
    "product_code": "enip.lir.prodcode",
    "serial": "enip.lir.serial",
    "model": "enip.lir.name",
}
IDENTITY_OBJECT = {
    "vendor": "cip.id.vendor_id",
    "device_type": "cip.id.device_type",
    "product_code": "cip.id.product_code",
    "serial": "cip.id.serial_number",
    "model": "cip.id.product_name",
}


def showname(packet: ElementTree.Element, name: str) -> str:
    return next(field.get("showname", "") for field in packet.iter("field") if field.get("name") == name)


@pytest.mark.parametrize(
    "relative",
    [
        "cisagov-icsnpp/enip/enip_cip_example.pcap",
        "iti-ics-security-tools/enip-cip/enip_test.pcap",
        "iti-ics-security-tools/enip-cip/quickdraw/EIP-RebootorRestart.pcap",
        "iti-ics-security-tools/enip-cip/quickdraw/EIP-SoftwareUpload.pcap",
    ],
)
def test_cip_identity_equals_tshark(relative: str) -> None:
    path = capture(relative)
    theirs = cip_theirs(path)
    found = ours(path)
    assert theirs, "tshark found no CIP identity"
    assert facts(found, {name for _, _, name, _ in theirs}) == theirs
    assert {sighting.binding for sighting in found} == {Binding.NONE}


def cip_theirs(path: Path) -> set[Fact]:
    """tshark's identity fields; the revision written "major.minor" with two minor digits, as
    tshark writes a ListIdentity revision (it shows the Identity object's two numbers apart), and
    the device type in decimal (tshark writes the Identity object's in hexadecimal)."""
    theirs: set[Fact] = set()
    for packet in packets(path, "enip.lir.vendor || cip.id.serial_number"):
        listed = bool(shown(packet, "enip.lir.vendor"))
        names = LIST_IDENTITY if listed else IDENTITY_OBJECT
        vendor = re.fullmatch(r"Vendor ID: (.*) \((0x[0-9a-f]{4})\)", showname(packet, names["vendor"]))
        assert vendor is not None
        if listed:
            firmware = showname(packet, "enip.lir.revision").removeprefix("Revision: ")
        else:
            major, minor = shown(packet, "cip.id.major_rev")[0], shown(packet, "cip.id.minor_rev")[0]
            firmware = f"{major}.{int(minor):02d}"
        values = {
            "vendor": vendor.group(1),
            "vendor_id": vendor.group(2),
            "firmware": firmware,
            # tshark shows the Identity object's device type in hexadecimal, ListIdentity's in decimal
            "device_type": str(int(shown(packet, names["device_type"])[0], 0)),
            **{name: clean(shown(packet, names[name])[0]) for name in ("product_code", "serial")},
            "model": clean(shown(packet, names["model"])[0]),
        }
        theirs |= {("cip_identity", source_ip(packet), name, value) for name, value in values.items()}
    return theirs


# Modbus 43/14 ------------------------------------------------------------------------------

MODBUS_OBJECTS = {
    0: "vendor",
    1: "product_code",
    2: "firmware",
    3: "vendor_url",
    4: "product_name",
    5: "model",
}


def modbus_answers(path: Path) -> list[set[Fact]]:
    """tshark's 43/14 answers with objects: the facts of each."""
    answers = []
    for packet in packets(path, "modbus.func_code == 43 && modbus.object_str_value"):
        ip, answer = source_ip(packet), set()
        ids, values = shown(packet, "modbus.object_id"), shown(packet, "modbus.object_str_value")
        for object_id, value in zip(ids, values, strict=True):
            name = MODBUS_OBJECTS.get(int(object_id, 0))
            if name is not None and clean(value):
                answer.add(("modbus_43_14", ip, name, clean(value)))
        answers.append(answer)
    return answers


def modbus_theirs(path: Path) -> set[Fact]:
    return set().union(*modbus_answers(path))


def test_modbus_device_identification_equals_tshark() -> None:
    path = capture("cisagov-icsnpp/modbus/modbus_example.pcap")
    theirs = modbus_theirs(path)
    assert theirs, "tshark found no 43/14 answer with objects"
    assert facts(ours(path), set(MODBUS_OBJECTS.values())) == theirs


# S7 SZL ------------------------------------------------------------------------------------


S7_NAMES = {"model", "firmware", "serial", "product_name", "vendor_id", "plc_mode"}


def test_s7_szl_identity_equals_tshark() -> None:
    path = capture("cisagov-icsnpp/s7comm/s7ident.pcap")
    theirs = s7_theirs(path)
    assert {name for _, _, name, _ in theirs} == S7_NAMES, "the capture lost an identity answer"
    found = ours(path)
    assert facts(found, S7_NAMES) == theirs
    assert ("s7_szl", "172.17.0.2", "vendor", "Siemens") in facts(found, {"vendor"})


def s7_theirs(path: Path) -> set[Fact]:
    """tshark's SZL identity fields: module identification (order number, firmware), component
    identification (serial, CPU type name, manufacturer), the mode of a mode transition."""
    theirs: set[Fact] = set()
    answers = "s7comm.param.userdata.type == 8 && s7comm.data.userdata.szl_id"
    for packet in packets(path, answers):
        ip = source_ip(packet)
        indexes = [int(value, 0) for value in shown(packet, "s7comm.szl.xy11.0001.index")]
        if indexes:  # module identification: order number of 0x0001, firmware of 0x0007
            records = zip(
                indexes,
                shown(packet, "s7comm.szl.xy11.0001.anz"),
                shown(packet, "s7comm.szl.xy11.0001.ausbg"),
                shown(packet, "s7comm.szl.xy11.0001.ausbe"),
                strict=True,
            )
            for index, order_number, ausbg, ausbe in records:
                if index == 0x0001:
                    theirs.add(("s7_szl", ip, "model", clean(order_number)))
                if index == 0x0007 and int(ausbg) >> 8 == ord("V"):
                    version = f"V{int(ausbg) & 0xFF}.{int(ausbe) >> 8}.{int(ausbe) & 0xFF}"
                    theirs.add(("s7_szl", ip, "firmware", version))
        for name, suffix in (("serial", "0005.serialn"), ("product_name", "0007.cputypname")):
            theirs |= {
                ("s7_szl", ip, name, clean(value)) for value in shown(packet, f"s7comm.szl.001c.{suffix}")
            }
        theirs |= {
            ("s7_szl", ip, "vendor_id", f"0x{int(value, 0):04x}")
            for value in shown(packet, "s7comm.szl.001c.0009.manufacturer_id")
        }
        for field in packet.iter("field"):
            if field.get("name") == "s7comm.szl.0424.0000.bzu_id.req":
                mode = re.search(r"Requested mode: (.*) \(0x[0-9a-f]+\)$", field.get("showname", ""))
                assert mode is not None
                theirs.add(("s7_szl", ip, "plc_mode", mode.group(1)))
    return theirs


# BACnet ------------------------------------------------------------------------------------

BACNET_PROPERTIES = {
    "vendor-name": "vendor",
    "model-name": "model",
    "firmware-revision": "firmware",
    "application-software-version": "application_version",
}
PROPERTY_VALUE = re.compile(r"([a-z-]+): UTF-8 '(.*)'")


BACNET_NAMES = {"device_instance", "vendor_id", *BACNET_PROPERTIES.values()}


def test_bacnet_identity_equals_tshark() -> None:
    path = capture("cisagov-icsnpp/bacnet/bacnet_example.pcap")
    theirs = bacnet_theirs(path)
    assert {source for source, *_ in theirs} == {"bacnet_i_am", "bacnet_property"}
    assert facts(ours(path), BACNET_NAMES) == theirs


def bacnet_theirs(path: Path) -> set[Fact]:
    """tshark's I-Am fields and the device object's identity properties in ReadProperty ACKs
    (of devices on this network: routed ones carry a source network)."""
    theirs: set[Fact] = set()
    for packet in packets(path, "bacapp.unconfirmed_service == 0 && !bacnet.snet"):
        ip, instance = source_ip(packet), shown(packet, "bacapp.instance_number")[0]
        vendor = shown(packet, "bacapp.vendor_identifier")[0]
        theirs |= {("bacnet_i_am", ip, "device_instance", instance), ("bacnet_i_am", ip, "vendor_id", vendor)}
    acks = "bacapp.type == 3 && bacapp.confirmed_service == 12 && bacapp.objectType == 8 && !bacnet.snet"
    for packet in packets(path, acks):
        ip = source_ip(packet)
        for field in packet.iter("field"):
            value = PROPERTY_VALUE.fullmatch(field.get("show", ""))
            if field.get("name") == "" and value and value.group(1) in BACNET_PROPERTIES:
                name = BACNET_PROPERTIES[value.group(1)]
                theirs.add(("bacnet_property", ip, name, clean(value.group(2))))
                instance = shown(packet, "bacapp.instance_number")[0]
                theirs.add(("bacnet_property", ip, "device_instance", instance))
    return theirs


# The generated plant -----------------------------------------------------------------------


def test_generated_plant_identity(tmp_path: Path) -> None:
    """Every 43/14 answer of a simulated PLC gives a sighting with the simulator's identity, and
    as many as tshark counts."""
    generated = generate(tmp_path / "plant.pcap", seed=11, packets=20_000)
    found = [sighting for sighting in ours(generated.capture) if sighting.source == "modbus_43_14"]
    answers = modbus_answers(generated.capture)
    assert found, "the engineering workstation sent no 43/14 in 20,000 packets"
    assert len(found) == len(answers)
    plcs = {plc.host.address: plc for plc in default_plant().plcs}
    for sighting in found:
        plc = plcs[sighting.ip]
        code, name = PRODUCT[plc.process]
        assert sighting.attributes["vendor"] == VENDOR
        assert sighting.attributes["firmware"] == REVISION
        assert sighting.attributes["product_code"] == code
        assert sighting.attributes["product_name"] == name
        assert sighting.attributes["model"] == f"{code}-{plc.unit_id:03d}"
        assert sighting.attributes["application_name"] == plc.host.name
    assert facts(found, set(MODBUS_OBJECTS.values())) == set().union(*answers)
