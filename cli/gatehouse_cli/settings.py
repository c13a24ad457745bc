"""Where the admin APIs are and the admin token: flags, then the environment, then a config file.

The config file is TOML at ``$GATEHOUSE_CONFIG``, else ``$XDG_CONFIG_HOME/gatehouse/config.toml``
(``~/.config/gatehouse/config.toml``)::

    gateway_url = "https://gatehouse.example.com"
    identity_url = "https://identity.gatehouse.example.com"
    admin_token = "..."

The environment names are the ones the rest of Gatehouse uses (docs/configuration.md):
``GATEHOUSE_ADMIN_TOKEN``, ``GATEWAY_PUBLIC_URL``, ``IDENTITY_PUBLIC_URL``.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"
DEFAULT_IDENTITY_URL = "http://127.0.0.1:8081"
KEYS = {"gateway_url", "identity_url", "admin_token"}


@dataclass(frozen=True)
class Settings:
    gateway_url: str
    identity_url: str
    admin_token: str | None

    def __repr__(self) -> str:  # never show the token, not even in a traceback
        return f"Settings(gateway_url={self.gateway_url!r}, identity_url={self.identity_url!r})"


def config_path() -> Path:
    if explicit := os.environ.get("GATEHOUSE_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gatehouse" / "config.toml"


def _config_file() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        if os.environ.get("GATEHOUSE_CONFIG"):
            raise click.ClickException(f"GATEHOUSE_CONFIG names {path}, which is not a file")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    unknown = set(data) - KEYS
    if unknown:
        raise click.ClickException(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
    if "admin_token" in data and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"gatehouse: warning: {path} holds the admin token and others may read it (chmod 600)",
            file=sys.stderr,
        )
    return data


def _url(flag: str | None, env: str, file: dict[str, Any], key: str, default: str) -> str:
    return str(flag or os.environ.get(env) or file.get(key) or default).rstrip("/")


def load(gateway_url: str | None, identity_url: str | None) -> Settings:
    """The token has no flag: a command line is visible to every user of the machine (ps)."""
    file = _config_file()
    return Settings(
        gateway_url=_url(gateway_url, "GATEWAY_PUBLIC_URL", file, "gateway_url", DEFAULT_GATEWAY_URL),
        identity_url=_url(identity_url, "IDENTITY_PUBLIC_URL", file, "identity_url", DEFAULT_IDENTITY_URL),
        admin_token=os.environ.get("GATEHOUSE_ADMIN_TOKEN") or file.get("admin_token"),
    )
