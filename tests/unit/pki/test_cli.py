"""`plantwarden pki` on a real data directory: init, a token, enrolment of a CSR (the result
verified by openssl), the inventory, revocation and the CRL, expiry alerts, the offline root."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from sqlalchemy import event, select

from plantwarden.alerts.models import Alert
from plantwarden.core.auditlog import AuditEntry
from plantwarden.core.clock import FixedClock
from plantwarden.core.errors import InvalidInput
from plantwarden.core.runtime import Runtime
from plantwarden.pki.authority import ROOT_KEY, pki_directory
from plantwarden.pki.cli import pki_group
from plantwarden.pki.errors import CertificateAuthorityExists, EnrolmentRefused, WrongPassphrase
from tests.conftest import make_settings
from tests.output_support import files_of, full_disk, full_disk_after_commit
from tests.unit.pki.support import PASSPHRASE, make_csr, openssl, pem, write


class Provider:
    def __init__(self, data_dir: Path, clock: FixedClock) -> None:
        self.held = Runtime(make_settings(data_dir), clock)

    def runtime(self) -> Runtime:
        return self.held


def invoke(
    provider: Provider, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> Result:
    runner = CliRunner()
    result = runner.invoke(pki_group, list(args), obj=provider, catch_exceptions=False, input=stdin, env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def provider(data_dir: Path, clock: FixedClock, tmp_path: Path) -> Provider:
    held = Provider(data_dir, clock)
    secret = write(tmp_path / "passphrase", PASSPHRASE + b"\n")
    assert "platform CA created" in invoke(held, "init", "--passphrase-file", str(secret)).output
    return held


def test_enrol_list_revoke_and_the_crl(provider: Provider, tmp_path: Path, clock: FixedClock) -> None:
    with pytest.raises(CertificateAuthorityExists):
        invoke(provider, "init", env={"PLANTWARDEN_PKI_PASSPHRASE": PASSPHRASE.decode()})
    created = invoke(
        provider, "token", "create", "plc-1", "--site", "plant-a", "--zone", "cell-1", "--role", "operator"
    )
    token = created.stdout.strip()
    assert len(token) >= 22 and "usable until" in created.stderr
    csr = write(tmp_path / "plc-1.csr", pem(make_csr()))
    cert, chain = tmp_path / "plc-1.pem", tmp_path / "chain.pem"
    args = ["--csr", str(csr), "--out", str(cert), "--chain-out", str(chain)]
    assert "for plc-1 at plant-a" in invoke(provider, "enroll", "--token", token, *args).output
    with pytest.raises(EnrolmentRefused, match="already used"):
        invoke(provider, "enroll", "--token", token, *args)
    root = write(tmp_path / "root.pem", pem(x509.load_pem_x509_certificates(chain.read_bytes())[1]))
    when = str(int(clock.now().timestamp()))
    verified = openssl("verify", "-attime", when, "-CAfile", str(root), "-untrusted", str(chain), str(cert))
    assert verified.stdout.strip().endswith(": OK")
    assert "1.3.6.1.4.1.50316.802.1" in openssl("x509", "-in", str(cert), "-noout", "-text").stdout
    plc2 = ["--device", "plc-2", "--site", "plant-a", "--zone", "cell-2", "--days", "30"]
    invoke(provider, "enroll", *plc2, "--csr", str(csr), "--out", str(tmp_path / "plc-2.pem"))
    listed = json.loads(invoke(provider, "list", "--format", "json").output)
    assert [(c["device"], c["role"], c["status"], c["issued_via"]) for c in listed] == [
        ("plc-1", "operator", "valid", "cli"),
        ("plc-2", None, "valid", "cli"),
    ]
    serial = listed[0]["serial"]
    assert "BEGIN CERTIFICATE" in invoke(provider, "show", serial).output
    with pytest.raises(InvalidInput, match="is of site plant-a, not plant-b: nothing revoked"):
        invoke(provider, "revoke", serial, "--site", "plant-b", "--reason", "keyCompromise")  # it was ignored
    revoked = invoke(provider, "revoke", serial, "--site", "plant-a", "--reason", "keyCompromise")
    assert f"revoked {serial}" in revoked.output
    crl_file = tmp_path / "crl.pem"
    invoke(provider, "crl", "--pem", "--out", str(crl_file))
    text = openssl("crl", "-in", str(crl_file), "-CAfile", str(chain), "-verify", "-noout", "-text")
    assert "verify OK" in text.stderr + text.stdout
    assert serial.upper()[-16:] in text.stdout.replace(":", "")
    der = invoke(provider, "crl").stdout_bytes
    assert der[:1] == b"\x30"  # DER on standard output
    assert (
        json.loads(invoke(provider, "list", "--status", "valid", "--format", "json").output)[0]["device"]
        == "plc-2"
    )
    assert invoke(provider, "check-expiry").output.endswith("no certificate expires within 14 days\n")
    clock.advance(timedelta(days=20))
    assert (
        "1 certificate expires within 14 days: an alert raised for each"
        in invoke(provider, "check-expiry").output
    )
    with provider.runtime().ready_store().transaction() as session:
        (alert,) = session.scalars(select(Alert))
        assert alert.rule_id == "pw-pki-expiry" and "plc-2" in alert.title
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions == [
        "pki.ca.initialised",
        "pki.token.created",
        "pki.certificate.issued",
        "pki.enrolment_refused",
        "pki.certificate.issued",
        "pki.certificate.revoked",
    ]


def test_backup_offline_root_and_renewing_the_issuing_ca(
    provider: Provider, tmp_path: Path, clock: FixedClock
) -> None:
    backup = tmp_path / "root-backup.pem"
    invoke(provider, "export-root", "--out", str(backup))
    with pytest.raises(WrongPassphrase):
        invoke(provider, "root-offline", "--backup", str(backup), stdin="wrong passphrase!\n")
    env = {"PLANTWARDEN_PKI_PASSPHRASE": PASSPHRASE.decode()}
    directory = pki_directory(provider.runtime().core.data_path)
    with pytest.raises(InvalidInput, match="is the root key itself"):
        invoke(provider, "root-offline", "--backup", str(directory / ROOT_KEY), env=env)
    assert (directory / ROOT_KEY).exists()
    invoke(provider, "root-offline", "--backup", str(backup), env=env)
    assert not (directory / ROOT_KEY).exists()
    before = invoke(provider, "cacerts").output
    clock.advance(timedelta(days=365))
    assert (
        "issuing CA renewed" in invoke(provider, "renew-issuing", "--root-key", str(backup), env=env).output
    )
    after = invoke(provider, "cacerts").output
    assert before != after and after.count("BEGIN CERTIFICATE") == 2
    assert (
        after.split("-----END CERTIFICATE-----")[1] == before.split("-----END CERTIFICATE-----")[1]
    )  # same root


def test_root_offline_tells_a_damaged_backup_from_a_wrong_passphrase(
    provider: Provider, tmp_path: Path
) -> None:
    # both were "the key does not decrypt with this passphrase (wrong passphrase, or not a key)"
    whole, truncated = tmp_path / "root-backup.pem", tmp_path / "truncated.pem"
    invoke(provider, "export-root", "--out", str(whole))
    truncated.write_bytes(whole.read_bytes()[:-100])
    with pytest.raises(InvalidInput) as raised:
        invoke(provider, "root-offline", "--backup", str(truncated), stdin=f"{PASSPHRASE.decode()}\n")
    assert not isinstance(raised.value, WrongPassphrase)
    assert (
        raised.value.message
        == f"{truncated} is damaged: not a PEM private key (truncated, or not a key at all)"
    )
    with pytest.raises(WrongPassphrase) as wrong:
        invoke(provider, "root-offline", "--backup", str(whole), stdin="wrong passphrase!\n")
    assert wrong.value.message == f"{whole}: wrong passphrase (the key does not decrypt with it)"
    assert (pki_directory(provider.runtime().core.data_path) / ROOT_KEY).exists()


def test_init_asks_for_the_passphrase_twice(data_dir: Path, clock: FixedClock) -> None:
    provider = Provider(data_dir, clock)
    result = invoke(provider, "init", stdin=f"{PASSPHRASE.decode()}\n{PASSPHRASE.decode()}\n")
    assert "platform CA created" in result.output
    assert (pki_directory(data_dir) / ROOT_KEY).exists()


@pytest.mark.parametrize(
    ("stdin", "problem"),
    [
        ("", "no root CA passphrase: standard input ended before it was given twice; give --passphrase-file"),
        (f"{PASSPHRASE.decode()}\n", "standard input ended before it was given twice"),
        (f"{PASSPHRASE.decode()}\n{PASSPHRASE.decode()}x\n", "the two passphrases on standard input differ"),
    ],
)
def test_init_from_a_script_says_where_the_passphrase_can_come_from(
    data_dir: Path, clock: FixedClock, stdin: str, problem: str
) -> None:
    """Input that ran out at the prompt was 'aborted' (Ctrl-C's word, status 130), after Python's
    warnings that the passphrase may be echoed."""
    result = CliRunner().invoke(pki_group, ["init"], obj=Provider(data_dir, clock), input=stdin)
    assert result.exit_code == 2, result.output
    assert problem in result.output
    assert "echoed" not in result.output
    assert not (pki_directory(data_dir) / ROOT_KEY).exists()


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("keyCompromise: " + "x" * 384 + "END", "the revocation reason has 402 characters; at most 400"),
        ("superseded\nserial 4d8d8852  status valid", "holds a line break, a tab or another control"),
        ("keyCompromise \x1b[2K", "holds a line break"),
        ("   ", "say why the certificate is revoked (--reason)"),
    ],
)
def test_a_revocation_reason_that_would_be_cut_or_break_pki_show_is_refused(
    provider: Provider, tmp_path: Path, reason: str, problem: str
) -> None:
    csr = write(tmp_path / "plc-1.csr", pem(make_csr()))
    identity = ["--device", "plc-1", "--site", "plant-a", "--zone", "cell-1"]
    invoke(provider, "enroll", *identity, "--csr", str(csr), "--out", str(tmp_path / "plc-1.pem"))
    (listed,) = json.loads(invoke(provider, "list", "--format", "json").output)
    with pytest.raises(InvalidInput) as refused:
        invoke(provider, "revoke", listed["serial"], "--reason", reason)
    assert problem in refused.value.message
    assert json.loads(invoke(provider, "list", "--format", "json").output)[0]["status"] == "valid"
    longest = "keyCompromise: " + "x" * 384 + "E"
    invoke(provider, "revoke", listed["serial"], "--reason", f" {longest} ")
    shown = invoke(provider, "show", listed["serial"]).output
    assert f"\nrevocation_reason {longest}\n-----BEGIN CERTIFICATE-----" in shown


def _revoke_elsewhere(database: str, serial: str) -> str:
    """Another writer revokes the certificate (a second operator, the API): 'committed', or why not."""
    connection = sqlite3.connect(database, timeout=0.2)
    try:
        with connection:
            connection.execute(
                "UPDATE pki_certificates SET status = 'revoked', revocation_reason = 'elsewhere'"
                " WHERE serial = ?",
                (serial,),
            )
    except sqlite3.OperationalError as error:
        return str(error)
    finally:
        connection.close()
    return "committed"


@pytest.mark.parametrize(
    ("site", "status", "reason"), [("plant-a", "revoked", "keyCompromise"), ("plant-b", "valid", None)]
)
def test_revoke_serial_site_reads_the_certificate_once_and_holds_it_to_the_revocation(
    provider: Provider, tmp_path: Path, site: str, status: str, reason: str | None
) -> None:
    # it read the certificate twice, the first time without a lock: a revocation committed in
    # between was overwritten ("keyCompromise" over "elsewhere", no "already revoked")
    csr = write(tmp_path / "plc-1.csr", pem(make_csr()))
    identity = ["--device", "plc-1", "--site", "plant-a", "--zone", "cell-1"]
    invoke(provider, "enroll", *identity, "--csr", str(csr), "--out", str(tmp_path / "plc-1.pem"))
    (listed,) = json.loads(invoke(provider, "list", "--format", "json").output)
    engine = provider.runtime().ready_store().engine
    reads: list[str] = []

    def after_execute(*arguments: object) -> None:
        statement = str(arguments[2])
        if statement.startswith("SELECT") and "FROM pki_certificates" in statement:
            reads.append(_revoke_elsewhere(str(engine.url.database), listed["serial"]))

    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        if site == "plant-a":
            invoke(provider, "revoke", listed["serial"], "--site", site, "--reason", "keyCompromise")
        else:
            with pytest.raises(InvalidInput, match="is of site plant-a, not plant-b: nothing revoked"):
                invoke(provider, "revoke", listed["serial"], "--site", site, "--reason", "keyCompromise")
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
    assert reads == ["database is locked"]  # one read, and the other writer waits past it
    (after,) = json.loads(invoke(provider, "list", "--format", "json").output)
    assert (after["status"], after["revocation_reason"]) == (status, reason)


@pytest.mark.parametrize(
    "extra",
    [["--days", "7"], ["--site", "other", "--role", "admin"], ["--zone", "z"], ["--asset", "a"]],
)
def test_enrol_with_a_token_refuses_the_options_of_an_identity(
    provider: Provider, tmp_path: Path, extra: list[str]
) -> None:
    token = invoke(provider, "token", "create", "plc-1", "--site", "plant-a", "--zone", "cell-1").stdout
    csr, cert = write(tmp_path / "plc-1.csr", pem(make_csr())), tmp_path / "plc-1.pem"
    args = ["enroll", "--token", token.strip(), "--csr", str(csr), "--out", str(cert)]
    result = CliRunner().invoke(pki_group, [*args, *extra], obj=provider)
    assert result.exit_code == 2
    named = [option for option in extra if option.startswith("--")]
    verb = "goes" if len(named) == 1 else "go"
    assert f"{', '.join(named)} {verb} with --device, not --token" in result.output
    assert "the identity the token names and the default lifetime (90 days)" in result.output
    assert not cert.exists()
    assert "until" in invoke(provider, *args).output  # the token is not used up


def _fails_with_a_full_disk(provider: Provider, *args: str) -> None:
    with pytest.raises(OSError, match="File too large"):
        CliRunner().invoke(pki_group, list(args), obj=provider, catch_exceptions=False)


def test_a_full_disk_keeps_the_certificate_chain_and_crl_files_already_there(
    provider: Provider, tmp_path: Path
) -> None:
    """The certificate is on record when the disk fills up: the files it would replace are kept
    byte for byte, and no half-written file or temporary is left beside them."""
    csr = write(tmp_path / "plc-1.csr", pem(make_csr()))
    out = tmp_path / "out"
    out.mkdir()
    for name in ("plc-1.pem", "chain.pem", "crl.pem"):
        write(out / name, f"the good {name}, kept\n".encode() * 40)
    before = files_of(out)
    identity = ["--device", "plc-1", "--site", "plant-a", "--zone", "cell-1"]
    files = ["--out", str(out / "plc-1.pem"), "--chain-out", str(out / "chain.pem")]
    with full_disk_after_commit():
        _fails_with_a_full_disk(provider, "enroll", *identity, "--csr", str(csr), *files)
    with full_disk_after_commit():
        _fails_with_a_full_disk(provider, "crl", "--pem", "--out", str(out / "crl.pem"))
    with full_disk():
        _fails_with_a_full_disk(provider, "cacerts", "--out", str(out / "chain.pem"))
    assert files_of(out) == before
    invoke(provider, "enroll", *identity, "--csr", str(csr), *files)
    assert b"BEGIN CERTIFICATE" in (out / "plc-1.pem").read_bytes()
    assert sorted(files_of(out)) == ["chain.pem", "crl.pem", "plc-1.pem"]


def test_the_root_ca_backup_is_0600_and_never_left_half_written(provider: Provider, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    backup = out / "root-backup.pem"
    with full_disk():
        _fails_with_a_full_disk(provider, "export-root", "--out", str(backup))
    assert files_of(out) == {}  # no partial backup to mistake for one, nor to refuse the next try
    invoke(provider, "export-root", "--out", str(backup))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in backup.read_bytes()
