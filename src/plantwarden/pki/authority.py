"""The platform CA: an offline-capable root and an online issuing CA, kept as files in
`<data_dir>/pki/`.

- root-ca.pem, root-ca.key: the root (20 years, path length 1); its key is PKCS#8 encrypted with
  the operator's passphrase, and can leave the machine altogether (`export_root`, then
  `root_offline`): it is only needed to re-sign the issuing CA.
- issuing-ca.pem, issuing-ca.key: the issuing CA (5 years, path length 0); its key is stored in
  clear, mode 0600, because it signs device certificates and CRLs unattended.

`CertificateAuthority.load` reads the issuing CA only and never needs the passphrase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.errors import InvalidInput
from plantwarden.pki.errors import CertificateAuthorityExists, NoCertificateAuthority
from plantwarden.pki.keys import (
    check_passphrase,
    key_pem,
    load_key,
    new_key,
    replace_file,
    write_new_file,
)

ROOT_CERT, ROOT_KEY = "root-ca.pem", "root-ca.key"
ISSUING_CERT, ISSUING_KEY = "issuing-ca.pem", "issuing-ca.key"
ROOT_LIFETIME = timedelta(days=20 * 365 + 5)
ISSUING_LIFETIME = timedelta(days=5 * 365 + 1)
BACKDATE = timedelta(minutes=5)


def pki_directory(data_dir: Path) -> Path:
    """Where the CA's files live: `<data_dir>/pki`."""
    return data_dir / "pki"


@dataclass(frozen=True)
class CertificateAuthority:
    """The issuing CA (certificate and key) and the root certificate, loaded from `directory`."""

    directory: Path
    root: x509.Certificate
    issuing: x509.Certificate
    issuing_key: ec.EllipticCurvePrivateKey

    @classmethod
    def initialise(
        cls, directory: Path, passphrase: bytes, *, name: str = "Plantwarden", clock: Clock | None = None
    ) -> CertificateAuthority:
        """Make the root and the issuing CA in `directory`; refuses to overwrite any CA file."""
        check_passphrase(passphrase)
        existing = [n for n in (ROOT_CERT, ROOT_KEY, ISSUING_CERT, ISSUING_KEY) if (directory / n).exists()]
        if existing:
            raise CertificateAuthorityExists(
                f"{directory} already holds a CA ({', '.join(existing)}); refusing to overwrite it"
            )
        now = (clock or SystemClock()).now()
        root_key, issuing_key = new_key(), new_key()
        root = _ca_certificate(name, "Root CA", root_key, root_key, None, now, ROOT_LIFETIME, 1)
        issuing = _ca_certificate(name, "Issuing CA", issuing_key, root_key, root, now, ISSUING_LIFETIME, 0)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_new_file(directory / ROOT_KEY, key_pem(root_key, passphrase))
        write_new_file(directory / ISSUING_KEY, key_pem(issuing_key, None))
        write_new_file(directory / ROOT_CERT, _pem(root), 0o644)
        write_new_file(directory / ISSUING_CERT, _pem(issuing), 0o644)
        return cls(directory, root, issuing, issuing_key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """The CA of `directory` (no passphrase needed: the root key is not read)."""
        if not (directory / ISSUING_CERT).exists() or not (directory / ISSUING_KEY).exists():
            raise NoCertificateAuthority(f"no platform CA in {directory}: run `plantwarden pki init`")
        root = x509.load_pem_x509_certificate((directory / ROOT_CERT).read_bytes())
        issuing = x509.load_pem_x509_certificate((directory / ISSUING_CERT).read_bytes())
        key = load_key((directory / ISSUING_KEY).read_bytes(), None, where=str(directory / ISSUING_KEY))
        return cls(directory, root, issuing, key)

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether `directory` holds an issuing CA."""
        return (directory / ISSUING_CERT).exists()

    def chain(self) -> list[x509.Certificate]:
        """The issuing CA, then the root: what a device needs next to its own certificate."""
        return [self.issuing, self.root]

    def chain_pem(self) -> bytes:
        return _pem(self.issuing) + _pem(self.root)

    @property
    def root_online(self) -> bool:
        """Whether the root key is still in the data directory (see `root_offline`)."""
        return (self.directory / ROOT_KEY).exists()


def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} {common_name}"),
        ]
    )


def _ca_certificate(
    organisation: str,
    role: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    parent: x509.Certificate | None,
    now: datetime,
    lifetime: timedelta,
    path_length: int,
) -> x509.Certificate:
    """A CA certificate for `key`; self-signed when `parent` is None."""
    subject = _name(organisation, role)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.subject if parent is not None else subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    authority = parent.public_key() if parent is not None else public
    if not isinstance(authority, ec.EllipticCurvePublicKey):
        raise InvalidInput("the root CA's key is not an ECDSA key")
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False
    )
    return builder.sign(signer, hashes.SHA256())


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def export_root(directory: Path, out: Path) -> Path:
    """Write the backup bundle: the root certificate and its still-encrypted key, PEM."""
    key_file = directory / ROOT_KEY
    if not key_file.exists():
        raise InvalidInput(f"{key_file} is gone: the root is already offline; keep the backup you made")
    write_new_file(out, (directory / ROOT_CERT).read_bytes() + key_file.read_bytes())
    return out


def root_offline(directory: Path, backup: Path, passphrase: bytes) -> None:
    """Take the root key out of the data directory, once the backup is proved to hold it: the
    backup's key must decrypt with `passphrase` and match the root certificate."""
    key_file = directory / ROOT_KEY
    _check_backup_elsewhere(directory, backup, key_file)
    root = x509.load_pem_x509_certificate((directory / ROOT_CERT).read_bytes())
    _root_key_from(backup, passphrase, root)
    if key_file.exists():
        key_file.unlink()


def _check_backup_elsewhere(directory: Path, backup: Path, key_file: Path) -> None:
    """Refuse a "backup" that is the root key itself (the same file, a hard or symbolic link to
    it) or any file in the PKI directory: proving it and then deleting the root key would
    destroy the only copy."""
    same = backup.exists() and key_file.exists() and backup.samefile(key_file)
    inside = backup.resolve().is_relative_to(directory.resolve())
    if same or inside:
        raise InvalidInput(
            f"the backup {backup} is {'the root key itself' if same else 'inside the PKI directory'}"
            f" ({directory}): taking the root offline would leave no copy of its key. Write the backup"
            " elsewhere, ideally on removable media (`plantwarden pki export-root --out FILE`), and"
            " give that file"
        )


def _root_key_from(source: Path, passphrase: bytes, root: x509.Certificate) -> ec.EllipticCurvePrivateKey:
    if not source.exists():
        raise InvalidInput(f"no root key file at {source}")
    key = load_key(source.read_bytes(), passphrase, where=str(source))
    if _spki(key.public_key()) != _spki(root.public_key()):
        raise InvalidInput(
            f"the key in {source} is not the key of the root CA certificate in the data directory"
        )
    return key


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def renew_issuing(
    directory: Path, passphrase: bytes, *, root_key_file: Path | None = None, clock: Clock | None = None
) -> CertificateAuthority:
    """Re-sign the issuing CA's key with the root for another five years (certificates it issued
    stay valid: the key and name do not change). Needs the root key: from the data directory,
    or `root_key_file` (the backup bundle) when the root is offline."""
    ca = CertificateAuthority.load(directory)
    source = root_key_file if root_key_file is not None else directory / ROOT_KEY
    if root_key_file is None and not source.exists():
        raise InvalidInput("the root CA is offline: give its key file (--root-key, the backup bundle)")
    root_key = _root_key_from(source, passphrase, ca.root)
    organisation = ca.issuing.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    now = (clock or SystemClock()).now()
    issuing = _ca_certificate(
        str(organisation), "Issuing CA", ca.issuing_key, root_key, ca.root, now, ISSUING_LIFETIME, 0
    )
    replace_file(directory / ISSUING_CERT, _pem(issuing), 0o644)
    return CertificateAuthority(directory, ca.root, issuing, ca.issuing_key)
