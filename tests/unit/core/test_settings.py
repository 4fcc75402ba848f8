from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.cli.catalog import SECTIONS
from plantwarden.cli.config import config_group
from plantwarden.core.config import CoreSettings
from plantwarden.core.errors import ConfigurationError
from plantwarden.core.logs import RedactSecrets
from plantwarden.core.settings import (
    COMMAND_ENV,
    ENV_PREFIX,
    REDACTED,
    Secret,
    load_settings,
    parse_assignment,
    render_reference,
)
from plantwarden.web.settings import ServerSettings
from tests.output_support import files_of, full_disk

ROOT = Path(__file__).resolve().parents[3]


def write_toml(directory: Path, text: str) -> Path:
    path = directory / "plantwarden.toml"
    path.write_text(text)
    return path


def test_defaults_apply_when_nothing_is_given(tmp_path: Path) -> None:
    settings = load_settings(SECTIONS, environ={}, cwd=tmp_path)
    assert settings[ServerSettings].port == 8000
    assert settings[ServerSettings].host == "127.0.0.1"
    assert settings[CoreSettings].database_url is None
    assert settings.sources["server.port"] == "default"
    assert settings.config_file is None


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    write_toml(tmp_path, 'log_level = "WARNING"\n[server]\nport = 9001\nhost = "127.0.0.2"\ntls = "on"\n')
    environ = {"PLANTWARDEN_SERVER_PORT": "9002", "PLANTWARDEN_SERVER_HOST": "127.0.0.3"}
    settings = load_settings(SECTIONS, environ=environ, cwd=tmp_path, overrides={"server.port": "9003"})
    server = settings[ServerSettings]
    assert server.port == 9003 and settings.sources["server.port"] == "flag"
    assert server.host == "127.0.0.3" and settings.sources["server.host"] == "env PLANTWARDEN_SERVER_HOST"
    assert server.tls == "on" and settings.sources["server.tls"] == "file plantwarden.toml"
    assert settings.value("log_level") == "WARNING"
    assert settings.sources["supervisor.max_backoff"] == "default"


def test_config_file_can_be_named_by_environment(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[server]\nport = 8111\n")
    settings = load_settings(SECTIONS, environ={"PLANTWARDEN_CONFIG": str(path)}, cwd=tmp_path)
    assert settings[ServerSettings].port == 8111
    assert settings.config_file == path


def test_a_named_config_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(SECTIONS, environ={}, config_file=tmp_path / "missing.toml")
    with pytest.raises(ConfigurationError, match="is a directory, not a TOML file"):
        load_settings(SECTIONS, environ={}, config_file=tmp_path)


def test_a_config_file_that_is_not_utf8_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b'# Leitstand S\xc3\xbcd\nlog_level = "\xff\xfe"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings(SECTIONS, environ={}, config_file=path)
    assert caught.value.message == (
        f"cannot read configuration file {path}: not UTF-8 text (line 2, byte 0xff at offset 30)"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 1\n", "unknown setting 'server.prot'.*did you mean 'server.port'"),
        ('[server]\nport = "eighty"\n', "server.port.*expected an integer"),
        ('[server]\ntls = "maybe"\n', "'maybe' is not one of auto, on, off"),
        ("log_level = 3\n", "expected a string"),
        ("[server\n", "cannot read configuration file"),
        ("[server]\nport = 70000\n", r"'server.port' must be a TCP port \(1-65535\), not 70000"),
        ("[server]\nport = 0\n", r"'server.port' must be a TCP port"),
        ('[server]\nport = "١٢"\n', "expected an integer in ASCII digits, got '١٢'"),
        ('[server]\nport = "8_000"\n', "expected an integer in ASCII digits"),
        ("[accounts]\nhash_wait_seconds = nan\n", "expected a finite number, got nan"),
        ("[accounts]\nhash_wait_seconds = inf\n", "expected a finite number, got inf"),
        ('[accounts]\nhash_wait_seconds = "1e999"\n', "expected a finite number, got '1e999'"),
        ('[accounts]\nhash_wait_seconds = "²"\n', "expected a number, got '²'"),
    ],
)
def test_bad_config_files_get_clear_errors(tmp_path: Path, toml: str, message: str) -> None:
    write_toml(tmp_path, toml)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(SECTIONS, environ={}, cwd=tmp_path)


def test_unknown_environment_variable_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"PLANTWARDEN_SERVER_PROT.*PLANTWARDEN_SERVER_PORT"):
        load_settings(SECTIONS, environ={"PLANTWARDEN_SERVER_PROT": "1"}, cwd=tmp_path)


def test_the_variables_commands_read_are_not_taken_for_misspelt_settings(tmp_path: Path) -> None:
    """`pki init` reads PLANTWARDEN_PKI_PASSPHRASE, `agent enroll` PLANTWARDEN_ENROLMENT_TOKEN; with
    either set, every command that read the settings stopped at 'unknown environment variable'."""
    environ = {"PLANTWARDEN_PKI_PASSPHRASE": "a passphrase", "PLANTWARDEN_ENROLMENT_TOKEN": "a token"}
    load_settings(SECTIONS, environ=environ, cwd=tmp_path)
    with pytest.raises(
        ConfigurationError, match=r"PLANTWARDEN_PKI_PASSPHRSE; did you mean PLANTWARDEN_PKI_PASSPHRASE"
    ):
        load_settings(SECTIONS, environ={"PLANTWARDEN_PKI_PASSPHRSE": "x"}, cwd=tmp_path)


def test_every_plantwarden_variable_the_source_names_is_a_setting_or_a_command_s(tmp_path: Path) -> None:
    """A `PLANTWARDEN_*` name in the source is a setting's variable, one of `COMMAND_ENV`, or a
    setting's default value (the event stream's name), so that none is refused at start."""
    settings = load_settings(SECTIONS, environ={}, cwd=tmp_path)
    known = {d.env_var for d in settings.declared} | COMMAND_ENV | {ENV_PREFIX}
    defaults = {d.default for d in settings.declared if isinstance(d.default, str)}
    named = set()
    for path in (ROOT / "src" / "plantwarden").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named |= set(re.findall(r"\bPLANTWARDEN_[A-Z0-9_]*", node.value))
    assert len(named) > 5
    assert named - known - defaults == set()


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False)])
def test_booleans_parse_from_text(raw: str, expected: bool) -> None:
    from dataclasses import dataclass

    from plantwarden.core.settings import SettingsSection, setting

    @dataclass(frozen=True)
    class Flags(SettingsSection):
        section = "flags"
        enabled: bool = setting(False, "a flag")

    assert load_settings([Flags], environ={"PLANTWARDEN_FLAGS_ENABLED": raw})[Flags].enabled is expected


def test_numbers_from_the_environment_are_read_in_ascii(tmp_path: Path) -> None:
    environ = {"PLANTWARDEN_SERVER_PORT": " 8080 ", "PLANTWARDEN_ACCOUNTS_HASH_WAIT_SECONDS": "2.5e0"}
    settings = load_settings(SECTIONS, environ=environ, cwd=tmp_path)
    assert settings[ServerSettings].port == 8080
    assert settings.value("accounts.hash_wait_seconds") == 2.5
    with pytest.raises(ConfigurationError, match="PLANTWARDEN_SERVER_PORT: expected an integer in ASCII"):
        load_settings(SECTIONS, environ={"PLANTWARDEN_SERVER_PORT": "٨٠٨٠"}, cwd=tmp_path)


def test_optional_settings_clear_with_an_empty_value(tmp_path: Path) -> None:
    settings = load_settings(SECTIONS, environ={"PLANTWARDEN_SERVER_TLS_CERT": ""}, cwd=tmp_path)
    assert settings[ServerSettings].tls_cert is None


def test_paths_expand_the_home_directory(tmp_path: Path) -> None:
    settings = load_settings(SECTIONS, environ={}, cwd=tmp_path, overrides={"data_dir": "~/pw"})
    assert settings[CoreSettings].data_dir == Path.home() / "pw"


def test_secrets_never_show(tmp_path: Path) -> None:
    url = "postgresql+psycopg://plant:hunter2-very-secret@db.example/plant"
    settings = load_settings(SECTIONS, environ={"PLANTWARDEN_DATABASE_URL": url}, cwd=tmp_path)
    secret = settings[CoreSettings].database_url
    assert isinstance(secret, Secret) and secret.reveal() == url
    assert "hunter2" not in repr(settings[CoreSettings])
    assert "hunter2" not in str(secret)
    assert settings.display("database_url") == REDACTED
    assert settings.secret_values() == ["plant:hunter2-very-secret"]  # what hides the password


def test_a_secret_that_is_not_a_url_is_hidden_whole_whatever_it_holds(tmp_path: Path) -> None:
    key = "abc://hunter2-a-webhook-key-with-a-colon"
    settings = load_settings(SECTIONS, environ={"PLANTWARDEN_NOTIFY_WEBHOOK_SECRET": key}, cwd=tmp_path)
    assert key in settings.secret_values()


@pytest.mark.parametrize(
    ("url", "hidden", "shown"),
    [
        (
            "postgresql+psycopg://plant:hunter2-very-secret@db.example/plant",
            ["plant:hunter2-very-secret"],
            "postgresql+psycopg://**********@db.example/plant",
        ),
        (
            "postgresql+psycopg://plant@db.example/plant?sslmode=require&password=hunter2",
            ["password=hunter2"],
            "postgresql+psycopg://plant@db.example/plant?sslmode=require&**********",
        ),
        ("sqlite:////srv/plantwarden/plantwarden.db", [], "sqlite:////srv/plantwarden/plantwarden.db"),
    ],
)
def test_a_database_url_in_the_logs_hides_its_credentials_only(
    tmp_path: Path, url: str, hidden: list[str], shown: str
) -> None:
    """The logs say which store a process uses ('store **********' said nothing) and never its password."""
    settings = load_settings(SECTIONS, environ={"PLANTWARDEN_DATABASE_URL": url}, cwd=tmp_path)
    assert settings.secret_values() == hidden
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "store %s", (url,), None)
    RedactSecrets(settings.secret_values()).filter(record)
    assert record.getMessage() == f"store {shown}"


def test_log_records_have_secrets_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    redactor = RedactSecrets(["hunter2-very-secret"])
    logger.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("connecting with %s", "postgresql://plant:hunter2-very-secret@db/plant")
    finally:
        logger.removeFilter(redactor)
    assert "hunter2" not in caplog.text
    assert f"postgresql://plant:{REDACTED}@db/plant" in caplog.text


def test_assignments_split_on_the_first_equals() -> None:
    assert parse_assignment("database_url=postgresql://a?b=c") == ("database_url", "postgresql://a?b=c")
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        parse_assignment("port")


def test_settings_reference_in_docs_is_current() -> None:
    expected = render_reference(SECTIONS)
    actual = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/settings.md is stale: run `plantwarden config reference -o docs/settings.md`"
    )


def test_reference_lists_every_setting_with_its_environment_variable() -> None:
    text = render_reference(SECTIONS)
    for key, env in [("data_dir", "PLANTWARDEN_DATA_DIR"), ("server.port", "PLANTWARDEN_SERVER_PORT")]:
        assert f"| `{key}` |" in text and f"`{env}`" in text


def test_config_reference_keeps_the_file_it_would_replace_when_the_disk_fills_up(tmp_path: Path) -> None:
    reference = tmp_path / "settings.md"
    reference.write_text("# the reference as it was\n" * 40, encoding="utf-8")
    before = files_of(tmp_path)
    with pytest.raises(OSError, match="File too large"), full_disk():
        CliRunner().invoke(config_group, ["reference", "-o", str(reference)], catch_exceptions=False)
    assert files_of(tmp_path) == before
    result = CliRunner().invoke(config_group, ["reference", "-o", str(reference)], catch_exceptions=False)
    assert result.exit_code == 0 and reference.read_text(encoding="utf-8") == render_reference(SECTIONS)
    assert (result.stdout, result.stderr) == ("", f"wrote {reference}\n")  # stdout is the reference's only
