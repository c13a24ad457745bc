"""Reading request bodies and declarative files (YAML or JSON), and the secrets they name.

A secret is never written in a file or on a command line: a file names it as ``"${ENV_VAR}"`` (read
from the environment) or ``{file: path}`` (read from a file, relative to the naming file, one
trailing newline dropped); anything else where a secret belongs is refused."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click
import yaml

ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
# where secrets sit in the admin API's bodies
PROVIDER_SECRETS = (
    ("oauth2ProviderConfigInput", "customOauth2ProviderConfig", "clientSecret"),
    ("oauth2ProviderConfigInput", "githubOauth2ProviderConfig", "clientSecret"),
)
GATEWAY_SECRETS = (("authorizerConfiguration", "customJWTAuthorizer", "loginClient", "clientSecret"),)


class InvalidFile(click.ClickException):
    """A file the CLI was given is not what it should be; the message says where and why."""


def read(path: str) -> Any:
    """A YAML or JSON document (JSON is YAML); ``-`` reads standard input."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InvalidFile(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidFile(f"{path} is not valid YAML or JSON: {exc}") from None


def secret(value: Any, where: str, base: Path) -> str:
    """The secret a file names at ``where``."""
    if isinstance(value, str) and (match := ENV_REF.match(value)):
        name = match.group(1)
        if name not in os.environ:
            raise InvalidFile(f"{where}: the environment variable {name} is not set")
        return os.environ[name]
    if isinstance(value, dict) and set(value) == {"file"} and isinstance(value["file"], str):
        path = base / value["file"]
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidFile(f"{where}: cannot read {path}: {exc.strerror}") from None
        return text.removesuffix("\n")
    raise InvalidFile(
        f"{where}: inline secrets are refused (a file is copied, committed and shown); "
        'write "${ENV_VAR}" to read it from the environment, or {file: path} to read it from a file'
    )


def resolve_secrets(body: Any, paths: tuple[tuple[str, ...], ...], where: str, base: Path) -> Any:
    """``body`` with each secret at ``paths`` read from where it names (the input is not changed)."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for path in paths:
        node: dict[str, Any] = out
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                break
            node[key] = node = dict(child)
        else:
            if path[-1] in node:
                node[path[-1]] = secret(node[path[-1]], f"{where}.{'.'.join(path)}", base)
    return out
