"""Device certificates issued per second from CSRs, against the openssl binary, in the same run.

Input: N device CSRs (ECDSA P-256, made in advance), each issued for its own device with the
same profile: subject CN/OU/O, SAN URI, key usage, EKU clientAuth, SKI/AKI and the Modbus/TCP
Security role extension (a UTF8String), 90 days, signed with ECDSA-SHA256 by the issuing CA.

1. Ours without the store: `check_csr` (signature, P-256) and `device_certificate`.
2. Ours with the store: `services.issue` on SQLite in a temporary data directory, one
   transaction per certificate (what an enrolment does), with the record, the asset lookup and
   the audit entry.
3. The reference, per process: `openssl x509 -req -CA ... -extfile` once per CSR (how scripts
   issue certificates), on fewer CSRs (a process each is slow).
4. The reference in one process: `openssl ca -batch -infiles ...` signs every CSR in one run
   (its text database and serial file included): the nearest in-process equivalent openssl has.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import URL, make_url

from plantwarden.core import migrate
from plantwarden.core.auditlog import AuditKeys, AuditLog, Checkpoints
from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store, create_store_engine
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.certs import DeviceIdentity, check_csr, device_certificate

PASSPHRASE = b"bench passphrase, not secret"
EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:urn:plantwarden:plant-a:device:bench
1.3.6.1.4.1.50316.802.1 = ASN1:UTF8String:operator
"""
CA_CONFIG = (
    """[ca]
default_ca = bench
[bench]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir/issued
certificate = {cert}
private_key = {key}
default_md = sha256
default_days = 90
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = device
[anything]
commonName = supplied
organizationalUnitName = optional
organizationName = optional
[device]
"""
    + EXTENSIONS
)


def csrs(count: int) -> list[x509.CertificateSigningRequest]:
    """`count` CSRs of devices, each with a key of its own."""
    made = []
    for index in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "plant-a"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "cell-1"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"device-{index}"),
            ]
        )
        made.append(x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()))
    return made


def ours_bare(ca: CertificateAuthority, requests: list[x509.CertificateSigningRequest]) -> float:
    started = time.perf_counter()
    now = datetime.now(UTC)
    for index, csr in enumerate(requests):
        key = check_csr(csr)
        identity = DeviceIdentity("plant-a", f"device-{index}", "cell-1", "operator")
        device_certificate(identity, key, issuer=ca.issuing, issuer_key=ca.issuing_key, now=now)
    return time.perf_counter() - started


def ours_store(ca: CertificateAuthority, requests: list[x509.CertificateSigningRequest], work: Path) -> float:
    store = Store(create_store_engine(_sqlite(work / "store.db")))
    migrate.ensure_ready(store)
    audit = AuditLog(keys=AuditKeys.generate(), checkpoints=Checkpoints(path=work / "checkpoints.log"))
    ctx = Context(source="bench", clock=SystemClock(), actor="bench")
    started = time.perf_counter()
    for index, csr in enumerate(requests):
        identity = DeviceIdentity("plant-a", f"device-{index}", "cell-1", "operator")
        with store.transaction() as session:
            services.issue(session, ctx, audit, ca, identity=identity, csr=csr)
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def _sqlite(path: Path) -> URL:
    return make_url(f"sqlite:///{path}")


def _openssl(args: list[str]) -> None:
    """Run the openssl binary; a failure says what openssl said (not its long argument list)."""
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)  # noqa: S607 - the system's openssl is the reference
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-800:]}")


def openssl_per_process(ca: CertificateAuthority, files: list[Path], work: Path) -> float:
    extfile = work / "device.ext"
    extfile.write_text(EXTENSIONS)
    cert, key = ca.directory / "issuing-ca.pem", ca.directory / "issuing-ca.key"
    started = time.perf_counter()
    for index, csr in enumerate(files):
        _openssl(
            ["x509", "-req", "-in", str(csr), "-CA", str(cert), "-CAkey", str(key), "-set_serial",
             str(1000 + index), "-days", "90", "-sha256", "-extfile", str(extfile), "-out",
             str(work / f"out-{index}.pem")]
        )  # fmt: skip
    return time.perf_counter() - started


def openssl_one_process(ca: CertificateAuthority, files: list[Path], work: Path) -> float:
    home = work / "ca"
    (home / "issued").mkdir(parents=True)
    (home / "index.txt").write_text("")
    (home / "serial").write_text("1000\n")
    config = home / "ca.cnf"
    config.write_text(
        CA_CONFIG.format(dir=home, cert=ca.directory / "issuing-ca.pem", key=ca.directory / "issuing-ca.key")
    )
    started = time.perf_counter()
    _openssl(
        ["ca", "-batch", "-config", str(config), "-notext", "-out",
         str(home / "all.pem"), "-infiles", *map(str, files)]
    )  # fmt: skip
    seconds = time.perf_counter() - started
    issued = len(list((home / "issued").iterdir()))  # openssl ca keeps a copy of each
    assert issued == len(files), f"openssl ca issued {issued} of {len(files)}"
    return seconds


def run(*, quick: bool = False) -> None:
    count, per_process = (200, 50) if quick else (2000, 300)
    with tempfile.TemporaryDirectory(prefix="pw-bench-pki-") as folder:
        work = Path(folder)
        ca = CertificateAuthority.initialise(work / "pki", PASSPHRASE)
        requests = csrs(count)
        files = []
        for index, csr in enumerate(requests):
            path = work / f"csr-{index}.pem"
            path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
            files.append(path)
        bare = ours_bare(ca, requests)
        stored = ours_store(ca, requests, work)
        per = openssl_per_process(ca, files[:per_process], work)
        one = openssl_one_process(ca, files, work)
    rates = {
        "ours, without the store (check_csr + device_certificate)": count / bare,
        "ours, with the store (services.issue, SQLite, audit)": count / stored,
        f"openssl x509 -req, a process per CSR ({per_process})": per_process / per,
        "openssl ca -batch -infiles, one process": count / one,
    }
    print(f"## pki_issue: {count:,} P-256 CSRs, one core, same run")
    for label, rate in rates.items():
        print(f"{label:62} {rate:>10,.0f} certificates/s")
    reference = rates[f"openssl x509 -req, a process per CSR ({per_process})"]
    in_process = rates["openssl ca -batch -infiles, one process"]
    print(f"{'ours without the store / openssl per process':62} {count / bare / reference:>10.1f}x")
    print(f"{'ours without the store / openssl ca (one process)':62} {count / bare / in_process:>10.1f}x")
    print(f"{'ours with the store / openssl per process':62} {count / stored / reference:>10.1f}x")


if __name__ == "__main__":
    run()
