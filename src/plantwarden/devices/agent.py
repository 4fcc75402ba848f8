"""The device side of end-to-end telemetry: a small agent a device runs (or imports).

`enroll` makes the device's P-256 key, has the platform issue its certificate with a one-time
token (`POST /api/v1/pki/enroll`), and fetches the platform's telemetry recipient certificate,
checked against the CA chain it got back. Everything is kept in one directory:

    device.key      the device's private key (0600; never leaves the device)
    device.pem      its certificate (site, zone, device; a role when it has one)
    ca-chain.pem    the platform CA chain (issuing CA, root): verifies the broker and the recipient
    recipient.pem   the platform's telemetry recipient certificate (the key messages are encrypted to)
    state.json      the sequence: the epoch, grown and written to disk on every start before the
                    first message, and the last counter used

`Agent.start` begins a new epoch; `seal` turns values into one signed and encrypted message for
the device's topic (`SITE/ZONE/DEVICE/telemetry`). (epoch, counter) never repeats for a device, so
no message can be replayed as a new one and no AES-GCM nonce is used twice.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from plantwarden.core.errors import Conflict, PlantwardenError
from plantwarden.devices.envelope import Sealer, key_id
from plantwarden.devices.ingest import payload_of, telemetry_topic
from plantwarden.devices.tls import ClientFiles, client_tls_context, present_certificate
from plantwarden.pki.certs import DeviceIdentity, fingerprint, identity_of, renewal_starts
from plantwarden.pki.keys import fsync_directory, key_pem, load_key, new_key, replace_file

KEY, CERT, CHAIN, RECIPIENT, STATE = "device.key", "device.pem", "ca-chain.pem", "recipient.pem", "state.json"
REMEDY = "enrol the device again (`agent enroll --force` with a new token)"
"""What to do when one of the device's files is damaged."""
SAVE_EVERY = 1000
"""The counter is written to disk every this many messages (and when the agent stops)."""


class AgentError(PlantwardenError):
    """The agent cannot do what was asked: not enrolled, the platform refused, files damaged."""

    code = "agent_error"


def _http(
    url: str,
    *,
    body: dict[str, Any] | bytes | None,
    cafile: Path | None,
    timeout: float,
    content_type: str = "application/json",
    client: ClientFiles | None = None,
) -> bytes:
    parsed = urllib.parse.urlsplit(url)
    loopback = parsed.hostname in ("127.0.0.1", "::1", "localhost")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise AgentError(
            f"{url!r}: the platform is reached over https (the token and the trust anchor travel in it); "
            "plain http only on this machine's loopback"
        )
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except ssl.SSLError:  # empty, binary, or PEM of something else
        raise AgentError(f"--api-ca {cafile}: no CA certificate in it (expected PEM certificates)") from None
    if client is not None:
        present_certificate(context, client)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:  # noqa: S310
            return bytes(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")[:500]
        with contextlib.suppress(ValueError, AttributeError):
            text = str(json.loads(text).get("message") or json.loads(text).get("detail") or text)
        raise AgentError(f"the platform answered {error.code} at {url}: {text}") from None
    except (urllib.error.URLError, OSError) as error:
        raise AgentError(f"cannot reach the platform at {url}: {getattr(error, 'reason', error)}") from None


def _certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise AgentError(f"the platform sent a {what} that is not PEM certificates") from None
    if not found:
        raise AgentError(f"the platform sent an empty {what}")
    return found


def _check_recipient(recipient: x509.Certificate, chain: list[x509.Certificate]) -> None:
    """The recipient certificate must be a platform recipient issued by the chain's issuing CA."""
    try:
        recipient.verify_directly_issued_by(chain[0])
    except (ValueError, TypeError, InvalidSignature):
        raise AgentError("the telemetry recipient certificate is not issued by the platform CA") from None
    unit = recipient.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    usage = recipient.extensions.get_extension_for_class(x509.KeyUsage).value
    if not unit or unit[0].value != "platform recipient" or not usage.key_agreement:
        raise AgentError("the certificate sent as telemetry recipient is not one")


def enroll(
    directory: Path,
    api: str,
    token: str,
    *,
    cafile: Path | None = None,
    timeout: float = 30.0,
    force: bool = False,
) -> DeviceIdentity:
    """Enrol this device with the platform at `api` (its base URL) using a one-time token; the
    identity (site, zone, device, role) is the one the token was made for."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (directory / CERT).exists() and not force:
        raise Conflict(f"{directory} already holds an enrolled device; use --force to enrol again")
    key = new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plantwarden-device")]))
        .sign(key, hashes.SHA256())
    )
    base = api.rstrip("/")
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    answer = _http(
        f"{base}/api/v1/pki/enroll", body={"token": token, "csr": csr_pem}, cafile=cafile, timeout=timeout
    )
    try:
        issued = json.loads(answer)
        certificate = _certificates(issued["certificate"].encode(), "certificate")[0]
        chain = _certificates(issued["chain"].encode(), "CA chain")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AgentError(
            "the platform's answer to the enrolment is not a certificate and its chain"
        ) from None
    if certificate.public_key() != key.public_key():
        raise AgentError("the platform returned a certificate for another key")
    recipient_pem = _http(
        f"{base}/api/v1/devices/telemetry-recipient", body=None, cafile=cafile, timeout=timeout
    )
    recipient = _certificates(recipient_pem, "telemetry recipient certificate")[0]
    return install(directory, key, certificate, chain, recipient)


def install(
    directory: Path,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    recipient: x509.Certificate,
) -> DeviceIdentity:
    """Keep an issued identity in the device's directory (what `enroll` does once the platform
    answered; also for a device provisioned another way, e.g. at the factory)."""
    if certificate.public_key() != key.public_key():
        raise AgentError("the certificate is not the device key's")
    _check_recipient(recipient, chain)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_file(directory / KEY, key_pem(key, None))
    replace_file(directory / CERT, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    replace_file(directory / CHAIN, chain_pem, 0o644)
    replace_file(directory / RECIPIENT, recipient.public_bytes(serialization.Encoding.PEM), 0o644)
    state = read_state(directory)
    _write_state(directory, {"epoch": state.get("epoch", 0), "counter": 0})
    return identity_of(certificate)


def read_state(directory: Path) -> dict[str, int]:
    path = directory / STATE
    if not path.exists():
        return {"epoch": 0, "counter": 0}
    try:
        state = json.loads(path.read_text())
        return {"epoch": int(state["epoch"]), "counter": int(state["counter"])}
    except (OSError, ValueError, KeyError, TypeError):
        raise AgentError(
            f"{path} is damaged: the sequence cannot be trusted; enrol again (agent enroll --force)"
        ) from None


def _write_state(directory: Path, state: dict[str, int]) -> None:
    # file and rename both fsynced (`replace_file`): an epoch is never handed out twice
    replace_file(directory / STATE, json.dumps(state).encode(), 0o600)


@dataclass(frozen=True)
class AgentFiles:
    """The enrolled device's files, loaded."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: Path
    recipient: x509.Certificate

    @classmethod
    def load(cls, directory: Path) -> AgentFiles:
        _finish_swap(directory)
        missing = [name for name in (KEY, CERT, CHAIN, RECIPIENT) if not (directory / name).exists()]
        if missing:
            raise AgentError(
                f"{directory} is not an enrolled device (missing {', '.join(missing)}): run agent enroll"
            )
        key = load_key((directory / KEY).read_bytes(), None, where=str(directory / KEY))
        certificate = _certificate(directory / CERT, "certificate")
        recipient = _certificate(directory / RECIPIENT, "telemetry recipient certificate")
        return cls(directory, key, certificate, directory / CHAIN, recipient)

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context: the broker verified by the platform CA, this device's certificate."""
        return client_tls_context(client_files(self.directory))


def client_files(directory: Path) -> ClientFiles:
    """The device's TLS files, each named when damaged."""
    return ClientFiles(
        directory / CHAIN, directory / CERT, directory / KEY, "the device's", REMEDY, AgentError
    )


def _certificate(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise AgentError(f"the device's {what} {path} is damaged: not a PEM certificate; {REMEDY}") from None


class Agent:
    """An enrolled device publishing telemetry: one epoch per start."""

    def __init__(self, files: AgentFiles, epoch: int, counter: int = 0) -> None:
        self.files = files
        self.identity = identity_of(files.certificate)
        self.epoch, self.counter = epoch, counter
        recipient_key = files.recipient.public_key()
        if not isinstance(recipient_key, ec.EllipticCurvePublicKey):
            raise AgentError("the telemetry recipient key is not an EC key")
        self._sealer = Sealer(
            self.identity.device,
            files.key,
            fingerprint(files.certificate),
            recipient_key,
            key_id(recipient_key),
            epoch,
        )

    @classmethod
    def start(cls, directory: Path) -> Agent:
        """Load the device's files and begin a new epoch (on disk before any message uses it)."""
        files = AgentFiles.load(directory)
        epoch = read_state(directory)["epoch"] + 1
        if epoch >= 1 << 32:
            raise AgentError("the epoch is exhausted (2^32 starts): enrol the device again")
        _write_state(directory, {"epoch": epoch, "counter": 0})
        return cls(files, epoch)

    @property
    def topic(self) -> str:
        return telemetry_topic(self.identity.site, self.identity.zone, self.identity.device)

    def seal(self, values: dict[str, float | None], *, time_ns: int | None = None) -> bytes:
        """One message carrying `values`, signed by the device and encrypted to the platform."""
        self.counter += 1
        message = self._sealer.seal(
            payload_of(values), topic=self.topic, counter=self.counter, time_ns=time_ns or time.time_ns()
        )
        if self.counter % SAVE_EVERY == 0:
            self.save()
        return message

    def save(self) -> None:
        """Write the sequence to disk (on stop; every SAVE_EVERY messages)."""
        _write_state(self.files.directory, {"epoch": self.epoch, "counter": self.counter})


def renewal_due(certificate: x509.Certificate, now: datetime) -> bool:
    """Whether the certificate is in the last third of its life (when devices renew)."""
    return now >= renewal_starts(certificate)


def renew(
    directory: Path, api: str, *, cafile: Path | None = None, timeout: float = 30.0
) -> x509.Certificate:
    """Renew the device's certificate before it expires, with EST simplereenroll (RFC 7030 4.2.2):
    a new key, authenticated by the current certificate as TLS client certificate. The new key and
    certificate replace the old ones only once the platform answered."""
    files = AgentFiles.load(directory)
    key = new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(files.certificate.subject)
        .sign(key, hashes.SHA256())
    )
    body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
    answer = _http(
        f"{api.rstrip('/')}/.well-known/est/simplereenroll",
        body=body,
        cafile=cafile,
        timeout=timeout,
        content_type="application/pkcs10",
        client=client_files(directory),
    )
    try:
        found = pkcs7.load_der_pkcs7_certificates(base64.b64decode(answer))
    except ValueError:
        raise AgentError("the platform's answer to the renewal is not a certs-only PKCS#7") from None
    certificate = next((c for c in found if c.public_key() == key.public_key()), None)
    if certificate is None:
        raise AgentError("the platform's answer holds no certificate for the new key")
    _swap_identity(directory, key, certificate)
    return certificate


def _swap_identity(directory: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
    """Replace key and certificate together: both are written beside the old ones first, then
    renamed (key last); `AgentFiles.load` finishes a swap a crash interrupted."""
    replace_file(directory / f"{CERT}.next", certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    replace_file(directory / f"{KEY}.next", key_pem(key, None))
    (directory / f"{CERT}.next").replace(directory / CERT)
    (directory / f"{KEY}.next").replace(directory / KEY)
    fsync_directory(directory)


def _finish_swap(directory: Path) -> None:
    """Complete a key and certificate swap that stopped half way (see `_swap_identity`)."""
    pending_key, pending_cert = directory / f"{KEY}.next", directory / f"{CERT}.next"
    if pending_cert.exists() and pending_key.exists():  # neither renamed yet: the old pair is whole
        pending_cert.unlink()
        pending_key.unlink()
    elif pending_key.exists():  # the certificate is the new one already: the key must follow
        pending_key.replace(directory / KEY)
        fsync_directory(directory)
