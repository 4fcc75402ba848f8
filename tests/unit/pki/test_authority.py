"""The platform CA on disk: root and issuing CA, the root key encrypted, never overwritten;
backup, taking the root offline, and re-signing the issuing CA with the backup."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from plantwarden.core.clock import FixedClock
from plantwarden.core.errors import InvalidInput
from plantwarden.pki.authority import (
    ISSUING_KEY,
    ROOT_KEY,
    CertificateAuthority,
    export_root,
    pki_directory,
    renew_issuing,
    root_offline,
)
from plantwarden.pki.certs import DeviceIdentity, device_certificate
from plantwarden.pki.errors import CertificateAuthorityExists, NoCertificateAuthority, WrongPassphrase
from tests.unit.pki.support import PASSPHRASE, device_key, openssl, pem, write


def constraints(cert: x509.Certificate) -> x509.BasicConstraints:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value


def test_init_makes_a_root_and_an_issuing_ca(ca: CertificateAuthority, clock: FixedClock) -> None:
    directory = ca.directory
    assert sorted(p.name for p in directory.iterdir()) == [
        "issuing-ca.key",
        "issuing-ca.pem",
        "root-ca.key",
        "root-ca.pem",
    ]
    for name in (ROOT_KEY, ISSUING_KEY):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (directory / ROOT_KEY).read_bytes()
    with pytest.raises(TypeError):  # useless without the passphrase
        serialization.load_pem_private_key((directory / ROOT_KEY).read_bytes(), password=None)
    assert b"BEGIN PRIVATE KEY" in (directory / ISSUING_KEY).read_bytes()  # online: signs unattended
    assert (constraints(ca.root).ca, constraints(ca.root).path_length) == (True, 1)
    assert (constraints(ca.issuing).ca, constraints(ca.issuing).path_length) == (True, 0)
    usage = ca.root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert ca.issuing.issuer == ca.root.subject
    assert (ca.root.not_valid_after_utc - clock.now()).days >= 20 * 365
    assert 5 * 365 <= (ca.issuing.not_valid_after_utc - clock.now()).days < 6 * 365
    loaded = CertificateAuthority.load(directory)
    assert loaded.issuing == ca.issuing and loaded.root == ca.root
    assert ca.chain_pem() == pem(ca.issuing) + pem(ca.root)


def test_init_refuses_a_short_passphrase_and_an_existing_ca(ca: CertificateAuthority, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="11 characters; use at least 12"):
        CertificateAuthority.initialise(tmp_path / "other", b"short-phrase"[:11])
    assert not (tmp_path / "other" / ROOT_KEY).exists()
    before = (ca.directory / ISSUING_KEY).read_bytes()
    with pytest.raises(CertificateAuthorityExists, match="refusing to overwrite"):
        CertificateAuthority.initialise(ca.directory, PASSPHRASE)
    assert (ca.directory / ISSUING_KEY).read_bytes() == before


def test_load_without_a_ca_says_how_to_make_one(data_dir: Path) -> None:
    with pytest.raises(NoCertificateAuthority, match="run `plantwarden pki init`"):
        CertificateAuthority.load(pki_directory(data_dir))


def test_root_offline_then_renew_the_issuing_ca_with_the_backup(
    ca: CertificateAuthority, clock: FixedClock, tmp_path: Path
) -> None:
    identity = DeviceIdentity("plant-a", "plc-1", "cell-1")
    device = device_certificate(
        identity, device_key().public_key(), issuer=ca.issuing, issuer_key=ca.issuing_key, now=clock.now()
    )
    backup = export_root(ca.directory, tmp_path / "root-backup.pem")
    assert b"BEGIN CERTIFICATE" in backup.read_bytes() and b"ENCRYPTED PRIVATE KEY" in backup.read_bytes()
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        root_offline(ca.directory, backup, b"not the passphrase at all")
    assert (ca.directory / ROOT_KEY).exists()
    root_offline(ca.directory, backup, PASSPHRASE)
    assert not (ca.directory / ROOT_KEY).exists()
    assert not CertificateAuthority.load(ca.directory).root_online
    with pytest.raises(InvalidInput, match=r"offline.*--root-key"):
        renew_issuing(ca.directory, PASSPHRASE)
    with pytest.raises(WrongPassphrase):
        renew_issuing(ca.directory, b"not the passphrase at all", root_key_file=backup)
    clock.advance(timedelta(days=30))
    renewed = renew_issuing(ca.directory, PASSPHRASE, root_key_file=backup, clock=clock)
    assert renewed.issuing.serial_number != ca.issuing.serial_number
    assert renewed.issuing.not_valid_after_utc > ca.issuing.not_valid_after_utc
    assert CertificateAuthority.load(ca.directory).issuing == renewed.issuing
    # a device certificate issued before still verifies, through the renewed issuing CA
    when = str(int((clock.now() + timedelta(days=1)).timestamp()))
    files = {n: write(tmp_path / f"{n}.pem", pem(c)) for n, c in
             (("root", ca.root), ("issuing", renewed.issuing), ("device", device))}  # fmt: skip
    result = openssl(
        "verify", "-attime", when, "-CAfile", str(files["root"]), "-untrusted", str(files["issuing"]),
        str(files["device"]),
    )  # fmt: skip
    assert result.stdout.strip().endswith(": OK")


def test_a_backup_with_another_key_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    other = CertificateAuthority.initialise(tmp_path / "other", PASSPHRASE)
    backup = export_root(other.directory, tmp_path / "other-backup.pem")
    with pytest.raises(InvalidInput, match="not the key of the root CA"):
        root_offline(ca.directory, backup, PASSPHRASE)
    assert (ca.directory / ROOT_KEY).exists()


def test_the_root_key_itself_or_a_file_in_the_pki_directory_is_no_backup(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    key_file = ca.directory / ROOT_KEY
    original = key_file.read_bytes()
    hard_link = tmp_path / "hard-link.key"
    hard_link.hardlink_to(key_file)
    symbolic_link = tmp_path / "symbolic-link.key"
    symbolic_link.symlink_to(key_file)
    for same in (key_file, hard_link, symbolic_link):
        with pytest.raises(InvalidInput, match=r"is the root key itself.*no copy of its key"):
            root_offline(ca.directory, same, PASSPHRASE)
        assert key_file.read_bytes() == original
    # a real backup, but left in the PKI directory: it would go with the data directory
    inside = export_root(ca.directory, ca.directory / "root-backup.pem")
    with pytest.raises(InvalidInput, match="inside the PKI directory"):
        root_offline(ca.directory, inside, PASSPHRASE)
    assert key_file.read_bytes() == original
