"""The layer direction of docs/architecture.md is checked by import-linter, and a breach fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_environment

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(source_root: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts over the package found in `source_root`."""
    shutil.copy(ROOT / "pyproject.toml", workdir / "pyproject.toml")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(workdir / "pyproject.toml")],
        cwd=workdir,
        env=clean_environment({"PYTHONPATH": str(source_root)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    source_root = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "plantwarden", source_root / "plantwarden")
    return source_root


def test_the_tree_keeps_the_layer_direction(package_copy: Path, tmp_path: Path) -> None:
    result = lint_imports(package_copy, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout  # the layers, and pure protocols


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        ("core/leak.py", "from plantwarden.web import app\n", "plantwarden.core.leak -> plantwarden.web.app"),
        ("zones/leak.py", "import plantwarden.cli.main\n", "plantwarden.zones.leak -> plantwarden.cli.main"),
        ("web/leak.py", "from plantwarden.cli import state\n", "plantwarden.web.leak -> plantwarden.cli"),
        (
            "protocols/leak.py",
            "from plantwarden.core import errors\n",
            "plantwarden.protocols.leak -> plantwarden.core.errors",
        ),
    ],
)
def test_an_import_against_the_direction_fails(
    package_copy: Path, tmp_path: Path, module: str, statement: str, broken: str
) -> None:
    (package_copy / "plantwarden" / module).write_text(statement)
    result = lint_imports(package_copy, tmp_path)
    assert result.returncode != 0
    assert "1 kept, 1 broken" in result.stdout
    assert broken in result.stdout


def test_a_package_missing_from_the_diagram_fails(package_copy: Path, tmp_path: Path) -> None:
    (package_copy / "plantwarden" / "utils").mkdir()
    (package_copy / "plantwarden" / "utils" / "__init__.py").write_text("")
    result = lint_imports(package_copy, tmp_path)
    assert result.returncode != 0
    assert "plantwarden.utils" in result.stdout
