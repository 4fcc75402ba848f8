"""`gateway run` end to end: the plant file, the data directory's CA and store, both listeners,
a PLC given with --upstream, records written where `records` finds them."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from pymodbus.client import ModbusTcpClient, ModbusTlsClient

from plantwarden.core.errors import ConfigurationError, InvalidInput
from plantwarden.core.runtime import Runtime
from plantwarden.gateway.cli import gateway_group, writer_name
from plantwarden.gateway.records import read_gateway_records
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.service_certs import Purpose, ServiceIdentity, ensure_service_identity
from tests.conftest import make_settings
from tests.helpers import free_port, taken_port, wait_for
from tests.unit.gateway.peers import Pki, RecordingPlc
from tests.unit.gateway.support import PLANT
from tests.unit.pki.support import PASSPHRASE


class Provider:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


def test_gateway_run_serves_both_listeners_and_records(data_dir: Path, tmp_path: Path) -> None:
    runtime = Runtime(make_settings(data_dir), source="gateway")
    ca = CertificateAuthority.initialise(pki_directory(runtime.core.data_path), PASSPHRASE)
    plant_file = tmp_path / "plant.yaml"
    plant_file.write_text(PLANT)
    loop = asyncio.new_event_loop()
    plc = RecordingPlc()
    loop.run_until_complete(plc.start())
    plc_thread = threading.Thread(target=loop.run_forever, daemon=True)
    plc_thread.start()
    plain, secure = free_port(), free_port()
    args = [
        "run",
        "--plant",
        str(plant_file),
        "--site",
        "plant-a",
        "--listen",
        f"127.0.0.1:{plain}",
        "--mbaps",
        f"127.0.0.1:{secure}",
        "--upstream",
        f"plc-1=127.0.0.1:{plc.port}",
        # the event loop of a gateway with a core of its own: it polls before it sleeps
        "--busy-poll",
        "200",
        "--plc-connections",
        "2",
        "--duration",
        "4",
    ]
    outcome: list[Result] = []
    runner = threading.Thread(
        target=lambda: outcome.append(CliRunner().invoke(gateway_group, args, obj=Provider(runtime))),
        daemon=True,
    )
    runner.start()
    try:
        client: Any = ModbusTcpClient("127.0.0.1", port=plain, timeout=2, retries=0)  # untyped
        wait_for(lambda: client.connect() or None, timeout=10, what="the plain listener")
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()
        assert client.write_register(0, 800, device_id=1).exception_code == 1
        client.close()
        pki = Pki(tmp_path, runtime.ready_store(), ca, _gateway_identity(ca))
        files = pki.client("eng-9", "engineer")
        tls: Any = ModbusTlsClient(
            "127.0.0.1",
            port=secure,
            sslctx=pki.client_context(files, check_hostname=False),
            timeout=2,
            retries=0,
        )
        assert tls.connect()
        assert not tls.write_register(0, 800, device_id=1).isError()
        tls.close()
        runner.join(15)
    finally:
        asyncio.run_coroutine_threadsafe(plc.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        plc_thread.join(5)
        loop.close()
    [result] = outcome
    assert result.exit_code == 0, result.output
    assert "3 requests recorded" in result.output
    rows = [r for b in read_gateway_records(runtime.records(), 0, time.time_ns() + 10**9) for r in b.rows()]
    assert sorted((r["subject"], r["function"], r["allowed"]) for r in rows) == [
        ("address 127.0.0.1", 3, 1),
        ("address 127.0.0.1", 6, 0),
        ("cert_role engineer", 6, 1),
    ]
    assert writer_name("plant-a") == "gateway-plant-a"  # the writer the records came from
    assert [m.function_code for m in plc.messages()] == [3, 6]
    runtime.close()


def _gateway_identity(ca: CertificateAuthority) -> ServiceIdentity:
    return ensure_service_identity(ca, "gateway-plant-a", Purpose.SERVER, hosts=("127.0.0.1",))


def test_gateway_run_refuses_a_busy_poll_beyond_ten_milliseconds(data_dir: Path, tmp_path: Path) -> None:
    runtime = Runtime(make_settings(data_dir), source="gateway")
    plant_file = tmp_path / "plant.yaml"
    plant_file.write_text(PLANT)
    args = ["run", "--plant", str(plant_file), "--site", "plant-a", "--listen", "127.0.0.1:0"]
    for option, value in (("--busy-poll", "10001"), ("--plc-connections", "0")):
        result = CliRunner().invoke(gateway_group, [*args, option, value], obj=Provider(runtime))
        assert result.exit_code == 2, result.output
        assert f"Invalid value for '{option}'" in result.output
    runtime.close()


def test_gateway_run_refuses_limits_that_would_limit_nothing(data_dir: Path, tmp_path: Path) -> None:
    """A misspelt safety limit left the register (or role) unlimited, and the gateway ran."""
    runtime = Runtime(make_settings(data_dir), source="gateway")
    (tmp_path / "plant.yaml").write_text(PLANT)
    args = ["run", "--plant", str(tmp_path / "plant.yaml"), "--site", "plant-a", "--listen", "127.0.0.1:0"]
    args += ["--duration", "1"]
    for option, value, problem in [
        ("--max-change", "plc-1.levl_setpoint=2", "names register 'levl_setpoint', which the register map"),
        ("--max-change", "plc-9.level_setpoint=2", "names asset 'plc-9', which is not behind the gateway"),
        ("--rate-limit", "operater=5", "names role 'operater', which the policy does not have"),
    ]:
        result = CliRunner().invoke(gateway_group, [*args, option, value], obj=Provider(runtime))
        assert isinstance(result.exception, InvalidInput), result.output
        assert problem in str(result.exception)
    for option, value in [("--max-change", "plc-1.speed=nan"), ("--rate-limit", "operator=inf"),
                          ("--rate-limit", "operator=\u0661")]:  # fmt: skip
        result = CliRunner().invoke(gateway_group, [*args, option, value], obj=Provider(runtime))
        assert isinstance(result.exception, InvalidInput) and "expected" in str(result.exception), value
    host_name = CliRunner().invoke(gateway_group, [*args, "--host-name", "gw.example"], obj=Provider(runtime))
    assert host_name.exit_code == 2 and "--host-name goes with --mbaps" in host_name.output
    runtime.close()


def test_gateway_run_names_a_listen_address_in_use(data_dir: Path, tmp_path: Path) -> None:
    """It was `error [os_error]: [Errno 98] Address already in use`, without the address or option."""
    runtime = Runtime(make_settings(data_dir), source="gateway")
    (tmp_path / "plant.yaml").write_text(PLANT)
    with taken_port() as port:
        args = [
            "run",
            "--plant",
            str(tmp_path / "plant.yaml"),
            "--site",
            "plant-a",
            "--listen",
            f"127.0.0.1:{port}",
        ]
        result = CliRunner().invoke(gateway_group, [*args, "--duration", "1"], obj=Provider(runtime))
    runtime.close()
    assert isinstance(result.exception, ConfigurationError), result.output
    assert str(result.exception) == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use"
        " (--listen; is another Plantwarden server running?)"
    )
