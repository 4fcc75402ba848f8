"""The command line as an operator uses it: real processes, real stores."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from plantwarden.core import migrate
from tests.conftest import PostgresSchemas
from tests.helpers import plantwarden


def test_help_and_version(tmp_path: Path) -> None:
    result = plantwarden("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "up", "config", "db", "backup", "restore", "site"):
        assert command in result.stdout
    assert plantwarden("--version", cwd=tmp_path).stdout.startswith("plantwarden, version ")


def test_config_show_tells_values_and_their_sources_and_hides_secrets(tmp_path: Path) -> None:
    (tmp_path / "plantwarden.toml").write_text('[server]\nport = 9001\ntls = "on"\n')
    env = {
        "PLANTWARDEN_SERVER_PORT": "9002",
        "PLANTWARDEN_DATABASE_URL": "postgresql+psycopg://plant:hunter2-very-secret@db/plant",
    }
    result = plantwarden(
        "--set", "server.port=9003", "--data-dir", str(tmp_path), "config", "show", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split("=")[0].strip(): line for line in result.stdout.splitlines() if "=" in line}
    assert lines["server.port"].endswith("= 9003  # flag")
    assert lines["server.tls"].endswith("= on  # file plantwarden.toml")
    assert lines["database_url"].endswith("= **********  # env PLANTWARDEN_DATABASE_URL")
    assert "hunter2" not in result.stdout + result.stderr


def test_bad_settings_exit_with_a_clear_message(tmp_path: Path) -> None:
    result = plantwarden("--set", "server.prot=1", "config", "show", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "error [configuration_error]: unknown setting 'server.prot'; did you mean 'server.port'?"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_pki_init_takes_its_passphrase_from_the_environment_as_its_help_says(tmp_path: Path) -> None:
    """PLANTWARDEN_PKI_PASSPHRASE was refused as an unknown setting before pki init could read it."""
    env = {"PLANTWARDEN_PKI_PASSPHRASE": "correct horse battery staple 9"}
    result = plantwarden("--data-dir", str(tmp_path / "data"), "pki", "init", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "issuing CN=Plantwarden Issuing CA" in result.stdout
    misspelt = plantwarden("config", "show", cwd=tmp_path, env={"PLANTWARDEN_PKI_PASSPHRSE": "x"})
    assert misspelt.returncode == 1
    assert "did you mean PLANTWARDEN_PKI_PASSPHRASE?" in misspelt.stderr


def test_backup_restores_into_an_empty_data_directory(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        plantwarden("--data-dir", str(first), "site", "add", "plant-a", "Plant A", cwd=tmp_path).returncode
        == 0
    )
    assert (
        plantwarden(
            "--data-dir", str(first), "site", "add-segment", "plant-a", "cell-1", cwd=tmp_path
        ).returncode
        == 0
    )
    assert (
        plantwarden("--data-dir", str(first), "site", "add", "plant-b", "Plant B", cwd=tmp_path).returncode
        == 0
    )
    archive = tmp_path / "plant.tar.gz"
    made = plantwarden("--data-dir", str(first), "backup", str(archive), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert re.search(r"backed up 8 rows in \d+ tables", made.stdout)  # 2 sites, 3 segments, 3 events
    with tarfile.open(archive) as opened:
        assert {"manifest.json", "tables/sites.jsonl", "tables/network_segments.jsonl"} <= set(
            opened.getnames()
        )

    again = plantwarden("--data-dir", str(first), "backup", str(archive), cwd=tmp_path)
    assert again.returncode != 0 and "never overwrite" in again.stderr

    restored = plantwarden("--data-dir", str(second), "restore", str(archive), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    listing = plantwarden("--data-dir", str(second), "site", "list", cwd=tmp_path).stdout
    assert listing.splitlines() == [
        "plant-a\tPlant A\tsegments: cell-1, default",
        "plant-b\tPlant B\tsegments: default",
    ]
    refused = plantwarden("--data-dir", str(second), "restore", str(archive), cwd=tmp_path)
    assert refused.returncode == 1 and "restore needs an empty store" in refused.stderr


def test_backup_defaults_to_the_data_directory(tmp_path: Path) -> None:
    assert (
        plantwarden("--data-dir", str(tmp_path), "site", "add", "plant-a", "A", cwd=tmp_path).returncode == 0
    )
    result = plantwarden("--data-dir", str(tmp_path), "backup", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (archive,) = (tmp_path / "backups").glob("plantwarden-*.tar.gz")
    assert str(archive) in result.stdout


def test_restore_into_postgresql_and_upgrade_with_the_cli(tmp_path: Path, postgres: PostgresSchemas) -> None:
    assert (
        plantwarden("--data-dir", str(tmp_path), "site", "add", "plant-a", "Plant A", cwd=tmp_path).returncode
        == 0
    )
    archive = tmp_path / "b.tar.gz"
    assert plantwarden("--data-dir", str(tmp_path), "backup", str(archive), cwd=tmp_path).returncode == 0
    url, _schema = postgres.url_with_schema()
    env = {"PLANTWARDEN_DATABASE_URL": url}
    restored = plantwarden("restore", str(archive), cwd=tmp_path, env=env)
    assert restored.returncode == 0, restored.stderr
    assert "postgres:***@" in restored.stdout or "postgresql+psycopg://postgres@" in restored.stdout
    current = plantwarden("db", "current", cwd=tmp_path, env=env)
    assert f"revision: {migrate.head_revision()}" in current.stdout
    assert plantwarden("site", "list", cwd=tmp_path, env=env).stdout.startswith("plant-a\tPlant A")


def test_db_upgrade_moves_an_old_store_to_the_head(tmp_path: Path) -> None:
    first = migrate.known_revisions()[0]
    old = plantwarden("--data-dir", str(tmp_path), "db", "upgrade", "--revision", first, cwd=tmp_path)
    assert old.returncode == 0 and f"(empty) -> {first}" in old.stdout
    refused = plantwarden("--data-dir", str(tmp_path), "site", "list", cwd=tmp_path)
    assert refused.returncode == 1 and "plantwarden db upgrade" in refused.stderr
    upgraded = plantwarden("--data-dir", str(tmp_path), "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0 and f"{first} -> {migrate.head_revision()}" in upgraded.stdout
    assert plantwarden("--data-dir", str(tmp_path), "site", "list", cwd=tmp_path).returncode == 0


def test_db_upgrade_to_a_revision_alembic_cannot_resolve_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    for revision, message in [
        ("", "the revision to upgrade to is empty"),
        ("²", "cannot upgrade to revision '²': Can't locate revision identified by '²'"),
        ("-1", "cannot upgrade to revision '-1': Relative revision -1 didn't produce 1 migrations"),
        ("a:b", "cannot upgrade to revision 'a:b': Range revision not allowed"),
    ]:
        result = plantwarden(
            "--data-dir", str(tmp_path), "db", "upgrade", "--revision", revision, cwd=tmp_path
        )
        assert result.returncode == 1, result.stderr
        assert f"error [invalid_input]: {message}" in result.stderr and "Traceback" not in result.stderr
        if revision:
            assert f"from 0001_sites to {migrate.head_revision()}, the head" in result.stderr
