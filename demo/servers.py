"""The demo's two MCP servers, built on the official `mcp` SDK (Streamable HTTP at /mcp).

    python demo/servers.py toolbox --port 8091
    python demo/servers.py notes --port 8092 --issuer http://127.0.0.1:8090

toolbox: open, no authentication: roll_dice, word_count, utc_now.
notes:   an OAuth-protected resource server: every request needs an access token of the demo
         identity provider (a JWT, RS256, checked against the provider's JWKS) for this server's
         URL (aud) with scope mcp:tools. Each person (the token's `sub`) has their own notes:
         whoami, add_note, list_notes, delete_note. Gatehouse gets such a token for each user
         after that user's consent, so who calls visibly matters.

Notes live in memory: a restart forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.request
from collections import defaultdict
from typing import Any

NOTES_SCOPE = "mcp:tools"


def build_toolbox() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="gatehouse-demo-toolbox", version="1.0.0", log_level="WARNING")

    @server.tool(description="Roll dice: `count` dice with `sides` sides each; the rolls and their sum.")
    def roll_dice(count: int = 1, sides: int = 6) -> str:
        if not (1 <= count <= 100 and 2 <= sides <= 1000):
            raise ValueError("count must be 1-100 and sides 2-1000")
        rolls = [random.randint(1, sides) for _ in range(count)]  # noqa: S311 - dice, not secrets
        return json.dumps({"rolls": rolls, "sum": sum(rolls)})

    @server.tool(description="Count the words, lines and characters of a text.")
    def word_count(text: str) -> str:
        return json.dumps(
            {"words": len(text.split()), "lines": len(text.splitlines()), "characters": len(text)}
        )

    @server.tool(description="The current time in UTC (ISO 8601).")
    def utc_now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    return server


class JwksVerifier:
    """mcp TokenVerifier: a JWT access token of `issuer` for `audience`, signed by a key of the
    issuer's JWKS (PyJWT's PyJWKClient caches the keys and refetches on an unknown kid)."""

    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        import jwt

        self.issuer, self.audience = issuer, audience
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)

    def _decode(self, token: str) -> dict[str, Any]:
        import jwt

        key = self.jwks.get_signing_key_from_jwt(token)
        return dict(
            jwt.decode(
                token,
                key,
                algorithms=["RS256", "PS256", "ES256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        )

    async def verify_token(self, token: str) -> Any:
        import jwt
        from mcp.server.auth.provider import AccessToken

        try:
            claims = await asyncio.to_thread(self._decode, token)
        except (jwt.PyJWTError, OSError) as e:  # never the token itself in the log
            print(f"notes: token refused: {type(e).__name__}", file=sys.stderr, flush=True)
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or ""),
            scopes=str(claims.get("scope") or "").split(),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=str(claims["sub"]),
            claims=claims,
        )


def build_notes(verifier: JwksVerifier, resource_url: str) -> Any:
    from mcp.server.auth.middleware.auth_context import get_access_token
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        name="gatehouse-demo-notes",
        version="1.0.0",
        log_level="WARNING",
        # validated from strings, so a path-less issuer keeps its exact form (no trailing slash)
        auth=AuthSettings.model_validate(
            {
                "issuer_url": verifier.issuer,
                "resource_server_url": resource_url,
                "required_scopes": [NOTES_SCOPE],
                "validate_token_resource": True,
            }
        ),
        token_verifier=verifier,
    )
    notes: dict[str, list[str]] = defaultdict(list)

    def who() -> str:
        token = get_access_token()
        if token is None or not token.subject:  # the SDK's bearer check runs first; belt and braces
            raise PermissionError("no verified user")
        return token.subject

    @server.tool(description="Who you are, as this server sees you (from the access token).")
    def whoami() -> str:
        token = get_access_token()
        claims = (token.claims if token else None) or {}
        return json.dumps({"sub": who(), "client_id": claims.get("client_id"), "scope": claims.get("scope")})

    @server.tool(description="Add a note to your own notes; answers how many you have.")
    def add_note(text: str) -> str:
        if not text.strip() or len(text) > 2000:
            raise ValueError("a note is 1-2000 characters")
        mine = notes[who()]
        mine.append(text)
        return f"note {len(mine)} added for {who()}"

    @server.tool(description="Your notes (only yours), numbered.")
    def list_notes() -> str:
        return json.dumps(
            {"user": who(), "notes": [{"number": i + 1, "text": t} for i, t in enumerate(notes[who()])]}
        )

    @server.tool(description="Delete one of your notes by its number.")
    def delete_note(number: int) -> str:
        mine = notes[who()]
        if not 1 <= number <= len(mine):
            raise ValueError(f"you have no note {number}")
        mine.pop(number - 1)
        return f"note {number} deleted"

    return server


def tool_list(server: Any) -> list[dict[str, Any]]:
    """The server's tools as MCP `tools/list` JSON: what the demo set-up gives Gatehouse up front
    (mcpToolSchema) for the protected server, whose tools/list needs a user's token."""
    tools = asyncio.run(server.list_tools())
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def discovered_jwks_url(issuer: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{issuer}/.well-known/openid-configuration", timeout=10) as resp:  # noqa: S310
        return str(json.load(resp)["jwks_uri"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("server", choices=["toolbox", "notes"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--public-url", help="this server's MCP URL as targets name it (default http://host:port/mcp)"
    )
    p.add_argument("--issuer", help="notes: the identity provider whose tokens are accepted")
    p.add_argument("--jwks-url", help="notes: where its keys are (default: from its discovery document)")
    args = p.parse_args(argv)
    url = args.public_url or f"http://{args.host}:{args.port}/mcp"
    if args.server == "toolbox":
        server = build_toolbox()
    else:
        if not args.issuer:
            p.error("notes needs --issuer")
        issuer = args.issuer.rstrip("/")
        server = build_notes(JwksVerifier(issuer, url, args.jwks_url or discovered_jwks_url(issuer)), url)
    app = server.streamable_http_app(streamable_http_path="/mcp", host=args.host)
    print(f"demo {args.server}: {url}", file=sys.stderr, flush=True)

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
