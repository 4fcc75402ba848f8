"""Enrolment against the real server over TLS, with the real openssl and curl, running the very
commands docs/est.md shows (each `<!-- test: NAME -->` block): an administrator's API token makes
one-time tokens; a device enrols through the JSON API and through EST simpleenroll, openssl
verifies the chain; simplereenroll renews with the current certificate as TLS client
certificate, and refuses a request without one, a superseded one and a revoked one; the CRL
verifies with `openssl crl` and lists the revoked serial."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from plantwarden.accounts import services as accounts
from plantwarden.accounts import totp
from plantwarden.accounts.secrets import AccountSecrets
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from tests.conftest import make_settings
from tests.helpers import free_port, start_plantwarden, wait_for
from tests.web_support import FAST_HASHING, PASSWORD

DOC = Path(__file__).resolve().parents[2] / "docs" / "est.md"
BLOCK = re.compile(r"<!-- test: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)
CTX = Context(source="test", actor="test")


def doc_blocks() -> dict[str, str]:
    return dict(BLOCK.findall(DOC.read_text()))


@dataclass
class Device:
    """A device's working directory, with the server's certificate and the root it trusts."""

    directory: Path
    env: dict[str, str]

    def run(self, script: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.directory,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def block(self, name: str, **extra: str) -> str:
        """Run a block of docs/est.md; its standard output (the block must succeed)."""
        result = self.run(doc_blocks()[name], **extra)
        assert result.returncode == 0, (name, result.stdout, result.stderr)
        return result.stdout + result.stderr

    def status(self, *curl: str) -> tuple[int, str]:
        """HTTP status and body of a curl request made here (it may fail)."""
        result = self.run(
            " ".join(["curl", "-sS", "--cacert", "server.crt", "-w", "'\\n%{http_code}'", *curl])
        )
        body, _, code = result.stdout.rpartition("\n")
        return int(code), body


@dataclass
class Platform:
    url: str
    data_dir: Path
    api_token: str

    def device(self, where: Path) -> Device:
        where.mkdir()
        shutil.copy(self.data_dir / "tls" / "server.crt", where / "server.crt")
        shutil.copy(pki_directory(self.data_dir) / "root-ca.pem", where / "root-ca.pem")
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "PW": self.url, "PW_API_TOKEN": self.api_token}
        return Device(where, env)

    def token(self, device: Device) -> str:
        return device.block("token").strip()


def _admin_token(data_dir: Path) -> str:
    """An administrator of plant-a (password and second factor set, as admins must) and an API
    token of theirs, made in the server's store (the server reads grants within seconds)."""
    settings = make_settings(data_dir, **FAST_HASHING)
    store = Store.from_settings(settings[CoreSettings])
    keys = AccountSecrets.load_or_create(data_dir)
    cfg = settings[AccountsSettings]
    try:
        with store.transaction() as session:
            user, _ = accounts.create_user(session, CTX, "ada", password=PASSWORD, settings=cfg)
            accounts.grant_role(session, CTX, "ada", "admin", "plant-a")
            encoded, _ = accounts.enroll_totp(session, CTX, str(user.id), secrets=keys)
            code = totp.code_at(totp.secret_from_base32(encoded), CTX.clock.now())
            accounts.confirm_totp(session, CTX, str(user.id), code, secrets=keys)
            _, secret = accounts.create_token(
                session, CTX, user.id, "provisioning", [], timedelta(hours=1), settings=cfg
            )
    finally:
        store.close()
    return secret


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("est")
    data_dir = root / "data"
    CertificateAuthority.initialise(pki_directory(data_dir), b"a long enough passphrase")
    port = free_port()
    server = start_plantwarden(
        "--data-dir", str(data_dir), "serve", "--port", str(port), "--tls", "on", cwd=root
    )
    url = f"https://127.0.0.1:{port}"
    try:
        probe = Device(root, {"PATH": "/usr/bin:/bin"})
        wait_for(lambda: (data_dir / "tls" / "server.crt").exists() or None, what="the server certificate")
        shutil.copy(data_dir / "tls" / "server.crt", root / "server.crt")
        wait_for(lambda: probe.status(f"{url}/readyz")[0] == 200 or None, what="server readiness")
        yield Platform(url, data_dir, _admin_token(data_dir))
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "TLS clients may present a certificate of the platform CA" in (root / "stderr.log").read_text()


def test_a_device_enrols_through_the_json_api(platform: Platform, tmp_path: Path) -> None:
    device = platform.device(tmp_path / "api")
    output = device.block("enrol-api", TOKEN=platform.token(device))
    assert "device.pem: OK" in output
    subject = device.run("openssl x509 -in device.pem -noout -subject -nameopt RFC2253").stdout
    assert subject.strip() == "subject=CN=plc-7,OU=cell-1,O=plant-a"


def test_est_enrolment_renewal_revocation_and_the_crl(platform: Platform, tmp_path: Path) -> None:
    device = platform.device(tmp_path / "est")
    token = platform.token(device)
    device.block("enrol-est", TOKEN=token)
    assert "device.pem: OK" in device.block("cacerts-est")
    text = device.run("openssl x509 -in device.pem -noout -text").stdout
    assert "URI:urn:plantwarden:plant-a:device:plc-7" in text and "TLS Web Client Authentication" in text

    enrol = ["-H", "'Content-Type: application/pkcs10'", "--data-binary", "@device.csr.b64",
             f"{platform.url}/.well-known/est/simpleenroll"]  # fmt: skip
    used = device.status("--user", f"plc-7:{token}", *enrol)
    assert used[0] == 403 and "already used" in used[1]
    anonymous = device.status(*enrol)
    assert anonymous[0] == 401 and "HTTP Basic" in anonymous[1]

    device.block("reenrol-est")
    verified = device.run("openssl verify -CAfile root-ca.pem -untrusted ca-chain.pem device-new.pem")
    assert verified.stdout.strip() == "device-new.pem: OK", verified.stderr
    same = device.run(
        "openssl x509 -in device.pem -noout -subject; openssl x509 -in device-new.pem -noout -subject"
    )
    first, second = same.stdout.splitlines()
    assert first == second
    renew = ["-H", "'Content-Type: application/pkcs10'", "--data-binary", "@renew.csr.b64",
             f"{platform.url}/.well-known/est/simplereenroll"]  # fmt: skip
    no_cert = device.status(*renew)
    assert no_cert[0] == 403 and "TLS client certificate" in no_cert[1]
    superseded = device.status("--cert", "device.pem", "--key", "device.key", *renew)
    assert superseded[0] == 409 and "already renewed" in superseded[1]

    revoked_json = device.block("revoke")
    assert '"status":"revoked"' in revoked_json.replace(" ", "")
    revoked = device.status("--cert", "device-new.pem", "--key", "device-new.key", *renew)
    assert revoked[0] == 403 and "revoked" in revoked[1]

    crl = device.block("crl")
    assert "verify OK" in crl
    serial = device.run("openssl x509 -in device-new.pem -noout -serial | cut -d= -f2").stdout.strip()
    assert f"Serial Number: {serial}" in crl
