"""What commands print: a table for people, or JSON (``--json``) for programs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "; ".join(cell(v) for v in value) or "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    header = [name for name, _ in columns]
    lines = [[cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    return "\n".join(out)


def emit(data: Any, as_json: bool, columns: Sequence[Column] | None = None) -> None:
    """Print ``data`` (one object or a list of them) as JSON or as a table of ``columns``."""
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif columns is None or not isinstance(data, list):
        click.echo(details(data))
    else:
        click.echo(table(data, columns) if data else "(none)")


def details(data: Any) -> str:
    """One object for people: its fields as ``key: value`` lines, nested ones as compact JSON."""
    if not isinstance(data, dict):
        return json.dumps(data, indent=2)
    width = max((len(k) for k in data), default=0)
    return "\n".join(
        f"{key.ljust(width)}  {json.dumps(v) if isinstance(v, dict | list) else cell(v)}"
        for key, v in data.items()
    )
