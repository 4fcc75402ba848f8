"""Settings declared as data, resolved once at start and passed explicitly.

Each package declares a frozen dataclass subclassing `SettingsSection`; every field is made with
`setting(default, help, ...)` so that its name, type, default, help and secrecy are data that
the command line, the docs generator and `plantwarden config show` all read.

Resolution order, lowest first: declared defaults < `plantwarden.toml` < `PLANTWARDEN_*`
environment variables < command-line flags. The result is an immutable `Settings` value that
remembers where each value came from.

Key naming: the core section has no prefix (`data_dir`, env `PLANTWARDEN_DATA_DIR`, top level of
the TOML file); other sections are dotted (`server.port`, env `PLANTWARDEN_SERVER_PORT`,
`[server] port = 8000` in the TOML file).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.parsing import INTEGER, NUMBER, NotUtf8Text, utf8_text

ENV_PREFIX = "PLANTWARDEN_"
CONFIG_ENV = "PLANTWARDEN_CONFIG"
PKI_PASSPHRASE_ENV = "PLANTWARDEN_PKI_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
ENROLMENT_TOKEN_ENV = "PLANTWARDEN_ENROLMENT_TOKEN"  # noqa: S105 - the variable's name, not a secret
COMMAND_ENV = frozenset({CONFIG_ENV, PKI_PASSPHRASE_ENV, ENROLMENT_TOKEN_ENV})
"""`PLANTWARDEN_*` variables that are not settings: the configuration file, and what a command
reads itself (the root CA's passphrase, a device's enrolment token). Any other `PLANTWARDEN_*`
variable must name a setting: a misspelt one is refused rather than silently ignored."""
_COMMAND_NAMES = ", ".join(f"`{name}`" for name in sorted(COMMAND_ENV))
CONFIG_FILE_NAME = "plantwarden.toml"
REDACTED = "**********"

T = TypeVar("T")
S = TypeVar("S", bound="SettingsSection")


class Secret:
    """A string that never shows itself in reprs, logs, pages or `config show`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value; call this only where the value is used, never to print."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def setting(default: T, help: str, *, choices: Sequence[str] | None = None) -> T:  # noqa: A002
    """Declare one setting of a `SettingsSection` (a dataclass field with its help as data)."""
    metadata = {"help": help, "choices": tuple(choices) if choices else None}
    field: Any = dataclasses.field(default=default, metadata=metadata)
    return typing.cast(T, field)


class SettingsSection:
    """Base of every settings dataclass. Subclasses set `section` ("" for the core section)."""

    section: ClassVar[str] = ""
    doc: ClassVar[str] = ""


@dataclass(frozen=True)
class SettingDeclaration:
    """One setting as data: what the docs, the CLI and `config show` know about it."""

    key: str
    field_name: str
    type: Any
    default: Any
    help: str
    secret: bool
    choices: tuple[str, ...] | None
    section: type[SettingsSection]

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "_")

    @property
    def type_name(self) -> str:
        base, optional = _unwrap_optional(self.type)
        name = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}.get(
            base, "secret" if base is Secret else getattr(base, "__name__", str(base))
        )
        return f"{name} (optional)" if optional else name


def declarations(sections: Iterable[type[SettingsSection]]) -> list[SettingDeclaration]:
    """List every setting of the given sections, checking that keys and env names are unique."""
    found: list[SettingDeclaration] = []
    seen_env: dict[str, str] = {}
    for section in sections:
        hints = typing.get_type_hints(section)
        for field in dataclasses.fields(section):  # type: ignore[arg-type]
            key = f"{section.section}.{field.name}" if section.section else field.name
            base, _ = _unwrap_optional(hints[field.name])
            declaration = SettingDeclaration(
                key=key,
                field_name=field.name,
                type=hints[field.name],
                default=field.default,
                help=field.metadata.get("help", ""),
                secret=base is Secret,
                choices=field.metadata.get("choices"),
                section=section,
            )
            if declaration.env_var in seen_env or declaration.env_var == CONFIG_ENV:
                raise ConfigurationError(
                    f"settings {key!r} and {seen_env.get(declaration.env_var, 'config')!r} "
                    f"share the environment variable {declaration.env_var}"
                )
            seen_env[declaration.env_var] = key
            found.append(declaration)
    return found


@dataclass(frozen=True)
class Settings:
    """Resolved settings: one instance per section, and where each value came from."""

    sections: Mapping[type[SettingsSection], SettingsSection]
    sources: Mapping[str, str]
    declared: tuple[SettingDeclaration, ...]
    config_file: Path | None

    def __getitem__(self, section: type[S]) -> S:
        try:
            return typing.cast(S, self.sections[section])
        except KeyError:
            raise ConfigurationError(f"settings section {section.__name__} is not loaded") from None

    def value(self, key: str) -> Any:
        """The resolved value of a setting by its key (`server.port`)."""
        declaration = self._declaration(key)
        return getattr(self.sections[declaration.section], declaration.field_name)

    def display(self, key: str) -> str:
        """The value as `config show` prints it: secrets redacted, None as `(unset)`."""
        value = self.value(key)
        if value is None:
            return "(unset)"
        if isinstance(value, Secret):
            return REDACTED
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def secret_values(self) -> list[str]:
        """Every secret value in force, for the log redaction filter. A URL's secret is its
        credentials (`user:password`, a `password=` in the query), so that the logs still say which
        store a process uses (`store sqlite:////srv/plantwarden/plantwarden.db`), where the whole URL
        hidden told nothing; a URL without credentials hides nothing."""
        values = ((d.key, self.value(d.key)) for d in self.declared if d.secret)
        return [
            part
            for key, v in values
            if isinstance(v, Secret)
            for part in _secret_parts(v.reveal(), url=key.endswith("_url"))
        ]

    def _declaration(self, key: str) -> SettingDeclaration:
        for declaration in self.declared:
            if declaration.key == key:
                return declaration
        raise ConfigurationError(f"unknown setting {key!r}{_suggest(key, self.declared)}")


def _secret_parts(value: str, *, url: bool) -> list[str]:
    """What of a secret value to hide in logs: the whole of it, or, for a setting that is a URL
    (`*_url`), its credentials (never decided by the value's look: a key that held '://' would
    otherwise be shown)."""
    if not url or "://" not in value:
        return [value] if value else []
    parts = urllib.parse.urlsplit(value)
    found = []
    if parts.password:
        found.append(parts.netloc.rpartition("@")[0])  # user:password, as the URL spells it
    for pair in parts.query.split("&"):
        key, _, secret = pair.partition("=")
        if secret and "password" in key.lower():
            found.append(pair)
    return found


def load_settings(
    sections: Sequence[type[SettingsSection]],
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings: defaults < TOML file < `PLANTWARDEN_*` environment < `overrides`.

    `config_file` (or `PLANTWARDEN_CONFIG`) names the TOML file; without either,
    `plantwarden.toml` in `cwd` is read when it exists. Unknown keys in the file, the environment
    or the overrides are errors that name the nearest known key.
    """
    environ = os.environ if environ is None else environ
    declared = tuple(declarations(sections))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {d.key: "default" for d in declared}

    path = _config_path(config_file, environ, cwd or Path.cwd())
    if path is not None:
        for key, raw in _read_toml(path, declared).items():
            values[key] = _coerce(_find(declared, key), raw, f"{path}")
            sources[key] = f"file {path.name}"
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in COMMAND_ENV:
            continue
        declaration = _by_env(declared, name)
        values[declaration.key] = _coerce(declaration, raw, f"environment {name}")
        sources[declaration.key] = f"env {name}"
    for key, raw in (overrides or {}).items():
        declaration = _find(declared, key)
        values[key] = _coerce(declaration, raw, "command line")
        sources[key] = "flag"

    built: dict[type[SettingsSection], SettingsSection] = {}
    for section in sections:
        kwargs = {d.field_name: values[d.key] for d in declared if d.section is section and d.key in values}
        built[section] = section(**kwargs)
    return Settings(sections=built, sources=sources, declared=declared, config_file=path)


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a command-line `KEY=VALUE` assignment."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigurationError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def render_reference(sections: Sequence[type[SettingsSection]]) -> str:
    """The settings reference (Markdown) generated from the declarations."""
    lines = [
        "# Settings reference",
        "",
        "<!-- Generated by `plantwarden config reference`; do not edit by hand. -->",
        "",
        "Resolution order, lowest first: defaults < `plantwarden.toml` (or the file named by",
        "`--config` / `PLANTWARDEN_CONFIG`) < `PLANTWARDEN_*` environment variables < command-line",
        "flags (`--set KEY=VALUE`, and the flags of each command). Secrets are never printed: the",
        "logs hide each secret's value, and of a URL (`database_url`) its credentials, so that they",
        "still name the store (`store postgresql+psycopg://plantwarden:***@db.plant.local/plantwarden`).",
        "An integer is written in ASCII digits; a number is finite (not nan or inf); a boolean is",
        "true/false, yes/no, on/off or 1/0. A value that is not one is refused, naming the setting.",
        f"Every `{ENV_PREFIX}*` environment variable names a setting below, except {_COMMAND_NAMES},",
        "which name the configuration file or are read by the commands themselves (`pki` the root",
        "CA's passphrase, `agent enroll` a device's token); any other is refused, with the nearest",
        "name, rather than ignored.",
        "",
    ]
    for section in sections:
        title = f"`[{section.section}]`" if section.section else "core (top level of the file)"
        lines += [f"## {title}", ""]
        if section.doc:
            lines += [section.doc, ""]
        lines += ["| key | type | default | environment | description |", "|---|---|---|---|---|"]
        for d in declarations([section]):
            default = "(unset)" if d.default is None else f"`{_toml_literal(d.default)}`"
            description = d.help + (f" One of: {', '.join(d.choices)}." if d.choices else "")
            lines.append(f"| `{d.key}` | {d.type_name} | {default} | `{d.env_var}` | {description} |")
        lines.append("")
    return "\n".join(lines)


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    return str(value)


def _config_path(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    if explicit is not None:
        chosen = explicit
    elif environ.get(CONFIG_ENV):
        chosen = Path(environ[CONFIG_ENV])
    else:
        default = cwd / CONFIG_FILE_NAME
        return default if default.is_file() else None
    if chosen.is_dir():
        raise ConfigurationError(f"configuration file {chosen} is a directory, not a TOML file")
    if not chosen.is_file():
        raise ConfigurationError(f"configuration file {chosen} does not exist")
    return chosen


def _read_toml(path: Path, declared: Sequence[SettingDeclaration]) -> dict[str, Any]:
    try:
        document = tomllib.loads(utf8_text(path.read_bytes()))
    except (OSError, NotUtf8Text, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"cannot read configuration file {path}: {error}") from error
    flat: dict[str, Any] = {}
    section_names = {d.section.section for d in declared if d.section.section}
    for name, value in document.items():
        if isinstance(value, dict) and name in section_names:
            flat.update({f"{name}.{inner}": v for inner, v in value.items()})
        else:
            flat[name] = value
    for key in flat:
        _find(declared, key, where=f" in {path}")
    return flat


def _find(declared: Sequence[SettingDeclaration], key: str, where: str = "") -> SettingDeclaration:
    for declaration in declared:
        if declaration.key == key:
            return declaration
    raise ConfigurationError(f"unknown setting {key!r}{where}{_suggest(key, declared)}")


def _by_env(declared: Sequence[SettingDeclaration], name: str) -> SettingDeclaration:
    for declaration in declared:
        if declaration.env_var == name:
            return declaration
    names = [d.env_var for d in declared] + sorted(COMMAND_ENV)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigurationError(f"unknown environment variable {name}{hint}")


def _suggest(key: str, declared: Sequence[SettingDeclaration]) -> str:
    close = difflib.get_close_matches(key, [d.key for d in declared], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(declaration: SettingDeclaration, raw: Any, source: str) -> Any:
    base, optional = _unwrap_optional(declaration.type)
    where = f"setting {declaration.key!r} from {source}"
    if optional and (raw is None or raw == ""):
        return None
    try:
        value = _convert(base, raw)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {error}") from None
    if declaration.choices and value not in declaration.choices:
        raise ConfigurationError(f"{where}: {value!r} is not one of {', '.join(declaration.choices)}")
    return value


def _convert(base: Any, raw: Any) -> Any:
    if base is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError(f"expected true or false, got {raw!r}")
    if base is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(f"expected an integer, got {raw!r}")
        if isinstance(raw, int | float):
            return int(raw)
        if not INTEGER.fullmatch(str(raw).strip()):  # int() also takes '١٢' and '1_000'
            raise ValueError(f"expected an integer in ASCII digits, got {raw!r}")
        return int(str(raw).strip())
    if base is float:
        text = str(raw).strip()
        if isinstance(raw, bool) or not (isinstance(raw, int | float) or NUMBER.fullmatch(text)):
            raise ValueError(f"expected a number, got {raw!r}")
        number = float(raw) if isinstance(raw, int | float) else float(text)
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return number
    if base is Secret and isinstance(raw, Secret):
        return raw
    if not isinstance(raw, str | Path):
        raise TypeError(f"expected a string, got {type(raw).__name__} {raw!r}")
    if base is Path:
        return Path(raw).expanduser()
    if base is Secret:
        return Secret(str(raw))
    return str(raw)
