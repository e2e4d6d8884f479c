"""The config as JSON and on the command line: the round trip (``config.json``), ``--set
section.field=value`` overrides coerced to each field's type, and the comparison of two configs
(what a ``--resume`` or a reused grid cell checks)."""

from __future__ import annotations

import json
import typing
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from ralis.config.checks import validate
from ralis.config.schema import RunConfig, flatten_config, to_dict
from ralis.errors import ConfigError
from ralis.files.atomic import atomic_write_text


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Turn a JSON/CLI value into the field's declared type (tuples, optionals, dicts)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, __import__("types").UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("x", ",").split(",") if v.strip()]
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            if where in ("resolution", "region_size") or where.endswith((".resolution",
                                                                        ".region_size")):
                raise ConfigError(f"{where} is a size HxW, e.g. 180x240 (height x width), "
                                  f"got {', '.join(map(str, value))!r}")
            raise ConfigError(f"{where} needs {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if isinstance(value, str):
            pairs = [kv.split(":") for kv in value.split(",") if kv.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ConfigError(f"{where} expects name:value pairs, e.g. random:50,entropy:10; "
                                  f"got {value!r}")
            value = {k.strip(): v.strip() for k, v in pairs}
        if not isinstance(value, dict):
            raise ConfigError(f"{where} expects a mapping, e.g. random:50,entropy:10")
        return {str(k): _coerce(args[1], v, where) for k, v in value.items()}
    try:
        if tp is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return tp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: cannot read {value!r} as {tp.__name__}") from None


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {where} fields {sorted(unknown)}; valid: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def save_config(cfg: RunConfig, path: Path) -> None:
    atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", Path(path))


def load_config(path: Path) -> RunConfig:
    try:
        return validate(from_dict(RunConfig, json.loads(Path(path).read_text())))
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        raise ConfigError(f"cannot read config {path}: {str(exc)[:200]}") from None


def override(cfg: Any, dotted: str, value: Any) -> Any:
    """Return a copy with ``section.field`` (or ``field``) set to ``value`` (coerced to type)."""
    head, _, rest = dotted.partition(".")
    names = {f.name: f for f in fields(cfg)}
    if head not in names:
        raise ConfigError(f"unknown config field {dotted!r}; valid: {sorted(names)}")
    current = getattr(cfg, head)
    if rest and isinstance(current, dict):  # one entry of a mapping: al.pool_sizes.entropy=5
        hint = typing.get_type_hints(type(cfg))[head]
        value_type = typing.get_args(hint)[1]
        return replace(cfg, **{head: {**current, rest: _coerce(value_type, value, dotted)}})
    if rest:
        if not is_dataclass(current):
            raise ConfigError(f"config field {head!r} has no sub-field {rest!r}")
        return replace(cfg, **{head: override(current, rest, value)})
    hint = typing.get_type_hints(type(cfg))[head]
    return replace(cfg, **{head: _coerce(hint, value, dotted)})


def apply_overrides(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``--set section.field=value`` strings."""
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects section.field=value, got {item!r}")
        if value.startswith(("[", "{")) or value in ("null", "true", "false"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        cfg = override(cfg, key.strip(), value)
    return cfg


# ------------------------------------------------------------------------------ comparison
MACHINE_FIELDS = ("threads", "device", "data.storage", "data.cache_dir")
"""Where a run executes (and where its data lives) does not change what it computes."""


def config_diff(saved: RunConfig, wanted: RunConfig, ignore: tuple[str, ...] = ()
                ) -> list[tuple[str, Any, Any]]:
    """Fields that differ: ``[(field, saved value, wanted value)]`` sorted by field.

    ``ignore`` names fields or whole sections (``"seed"``, ``"al"``, ``"al.budgets"``).
    """
    a, b = flatten_config(to_dict(saved)), flatten_config(to_dict(wanted))
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if a.get(k) != b.get(k) and not any(k == p or k.startswith(p + ".") for p in ignore)]


def describe_diff(diff: list[tuple[str, Any, Any]], there: str = "stored",
                  here: str = "given") -> str:
    """``"seed: stored 20, given 5; train.lr: stored 0.001, given 0.01"``."""
    return "; ".join(f"{k}: {there} {a!r}, {here} {b!r}" for k, a, b in diff)
