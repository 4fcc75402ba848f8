from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from plantwarden.core.errors import ConfigurationError
from plantwarden.web.settings import ServerSettings
from plantwarden.web.tls import is_loopback, tls_for


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.31.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("plant-console", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_on_loopback(tmp_path: Path) -> None:
    assert tls_for(ServerSettings(), tmp_path) is None
    assert tls_for(ServerSettings(tls="off"), tmp_path) is None


def test_plain_http_elsewhere_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="only on loopback"):
        tls_for(ServerSettings(host="0.0.0.0", tls="off"), tmp_path)


def test_a_certificate_is_generated_for_other_addresses_and_reused(tmp_path: Path) -> None:
    files = tls_for(ServerSettings(host="10.1.2.3"), tmp_path)
    assert files is not None and files.generated
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    again = tls_for(ServerSettings(host="10.1.2.3"), tmp_path)
    assert again is not None and again.cert.read_bytes() == files.cert.read_bytes()


def test_tls_on_loopback_when_asked(tmp_path: Path) -> None:
    assert tls_for(ServerSettings(tls="on"), tmp_path) is not None


def test_configured_files_must_exist_and_come_in_pairs(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="set together"):
        tls_for(ServerSettings(host="0.0.0.0", tls_cert=tmp_path / "c.pem"), tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        tls_for(ServerSettings(tls="on", tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"), tmp_path)


def test_configured_files_with_tls_off_are_refused_not_unused(tmp_path: Path) -> None:
    """With tls = off they were ignored and the console served plain HTTP; a key alone on loopback
    under tls = auto was ignored too."""
    files = ServerSettings(tls="off", tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem")
    with pytest.raises(ConfigurationError, match=r"server\.tls = off serves plain HTTP"):
        tls_for(files, tmp_path)
    with pytest.raises(ConfigurationError, match="set together"):
        tls_for(ServerSettings(tls_key=tmp_path / "k.pem"), tmp_path)


def test_a_new_key_never_goes_into_a_key_file_others_can_read(tmp_path: Path) -> None:
    """An earlier version left server.key 0644: the new key used to be written into that file
    and only then chmod'ed 0600 (and a failure part-way truncated the key in use). A second name
    of the old file shows what others could read."""
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "server.key").write_bytes(b"the key in use\n")
    (directory / "server.key").chmod(0o644)
    readable = tmp_path / "readable-by-others"
    readable.hardlink_to(directory / "server.key")
    files = tls_for(ServerSettings(host="10.1.2.3"), tmp_path)
    assert files is not None and b"PRIVATE KEY" in files.key.read_bytes()
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert readable.read_bytes() == b"the key in use\n"
