"""maildesk.toml + environment -> a `Config`: TOML read, each key's type checked,
secrets read from the environment or a file (never echoed back)."""
from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import fields
from pathlib import Path

from maildesk.config.checks import categories, validate
from maildesk.config.sections import (
    REQUIRED, REQUIRED_SECTIONS, SECTIONS, TEAM_NAMES, Config, ConfigError, OAuth2Config, TeamsConfig,
)


def _type_name(tp) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if typing.get_origin(tp) is list:
        return "a list of strings"
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return names.get(args[0], str(args[0]))
    return names.get(tp, str(tp))


def _check_type(key: str, value, tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _check_type(key, value, inner)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")
        return list(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        shown = "(value hidden)" if any(w in key for w in ("password", "secret", "token")) else repr(value)
        raise ConfigError(f"{key} must be {_type_name(tp)}, got {type(value).__name__} {shown}")
    return value


def _section(name: str, cls: type, raw: dict, unknown: list[str]):
    """One section; keys this version does not know go to `unknown` (a config written for a
    newer maildesk must still work after a rollback)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown += [f"{name}.{key}" for key in raw if key not in known]
    values = {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _check_type(f"{name}.{f.name}", raw[f.name], hints[f.name])
        elif f.default is REQUIRED:
            raise ConfigError(f"{name}.{f.name} is required but missing")
    return cls(**values)


def read_secret(section: str, obj, env: typing.Mapping[str, str]) -> str | None:
    """password, password_env or password_file: exactly one way, never logged."""
    given = [k for k in ("password", "password_env", "password_file") if getattr(obj, k, None)]
    if len(given) > 1:
        raise ConfigError(f"{section}: set only one of password, password_env, password_file")
    if obj.password_env:
        value = env.get(obj.password_env)
        if not value:
            raise ConfigError(f"{section}.password_env names {obj.password_env}, which is not set in the environment")
        return value
    if obj.password_file:
        try:
            return Path(obj.password_file).expanduser().read_text().strip()
        except OSError as e:
            raise ConfigError(f"{section}.password_file cannot be read: {e.strerror}") from None
    return getattr(obj, "password", None)


def _staff(raw: dict, teams: TeamsConfig) -> tuple[dict[str, str], dict[str, str]]:
    staff: dict[str, str] = {}
    names: dict[str, str] = {}
    for team in TEAM_NAMES:
        for addr in getattr(teams, team):
            staff.setdefault(addr.lower(), team)
    if not isinstance(raw, dict):
        raise ConfigError("[staff] must be a table of people: name = { address = ..., team = ... }")
    for person, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise ConfigError(f"staff.{person} must be a table with an address")
        team = entry.get("team", "customer_service")
        unknown = set(entry) - {"address", "team", "name"}
        if unknown:
            raise ConfigError(f"staff.{person}.{sorted(unknown)[0]} is not a known setting (known: address, name, team)")
        if team not in TEAM_NAMES:
            raise ConfigError(f"staff.{person}.team must be one of {', '.join(TEAM_NAMES)}, got {team!r}")
        staff[entry["address"].lower()] = team
        names[entry["address"].lower()] = str(entry.get("name", person))
    return staff, names


def parse_config(data: dict, base_dir: Path, path: Path | None = None) -> Config:
    unknown = [f"[{key}]" for key in data if key not in SECTIONS and key not in ("staff", "categories")]
    for name in REQUIRED_SECTIONS:
        if name not in data:
            raise ConfigError(f"[{name}] is required but missing")
    built = {name: _section(name, cls, data.get(name, {}), unknown)
             for name, cls in SECTIONS.items() if name != "oauth2"}
    oauth2 = _section("oauth2", OAuth2Config, data["oauth2"], unknown) if "oauth2" in data else None
    staff, staff_names = _staff(data.get("staff", {}), built["teams"])
    cfg = Config(**built, oauth2=oauth2, staff=staff, staff_names=staff_names, base_dir=base_dir, path=path,
                 unknown=tuple(unknown), categories=categories(data.get("categories")))
    validate(cfg)
    return cfg


def load(path: str | os.PathLike) -> Config:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (create one with `maildesk init`)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    return parse_config(data, path.resolve().parent, path.resolve())
