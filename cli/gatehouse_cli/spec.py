"""A ``gatehouse apply`` file, read and checked: the providers, gateways and targets it wants.

The file (docs/cli.md, schema ``gatehouse.schema.json``, also published as
docs/gatehouse.schema.json) holds the admin API's request bodies. Reading it: secrets are looked up
first (an inline one is refused with a message saying what to write instead), then the file is
validated against the JSON Schema (jsonschema), then names are checked to be unique. Gateways get
the file's mark at the end of their description, which is how ``--prune`` knows what it manages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from . import documents
from .api import Doc
from .documents import InvalidFile

MARK = re.compile(r"\s*\[gatehouse:([A-Za-z0-9-]+)\]$")


def schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("gatehouse.schema.json").read_text())  # type: ignore[no-any-return]


def mark(description: str, owner: str) -> str:
    return f"{description} [gatehouse:{owner}]".strip()


def owner_of(description: str) -> str | None:
    """The name of the file that manages a gateway with this description, if any."""
    match = MARK.search(description or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class Gateway:
    body: Doc  # the gateway body, with the owner's mark and its secret
    targets: list[Doc]  # target bodies


@dataclass(frozen=True)
class Spec:
    name: str
    providers: list[Doc]  # CreateOauth2CredentialProvider bodies, with their secrets
    gateways: list[Gateway]


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "(top)"


def _validate(doc: Any, source: str) -> None:
    import jsonschema  # only apply needs it: every other command starts ~40 ms sooner

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_where(e.absolute_path)}: {e.message}" for e in errors[:10]]
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise InvalidFile(f"{source} does not follow docs/gatehouse.schema.json:\n" + "\n".join(lines) + more)


def _unique(names: list[str], what: str, source: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidFile(f"{source}: {what} {name!r} is named twice")
        seen.add(name)


def target_body(body: Doc) -> Doc:
    """A target body as the API takes it: an ``inlinePayload`` object becomes its JSON string."""
    try:
        server = body["targetConfiguration"]["mcp"]["mcpServer"]
        payload = server["mcpToolSchema"]["inlinePayload"]
    except (KeyError, TypeError):
        return body  # nothing to convert; the API says what is missing
    if isinstance(payload, dict):
        server = {**server, "mcpToolSchema": {"inlinePayload": json.dumps(payload)}}
        body = {**body, "targetConfiguration": {"mcp": {"mcpServer": server}}}
    return body


def load(path: str) -> Spec:
    doc = documents.read(path)
    source = path
    base = Path.cwd() if path == "-" else Path(path).resolve().parent
    if not isinstance(doc, dict):
        raise InvalidFile(f"{source}: the file must be a mapping with name, providers, gateways")
    # secrets before the schema: an inline secret gets the message that says what to write instead
    providers = [
        documents.resolve_secrets(p, documents.PROVIDER_SECRETS, f"{source}: providers[{i}]", base)
        for i, p in enumerate(doc.get("providers") or [])
    ]
    gateway_bodies = [
        documents.resolve_secrets(g, documents.GATEWAY_SECRETS, f"{source}: gateways[{i}]", base)
        for i, g in enumerate(doc.get("gateways") or [])
    ]
    _validate(doc, source)
    _unique([p["name"] for p in providers], "provider", source)
    _unique([g["name"] for g in gateway_bodies], "gateway", source)
    gateways = []
    for body in gateway_bodies:
        targets = [target_body(t) for t in body.pop("targets", [])]
        _unique([t["name"] for t in targets], f"gateway {body['name']!r}: target", source)
        body["description"] = mark(body.get("description", ""), doc["name"])
        gateways.append(Gateway(body, targets))
    return Spec(doc["name"], providers, gateways)
