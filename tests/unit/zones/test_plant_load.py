"""plant.yaml: the example loads; invalid files fail with file, line, column and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from plantwarden.sim.plant import default_plant
from plantwarden.zones.plant.load import PlantFileError, load_plant, load_plant_bytes
from plantwarden.zones.plant.model import Register, SecurityLevel
from plantwarden.zones.plant.schema import PLANT_SCHEMA, schema_text
from plantwarden.zones.plant.source import read_source

ROOT = Path(__file__).resolve().parents[3]
RIVERSIDE = ROOT / "examples" / "riverside" / "plant.yaml"

MINIMAL = """\
version: 1
sites:
  - id: plant-a
    zones:
      - id: cell-1
        purdue_level: 1
        subnets: [10.1.1.0/24]
        security_level: 2
      - id: scada
        purdue_level: 2
        subnets: [10.1.2.0/24]
        security_level: [2, 2, 2, 1, 2, 1, 2]
    conduits:
      - id: scada-cell-1
        zones: [scada, cell-1]
        channels:
          - protocol: modbus
            from: scada
            to: cell-1
            operations: [read, write]
"""


def problems(text: str, file: str = "plant.yaml") -> list[tuple[int, int, str]]:
    with pytest.raises(PlantFileError) as caught:
        load_plant_bytes(text.encode(), file)
    return [(p.line, p.column, p.message) for p in caught.value.problems]


def test_the_minimal_file_loads_with_defaults() -> None:
    model = load_plant_bytes(MINIMAL.encode())
    site = model.site("plant-a")
    assert site.timezone == "UTC" and site.name == "plant-a"
    assert site.zone("scada").security_level == SecurityLevel((2, 2, 2, 1, 2, 1, 2))
    assert site.zone("cell-1").security_level == SecurityLevel.uniform(2)
    conduit = site.conduit("scada-cell-1")
    channel = conduit.channels[0]
    assert (channel.id, channel.transport, channel.ports) == ("modbus", "tcp", (502,))
    assert (channel.initiators, channel.responders) == (("scada",), ("cell-1",))
    assert channel.operations == {"read", "write"}
    # a conduit without a level takes the highest of its zones', requirement by requirement
    assert conduit.security_level == SecurityLevel((2, 2, 2, 2, 2, 2, 2))
    assert len(model.version) == 64


def test_the_version_is_the_hash_of_the_bytes() -> None:
    first = load_plant_bytes(MINIMAL.encode()).version
    assert load_plant_bytes(MINIMAL.encode()).version == first
    assert load_plant_bytes((MINIMAL + "# a comment\n").encode()).version != first


def test_the_riverside_example_matches_the_simulated_plant() -> None:
    site = load_plant(RIVERSIDE).site("riverside")
    plant = default_plant()
    for zone in plant.zones:
        assert [str(s) for s in site.zone(zone.name).subnets] == [zone.subnet]
        assert site.zone(zone.name).purdue_level == zone.purdue_level
    for host in plant.hosts:
        asset = site.asset(host.name)
        assert [str(a) for a in asset.addresses] == [host.address]
        assert asset.zone == host.zone
    for plc in plant.plcs:
        declared = {r.name: r for r in site.asset(plc.name).registers}
        assert set(declared) == {r.name for r in plc.registers}
        for register in plc.registers:
            mine = declared[register.name]
            assert (mine.address, mine.kind, mine.type, mine.unit, mine.scale) == (
                register.address,
                register.kind,
                register.type,
                register.unit,
                register.scale,
            )
            assert mine.writers == register.writable_by
            if register.safe_min is not None:
                assert mine.safe_range == (register.safe_min, register.safe_max)


def test_the_schema_file_for_editors_is_current_and_valid() -> None:
    path = ROOT / "docs" / "plant.schema.json"
    assert path.read_text() == schema_text(), "run `plantwarden plant schema > docs/plant.schema.json`"
    jsonschema.Draft202012Validator.check_schema(PLANT_SCHEMA)
    data = read_source(RIVERSIDE.read_text(), str(RIVERSIDE)).data
    jsonschema.Draft202012Validator(json.loads(path.read_text())).validate(data)


@pytest.mark.parametrize(
    ("change", "line", "column", "reason"),
    [
        (
            (
                "        security_level: 2\n      - id: scada",
                "        security_level: 2\n        colour: red\n      - id: scada",
            ),
            9,
            9,
            "unknown key 'colour'",
        ),
        (
            ("subnets: [10.1.2.0/24]", "subnets: [10.1.1.128/25]"),
            11,
            19,
            "overlaps 10.1.1.0/24 of zone 'cell-1'",
        ),
        (("subnets: [10.1.2.0/24]", "subnets: [10.1.2.1/24]"), 11, 19, "host bits are set"),
        (("to: cell-1", "to: cell-9"), 19, 17, "zone 'cell-9' is not one of the zones of conduit"),
        (("zones: [scada, cell-1]", "zones: [scada, cell-7]"), 15, 24, "unknown zone 'cell-7'"),
        (
            ("purdue_level: 1", "purdue_level: 7"),
            6,
            23,
            "7 is not allowed here; use one of: 0, 1, 2, 3, 3.5, 4, 5",
        ),
        (("security_level: 2", "security_level: 5"), 8, 25, "not a security level"),
        (("[2, 2, 2, 1, 2, 1, 2]", "[2, 2, 2]"), 12, 25, "not a security level"),
        (("protocol: modbus", "protocol: modbuss"), 17, 23, "'modbuss' is not allowed here"),
        (("operations: [read, write]", "operations: [read, wipe]"), 20, 32, "'wipe' is not allowed here"),
        (("  - id: plant-a", "  - id: Plant A"), 3, 9, "use 1-63 lower-case letters"),
        (("version: 1", "version: 2"), 1, 10, "reads version 1"),
    ],
)
def test_an_invalid_file_names_line_column_and_reason(
    change: tuple[str, str], line: int, column: int, reason: str
) -> None:
    old, new = change
    assert old in MINIMAL
    found = problems(MINIMAL.replace(old, new, 1))
    assert any(reason in message for _, _, message in found), found
    assert (line, column) in [(ln, col) for ln, col, message in found if reason in message], found


def test_max_change_is_for_holding_registers_only() -> None:
    def with_register(kind: str, kind_type: str) -> str:
        return MINIMAL + (
            "    assets:\n"
            f"      - {{id: plc-1, address: 10.1.1.10, registers: [{{address: 0, name: sp, kind: {kind},"
            f" type: {kind_type}, max_change: 0.5}}]}}\n"
        )

    [register] = (
        load_plant_bytes(with_register("holding", "uint16").encode()).site("plant-a").assets[0].registers
    )
    assert register.max_change == 0.5
    for kind, kind_type in (("input", "uint16"), ("coil", "bool")):
        messages = [message for _, _, message in problems(with_register(kind, kind_type))]
        assert messages == [f"a {kind} has no rate of change: max_change is for holding registers"]


def test_a_site_name_longer_than_the_store_keeps_is_placed() -> None:
    text = MINIMAL.replace("  - id: plant-a\n", "  - id: plant-a\n    name: " + "N" * 201 + "\n", 1)
    [(line, _, message)] = problems(text)
    assert (line, message) == (4, "has 201 characters; at most 200")


def test_every_missing_top_key_is_named_once() -> None:
    assert [message for _, _, message in problems("foo: 1\n")] == [
        "unknown key 'foo'; expected one of: sites, version",
        "missing key 'version'",
        "missing key 'sites'",
    ]


def test_a_register_marked_a_counter_or_not_is_numeric() -> None:
    def with_register(kind: str, kind_type: str, counter: str) -> str:
        return MINIMAL + (
            "    assets:\n"
            f"      - {{id: plc-1, address: 10.1.1.10, registers: [{{address: 0, name: made, kind: {kind},"
            f" type: {kind_type}{counter}}}]}}\n"
        )

    def register(text: str) -> Register:
        return load_plant_bytes(text.encode()).site("plant-a").assets[0].registers[0]

    assert register(with_register("input", "uint32", ", counter: true")).counter is True
    assert register(with_register("input", "float32", ", counter: false")).counter is False
    assert register(with_register("input", "uint16", "")).counter is None
    assert register(with_register("coil", "bool", ", counter: false")).counter is False
    [(_, _, message)] = problems(with_register("discrete", "bool", ", counter: true"))
    assert message == "a bool counts nothing: counter is for numeric registers"
    [(_, _, message)] = problems(with_register("input", "uint16", ", counter: yes"))
    assert message == "'yes' is not a boolean"


def test_an_assets_rate_limits_name_known_roles_with_positive_rates() -> None:
    def with_limits(limits: str) -> str:
        return MINIMAL + f"    assets:\n      - {{id: plc-1, address: 10.1.1.10, rate_limits: {limits}}}\n"

    [plc] = load_plant_bytes(with_limits("{operator: 20, engineer: 2.5}").encode()).site("plant-a").assets
    assert plc.rate_limits == (("operator", 20.0), ("engineer", 2.5))
    assert any("unknown role 'janitor'" in message for _, _, message in problems(with_limits("{janitor: 5}")))
    assert problems(with_limits("{operator: 0}")) != []


def test_the_error_text_starts_with_file_line_and_column() -> None:
    with pytest.raises(PlantFileError) as caught:
        load_plant_bytes(MINIMAL.replace("purdue_level: 1", "purdue_level: 9").encode(), "site/plant.yaml")
    assert str(caught.value).startswith("site/plant.yaml:6:23: sites[0].zones[0].purdue_level: 9 is not")


def test_every_problem_is_reported_at_once() -> None:
    text = MINIMAL.replace("to: cell-1", "to: cell-9").replace(
        "subnets: [10.1.2.0/24]", "subnets: [10.1.1.0/25]"
    )
    messages = [message for _, _, message in problems(text)]
    assert len(messages) == 2, messages


def test_yaml_errors_and_duplicate_keys_are_placed() -> None:
    [(line, column, message)] = problems("version: 1\nsites: [\n")
    assert (line, column) == (3, 1) and message.startswith("not valid YAML")
    duplicated = MINIMAL.replace(
        "        security_level: 2\n", "        security_level: 2\n        security_level: 3\n", 1
    )
    assert problems(duplicated) == [(9, 9, "key 'security_level' is written twice (first on line 8)")]
    assert problems("") == [(1, 1, "the file is empty: expected version: 1 and sites:")]
    assert problems("- a\n- b\n")[0][2].startswith("the top of the file must be a mapping")


def test_times_and_words_are_not_yaml_1_1_numbers_or_booleans() -> None:
    text = MINIMAL.replace(
        "    zones:\n", "    windows:\n      w: {days: [sat], start: 06:00, end: 10:30}\n    zones:\n", 1
    ).replace("        channels:\n", "        name: no\n        channels:\n", 1)
    site = load_plant_bytes(text.encode()).site("plant-a")
    assert (site.windows["w"].start, site.windows["w"].end) == (360, 630)
    assert site.conduit("scada-cell-1").name == "no"


def test_references_between_sections_are_checked() -> None:
    text = MINIMAL + (
        "    assets:\n"
        "      - {id: plc-1, address: 10.1.1.10, registers: [{address: 0, name: sp, kind: input,"
        " type: uint16, writers: [operator]}]}\n"
        "      - {id: plc-2, address: 10.1.1.10}\n"
        "      - {id: stray, address: 192.0.2.1}\n"
        "    rights:\n"
        "      - {role: operator, zones: [cell-1], operations: [modbus.write, 'write'], assets: [plc-9]}\n"
        "    bindings:\n"
        "      - {address: 10.1.2.5, role: janitor}\n"
    )
    messages = [message for _, _, message in problems(text)]
    expected = [
        "input registers cannot be written",
        "address 10.1.1.10 is also the address of asset 'plc-1'",
        "asset 'stray' is in no zone's subnet",
        "'write' is not a plant operation",
        "unknown asset 'plc-9'",
        "unknown role 'janitor'",
    ]
    for text_expected in expected:
        assert any(text_expected in message for message in messages), (text_expected, messages)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlantFileError, match="cannot read the file"):
        load_plant(tmp_path / "nope.yaml")


def test_a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte(tmp_path: Path) -> None:
    binary = tmp_path / "plant.yaml"
    binary.write_bytes(b"version: 1\nsites:\n  - id: k\xc3\xb6ln-\xff\xfe\n")
    with pytest.raises(PlantFileError) as caught:
        load_plant(binary)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.column) == (str(binary), 3, 14)  # \xc3\xb6 is one: ö
    assert problem.message == "not UTF-8 text (line 3, byte 0xff at offset 32)"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: 1\nx: &a [*a]\n", "anchors and aliases"),
        ("version: 1\nsites:\n  - &s {id: a}\n  - *s\n", "anchors and aliases"),
        ("version: 1\nsites: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("version: 1\nsites: " + "[" * 40 + "]" * 40 + "\n", "nested too deeply"),
    ],
)
def test_aliases_and_deep_nesting_are_refused_not_expanded(text: str, reason: str) -> None:
    assert any(reason in message for _, _, message in problems(text))


def test_a_billion_laughs_is_refused_at_once() -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    [(line, _, message)] = problems("\n".join(lines) + "\n")
    assert line == 2 and "anchors and aliases" in message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("security_level: 2\n", "security_level: 2.0\n"),
        ("operations: [read, write]", "operations: [read, write]\n            ports: [502.0]"),
        ("    conduits:\n", "    assets: [{id: plc-1, address: 10.1.1.5, unit_id: 1.0}]\n    conduits:\n"),
    ],
)
def test_whole_numbers_written_as_decimals_are_refused(old: str, new: str) -> None:
    found = problems(MINIMAL.replace(old, new, 1))
    assert found and all("Traceback" not in message for _, _, message in found), found


def test_register_ranges_take_ascii_digits_only() -> None:
    text = MINIMAL + (
        "    rights:\n      - {role: operator, zones: [cell-1], operations: [modbus.read],"
        " registers: ['\u00b2', '1-x']}\n"
    )
    messages = [message for _, _, message in problems(text)]
    assert sum("is not an address or a range" in m for m in messages) == 2, messages
