"""The plant the console benchmark fills the store with: two sites of five zones each, their
conduits (as plant.yaml), and the hosts of every zone with their role and addresses.

Per site: enterprise IT (level 4), a DMZ (level 3), supervisory control (level 2: HMIs,
historians, engineering workstations) and two control cells (level 1: the PLCs). Each zone is a
/20 of its site's 10.S.0.0/16 on the segment `default`. Conduits: enterprise-DMZ, DMZ-supervisory
and supervisory-cells; the last one's channels let the supervisory hosts poll and write the PLCs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SITES = ("plant-a", "plant-b")
SEGMENT = "default"
ZONES = (  # id, name, Purdue level, share of the site's hosts, role of its hosts
    ("enterprise", "Enterprise IT", 4, 0.15, "it"),
    ("dmz", "Plant DMZ", 3, 0.05, "it"),
    ("supervisory", "Supervisory control", 2, 0.15, "client"),
    ("cell-1", "Control cell 1", 1, 0.325, "plc"),
    ("cell-2", "Control cell 2", 1, 0.325, "plc"),
)
VENDORS = (  # vendor, product, firmware, protocol, TCP port
    ("Schneider Electric", "Modicon M340", "3.20", 1, 502),
    ("Siemens", "S7-1500", "2.9.4", 2, 102),
    ("Rockwell Automation", "ControlLogix 5580", "33.011", 4, 44818),
    ("Wago", "PFC200", "03.10.08", 1, 502),
)


@dataclass(frozen=True)
class Host:
    """One device of the plant: where it is and how it is reached."""

    site: str
    zone: str
    kind: str  # it, client (HMI, historian, engineering workstation) or plc
    ip: str
    mac: str
    vendor: int  # index into VENDORS (PLCs)


def subnet(site: int, zone: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{site + 1}.{zone * 16}.0/20")


def hosts(count: int) -> list[Host]:
    """`count` hosts spread over the sites and zones by the zones' shares."""
    found: list[Host] = []
    for s, site in enumerate(SITES):
        per_site = count // len(SITES) + (1 if s < count % len(SITES) else 0)
        sizes = [int(per_site * share) for *_, share, _ in ZONES]
        sizes[-1] += per_site - sum(sizes)
        for z, ((zone, _, _, _, kind), size) in enumerate(zip(ZONES, sizes, strict=True)):
            first = int(subnet(s, z).network_address) + 10
            for n in range(size):
                number = len(found) + 1
                mac = f"00:1d:9c:{number >> 16 & 0xFF:02x}:{number >> 8 & 0xFF:02x}:{number & 0xFF:02x}"
                ip = str(ipaddress.IPv4Address(first + n))
                found.append(Host(site, zone, kind, ip, mac, number % len(VENDORS)))
    return found


def plant_yaml(declared: list[Host]) -> str:
    """The plant model of both sites, with `declared` hosts listed as assets of their zone."""
    lines = ["version: 1", "sites:"]
    for s, site in enumerate(SITES):
        lines += [f"  - id: {site}", f"    name: Bench plant {site[-1].upper()}", "    timezone: UTC"]
        lines += ["    windows:", '      weekend: {days: [sat, sun], start: "06:00", end: "18:00"}']
        lines.append("    zones:")
        for z, (zone, name, level, _, _) in enumerate(ZONES):
            lines += [f"      - id: {zone}", f"        name: {name}", f"        purdue_level: {level}"]
            lines += [f"        subnets: [{subnet(s, z)}]", f"        security_level: {min(3, 5 - level)}"]
        lines += _conduits()
        mine = [h for h in declared if h.site == site]
        lines.append("    assets:" if mine else "    assets: []")
        for number, host in enumerate(mine):
            name = f"{host.kind}-{number}"
            lines.append(f"      - {{id: {name}, name: {name}, address: {host.ip}}}")
    return "\n".join(lines) + "\n"


def _conduits() -> list[str]:
    return """    conduits:
      - id: enterprise-dmz
        name: Enterprise to the DMZ
        zones: [enterprise, dmz]
        security_level: 1
        channels:
          - {protocol: https, from: enterprise, to: dmz}
      - id: dmz-supervisory
        name: DMZ to supervisory control (historian replication)
        zones: [dmz, supervisory]
        security_level: 2
        channels:
          - {protocol: https, from: dmz, to: supervisory}
      - id: supervisory-cells
        name: Supervisory control to the cells
        zones: [supervisory, cell-1, cell-2]
        security_level: 2
        channels:
          - {id: modbus-polling, protocol: modbus, from: supervisory, to: [cell-1, cell-2],
             operations: [read, write]}
          - {id: s7-polling, protocol: s7comm, from: supervisory, to: [cell-1, cell-2],
             operations: [read, write]}
          - {id: cip-polling, protocol: enip, from: supervisory, to: [cell-1, cell-2],
             operations: [read, write]}
          - {id: engineering, protocol: modbus, from: supervisory, to: [cell-1, cell-2],
             operations: [program, control, diagnostic, identify], maintenance: [weekend]}
""".splitlines()
