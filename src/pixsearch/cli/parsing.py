"""Typer's command groups, made to parse plain parameters without pydantic.

Why: Typer (0.29 and later) converts every parameter through a pydantic ``TypeAdapter``; importing
pydantic and building the adapters costs ~50-100 ms (measured, more on a loaded machine) of a cold
``pixsearch search``, whose parameters are all plain strings, numbers, flags and paths. ``FastGroup``
gives each such parameter a converter of its own before the command parses its arguments: the same
result and the same one-line usage errors, no pydantic. Anything else (a list of numbers, a choice, a
path that must exist, a typer without these internals) keeps Typer's own conversion untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import typer.core

__all__ = ["FastGroup"]

# A path option with any of these other than typer's default (given) keeps typer's conversion.
_PATH_FLAGS: dict[str, object] = {"exists": False, "resolve_path": False, "writable": False}
_PATH_FLAGS |= {"allow_dash": False, "path_type": None, "file_okay": True, "dir_okay": True}


def _number(kind: type, info: Any) -> Callable[[Any], Any] | None:
    if getattr(info, "clamp", False):
        return None
    lo, hi = getattr(info, "min", None), getattr(info, "max", None)
    name = "integer" if kind is int else "float"

    def convert(value: Any) -> Any:
        try:
            n = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a valid {name}.") from None
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            bounds = (f"x>={lo}" if lo is not None else "", f"x<={hi}" if hi is not None else "")
            rng = " and ".join(b for b in bounds if b)
            raise ValueError(f"{n} is not in the range {rng}.")
        return n

    return convert


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "t", "yes", "y", "on"):
        return True
    if word in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"{value!r} is not a valid boolean.")


def _converter(annotation: Any, info: Any) -> Callable[[Any], Any] | None:
    """A converter for a plain annotation, or None where Typer's own conversion is needed."""
    if getattr(info, "parser", None) is not None:
        return None
    if annotation is str:
        return str
    if annotation is bool:
        return _bool
    if annotation in (int, float):
        return _number(annotation, info)
    if annotation is Path:
        if any(getattr(info, flag, default) != default for flag, default in _PATH_FLAGS.items()):
            return None
        return _path if getattr(info, "readable", True) else Path
    return None


def _path(value: Any) -> Path:
    """Typer's default path check: a path that exists must be readable (one that does not is fine)."""
    p = Path(value)
    if os.path.exists(p) and not os.access(p, os.R_OK):
        raise ValueError(f"Path {str(value)!r} is not readable.")
    return p


try:  # typer >= 0.29 converts through these; older ones through click types (left as they are)
    from typer._click.exceptions import BadParameter
    from typer._coercion import RuntimeParam
except ImportError:  # pragma: no cover - another typer
    RuntimeParam = None  # type: ignore[assignment, misc]


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class _Plain(RuntimeParam):  # type: ignore[misc, valid-type]
        """Typer's conversion contract, fulfilled by ``convert`` (for each value when ``many``)."""

        convert: Callable[[Any], Any] = str
        many: bool = False

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return [self.convert(v) for v in value] if self.many else self.convert(value)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None


def _runtime_param(descriptor: Any) -> Any | None:
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if RuntimeParam is None or descriptor.file_annotation is not None:
        return None
    many = get_origin(annotation) is list
    convert = _converter(get_args(annotation)[0] if many else annotation, info)
    if convert is None:
        return None
    return _Plain(parameter_info=info, annotation=annotation, convert=convert, many=many)


def plain_parameters(params: Any) -> None:
    """Give each plain parameter its converter (see the module doc); others are left untouched."""
    for p in params:
        desc = getattr(p, "type_descriptor", None)
        if desc is None or getattr(p, "_runtime_param", ...) is not None:
            continue  # another typer, or already converted
        try:
            rp = _runtime_param(desc)
        except (AttributeError, TypeError):  # typer's internals differ: keep its own
            return
        if rp is not None:
            p._runtime_param = rp


class FastGroup(typer.core.TyperGroup):
    """A Typer command group whose commands (and itself) parse plain parameters without pydantic.
    ``get_params`` includes ``--help``, an option like any other to Typer."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        plain_parameters(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            plain_parameters(cmd.get_params(ctx))
        return cmd
