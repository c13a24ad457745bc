"""Upstream MCP server for Gatehouse's tests, built on the official Python SDK (mcp 2.x).

Streamable HTTP at http://127.0.0.1:<port>/mcp, stateful (Mcp-Session-Id) unless --stateless.
Answers with SSE streams by default, with plain JSON bodies under --json-response.

Tools:
  echo(text: str) -> text
  add(a: int, b: int) -> a + b
  slow(seconds: float) -> "done" after sleeping
  fail() -> a tool result with isError: true
  whoami() -> {"authorization": null | "sha256:<hex of the Authorization header value>"}
              with --jwt-issuer also {"sub", "client_id", "scope", "aud", "iss"} of the token
  tool_0000 .. tool_NNNN (--extra-tools N) -> "tool_0007:<x>", input schema {x: integer}
  with --interactive-tools also:
  steps(steps: int, seconds: float) -> "done" after `steps` progress notifications (1/steps ..),
              `seconds` apart; a cancelled call is counted (GET /stats "cancelled")
  regional(region) -> "<region> / <its Mcp-Param-Region header>" (x-mcp-header "Region")
  badheader(ratio: number) is only listed: its x-mcp-header on a number makes it invalid (2026-07-28)
  confirm(text: str) -> (2026-07-28 only) answers input_required with one form elicitation
              "confirm" and a requestState; the retry with inputResponses.confirm.action ==
              "accept" and that requestState answers "confirmed: <text>", a decline an error result
  visit() -> every odd call a -32042 (URL elicitation required, https://example.invalid/visit,
              elicitationId "visit-1"), every even call "visited"

GET /stats answers {"initialize": <initialize requests seen>, "cancelled": <steps calls cancelled>}
(to check session reuse and cancellation).

Eras (--era): "dual" (the default) is the SDK's own dual-era server. "legacy" answers only
handshake-era requests, as servers before 2026-07-28 did: a request whose MCP-Protocol-Version is
no handshake version gets HTTP 400 with a JSON-RPC -32600 "Unsupported protocol version" (not a
2026 error, so clients fall back). "modern" speaks only 2026-07-28: a handshake-era request (no header,
or a handshake version) gets HTTP 400 -32022 with data.supported ["2026-07-28"], GET/DELETE 405.
POST /revoke-tokens (with --jwt-issuer): every token issued until now is refused from now on (401).
  tricky.schema (--tricky-schema) -> its arguments as JSON text. Its name has a dot and its input
                         schema has "$schema", "$defs", "$ref" keys and a property named "a.b",
                         all legal in MCP/JSON Schema but not as MongoDB/FerretDB field names.

Options:
  --page-size N          paginate tools/list (nextCursor) N tools per page (default: one page)
  --require-bearer TOKEN require "Authorization: Bearer TOKEN" (repeatable; any listed token is
                         accepted), else 401 with WWW-Authenticate. The value can also come from
                         SDK_SERVER_BEARER_TOKENS (comma separated), which keeps it out of `ps`.
  --jwt-issuer URL       an OAuth-protected resource server (the SDK's own RS support): every MCP
                         request needs "Authorization: Bearer <JWT>" signed by a key of the
                         issuer's JWKS (jwks_uri from <URL>/.well-known/openid-configuration,
                         fetched on first use, refetched for an unknown kid), with iss == URL,
                         aud containing --jwt-audience and exp in the future; else 401 with
                         WWW-Authenticate: Bearer error="invalid_token", ...,
                         resource_metadata="<origin>/.well-known/oauth-protected-resource/mcp"
                         (RFC 9728 metadata served there: resource, authorization_servers).
  --jwt-audience AUD     the audience to require (default: this server's MCP URL)
  --jwt-scope SCOPE      also require this scope in the token's `scope` (repeatable; 403
                         insufficient_scope otherwise)

Run: python tests/servers/sdk_server.py --port 9000 [--json-response] [--extra-tools 500]
The server logs no request headers or bodies (the suite scans every log for secrets).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from typing import Annotated, Any

import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import UrlElicitationRequiredError
from pydantic import Field

EXTRA_PREFIX = "tool_"
EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"x": {"type": "integer", "description": "any integer"}},
    "additionalProperties": False,
}


TRICKY_NAME = "tricky.schema"
TRICKY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}},
    "properties": {
        "point": {"$ref": "#/$defs/Point"},
        "a.b": {"type": "string", "description": "a property name with a dot"},
        "$weird": {"type": "boolean"},
    },
}


def extra_name(i: int) -> str:
    return f"{EXTRA_PREFIX}{i:04d}"


class TestServer(MCPServer):
    """MCPServer plus N cheap generated tools and optional tools/list paging.

    Generated tools bypass MCPServer.add_tool (which costs ~2.5 ms per tool for pydantic model
    building; --extra-tools 6000 must still start in well under a second).
    """

    def __init__(
        self, *, extra_tools: int = 0, page_size: int | None = None, tricky_schema: bool = False, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._extra_count = extra_tools
        self._tricky = tricky_schema
        self._extra = [
            types.Tool(name=extra_name(i), description=f"Generated test tool #{i}", input_schema=EXTRA_SCHEMA)
            for i in range(extra_tools)
        ]
        if tricky_schema:
            tricky = types.Tool(
                name=TRICKY_NAME, description="Awkward schema keys", input_schema=TRICKY_SCHEMA
            )
            self._extra.insert(0, tricky)
        self._page_size = page_size

    def _is_extra(self, name: str) -> bool:
        if not name.startswith(EXTRA_PREFIX):
            return False
        suffix = name[len(EXTRA_PREFIX) :]
        return (
            suffix.isdigit()
            and len(suffix) >= 4
            and int(suffix) < self._extra_count
            and extra_name(int(suffix)) == name
        )

    async def _handle_list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = list(await self.list_tools()) + self._extra
        if not self._page_size:
            return types.ListToolsResult(tools=tools)
        cursor = params.cursor if params is not None else None
        try:
            start = int(cursor) if cursor else 0
        except ValueError:
            raise_invalid_cursor(cursor)
        if start < 0 or start > len(tools):
            raise_invalid_cursor(cursor)
        end = start + self._page_size
        page = tools[start:end]
        return types.ListToolsResult(tools=page, next_cursor=str(end) if end < len(tools) else None)

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        if self._is_extra(name):
            return EXTRA_SCHEMA
        if self._tricky and name == TRICKY_NAME:
            return TRICKY_SCHEMA
        return super()._tool_input_schema(name)

    async def _handle_call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        if self._tricky and params.name == TRICKY_NAME:
            text = json.dumps(params.arguments or {}, sort_keys=True)
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])
        if self._is_extra(params.name):
            args = params.arguments or {}
            x = args.get("x", 0)
            if not isinstance(x, int) or isinstance(x, bool) or set(args) - {"x"}:
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text="x must be an integer")], is_error=True
                )
            return types.CallToolResult(content=[types.TextContent(type="text", text=f"{params.name}:{x}")])
        return await super()._handle_call_tool(ctx, params)


def raise_invalid_cursor(cursor: Any) -> None:
    from mcp.shared.exceptions import MCPError

    raise MCPError(code=types.INVALID_PARAMS, message=f"invalid cursor {cursor!r}")


class JwtVerifier:
    """mcp TokenVerifier for JWT access tokens of one issuer (PyJWT; keys from its jwks_uri).

    Logs only why a token was refused (exception class), never the token.
    """

    ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]

    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self.not_before = 0  # tokens issued (iat) before this are refused: POST /revoke-tokens

    def revoke_all(self) -> None:
        import time

        self.not_before = int(time.time()) + 1

    @staticmethod
    def _get_json(url: str) -> Any:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as resp:  # noqa: S310 - test server, http on 127.0.0.1
            return json.load(resp)

    async def _load_keys(self, *, force: bool) -> dict[str | None, Any]:
        import time

        import jwt

        async with self._lock:
            # refetch at most every 5 s (a token with an unknown kid must not hammer the issuer)
            if self._keys and (not force or time.monotonic() - self._fetched_at < 5):
                return self._keys
            discovery = await asyncio.to_thread(
                self._get_json, f"{self.issuer}/.well-known/openid-configuration"
            )
            jwks = await asyncio.to_thread(self._get_json, discovery["jwks_uri"])
            keys: dict[str | None, Any] = {}
            for k in jwks.get("keys", []):
                if k.get("use", "sig") == "sig":
                    try:
                        keys[k.get("kid")] = jwt.PyJWK(k)
                    except jwt.PyJWKError:
                        continue
            self._keys, self._fetched_at = keys, time.monotonic()
            return keys

    async def claims(self, token: str) -> dict[str, Any] | None:
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = await self._load_keys(force=False)
            if kid not in keys:
                keys = await self._load_keys(force=True)
            key = keys.get(kid) if kid is not None else next(iter(keys.values()), None)
            if key is None:
                print("sdk_server: jwt refused: unknown signing key", file=sys.stderr, flush=True)
                return None
            claims = dict(
                jwt.decode(
                    token,
                    key,
                    algorithms=self.ALGORITHMS,
                    issuer=self.issuer,
                    audience=self.audience,
                    options={"require": ["exp", "iss", "aud"]},
                )
            )
            if int(claims.get("iat", 0)) < self.not_before:
                print("sdk_server: jwt refused: revoked", file=sys.stderr, flush=True)
                return None
            return claims
        except jwt.InvalidTokenError as e:
            print(f"sdk_server: jwt refused: {type(e).__name__}", file=sys.stderr, flush=True)
            return None
        except (OSError, ValueError, KeyError) as e:
            print(f"sdk_server: jwt check failed: {type(e).__name__}", file=sys.stderr, flush=True)
            return None

    async def verify_token(self, token: str) -> Any:
        from mcp.server.auth.provider import AccessToken

        claims = await self.claims(token)
        if claims is None:
            return None
        scope = claims.get("scope")
        scopes = scope.split() if isinstance(scope, str) else list(claims.get("scp") or [])
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or ""),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=claims.get("sub"),
            claims=claims,
        )


def build_server(
    extra_tools: int = 0,
    page_size: int | None = None,
    tricky_schema: bool = False,
    *,
    verifier: JwtVerifier | None = None,
    resource_url: str | None = None,
    required_scopes: list[str] | None = None,
) -> TestServer:
    auth_kw: dict[str, Any] = {}
    if verifier is not None:
        from mcp.server.auth.settings import AuthSettings

        auth_kw = {
            "auth": AuthSettings(
                issuer_url=verifier.issuer,
                resource_server_url=resource_url,
                required_scopes=required_scopes or None,
                # the verifier checks `aud` itself (PyJWT); see JwtVerifier
                validate_token_resource=False,
            ),
            "token_verifier": verifier,
        }
    server = TestServer(
        name="gatehouse-test-sdk-server",
        version="1.0.0",
        extra_tools=extra_tools,
        page_size=page_size,
        tricky_schema=tricky_schema,
        log_level="WARNING",
        **auth_kw,
    )

    @server.tool(description="Echo the given text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Sleep for the given number of seconds, then answer 'done'.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @server.tool(description="Always fails (returns a tool result with isError: true).")
    def fail() -> str:
        raise ToolError("this tool always fails")

    @server.tool(description="Fingerprint of the Authorization header this server received.")
    async def whoami(ctx: Context) -> str:
        headers = ctx.headers or {}
        value = headers.get("authorization")
        fp = None if value is None else "sha256:" + hashlib.sha256(value.encode()).hexdigest()
        out: dict[str, Any] = {"authorization": fp}
        if verifier is not None:
            # the bearer middleware already verified it; read its claims back
            claims = None
            if value and value[:7].lower() == "bearer ":
                claims = await verifier.claims(value[7:])
            claims = claims or {}
            for name in ("sub", "client_id", "scope", "aud", "iss"):
                out[name] = claims.get(name)
        return json.dumps(out)

    return server


def add_interactive_tools(server: TestServer) -> None:
    """steps and confirm (--interactive-tools)."""

    @server.tool(description="Report `steps` progress notifications, `seconds` apart, then answer 'done'.")
    async def steps(steps: int, seconds: float, ctx: Context) -> str:
        try:
            for i in range(1, steps + 1):
                await ctx.report_progress(i, steps, f"step {i} of {steps}")
                await asyncio.sleep(seconds)
        except BaseException:  # the call was cancelled (anyio's cancellation is CancelledError here)
            STATS["cancelled"] += 1
            raise
        return "done"

    @server.tool(description="Ask the client to confirm (2026-07-28 input_required), then echo the text.")
    async def confirm(text: str, ctx: Context) -> str | types.InputRequiredResult:
        answer = (ctx.input_responses or {}).get("confirm")
        if answer is None or ctx.request_state != "confirm-state":
            return types.InputRequiredResult(
                input_requests={
                    "confirm": types.ElicitRequest(
                        params=types.ElicitRequestFormParams(
                            message=f"Confirm {text!r}?",
                            requested_schema={"type": "object", "properties": {}},
                        )
                    )
                },
                request_state="confirm-state",
            )
        if getattr(answer, "action", None) != "accept":
            raise ToolError("not confirmed")
        return f"confirmed: {text}"

    @server.tool(description="Ask for a URL to be visited (-32042) on every odd call, else answer 'visited'.")
    async def visit() -> str:
        STATS["visit"] += 1
        if STATS["visit"] % 2:
            url = types.ElicitRequestURLParams(
                message="Visit this page first", url="https://example.invalid/visit", elicitation_id="visit-1"
            )
            raise UrlElicitationRequiredError([url])
        return "visited"

    @server.tool(description="Answer the region and the Mcp-Param-Region header that came with it.")
    async def regional(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], ctx: Context
    ) -> str:
        return f"{region} / {(ctx.headers or {}).get('mcp-param-region')}"

    # (listed only: the SDK would not register it, and no client may call it)
    bad_schema = {"type": "object", "properties": {"ratio": {"type": "number", "x-mcp-header": "Ratio"}}}
    bad = types.Tool(name="badheader", description="An x-mcp-header on a number", input_schema=bad_schema)
    server._extra.append(bad)


class BearerGate:
    """ASGI middleware: only requests carrying one of the accepted bearer tokens get through."""

    def __init__(self, app: Any, tokens: set[str], port: int) -> None:
        self.app = app
        self.accepted = {f"Bearer {t}".encode() for t in tokens}
        self.port = port

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization")
            if auth not in self.accepted:
                body = json.dumps({"error": "invalid_token"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer error="invalid_token"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


STATS = {"initialize": 0, "cancelled": 0, "visit": 0}
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")


class EraGate:
    """ASGI middleware: this server answers only one era's requests (``--era legacy|modern``)."""

    def __init__(self, app: Any, era: str) -> None:
        self.app = app
        self.era = era

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/stats", "/revoke-tokens"):
            await self.app(scope, receive, send)
            return
        version = dict(scope["headers"]).get(b"mcp-protocol-version", b"").decode("latin-1")
        handshake = version == "" or version in HANDSHAKE_VERSIONS
        if self.era == "legacy" and not handshake:
            error = {"code": -32600, "message": f"Bad Request: Unsupported protocol version: {version}"}
            await _answer(send, 400, {"jsonrpc": "2.0", "id": "server-error", "error": error})
        elif self.era == "modern" and scope["method"] in ("GET", "DELETE"):
            await _answer(send, 405, None)
        elif self.era == "modern" and handshake:
            error = {
                "code": -32022,
                "message": "Unsupported protocol version: this server speaks only MCP 2026-07-28",
                "data": {"supported": ["2026-07-28"], "requested": version or None},
            }
            await _answer(send, 400, {"jsonrpc": "2.0", "id": None, "error": error})
        else:
            await self.app(scope, receive, send)


async def _answer(send: Any, status: int, body: Any) -> None:
    data = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")] if data else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class InitializeCounter:
    """ASGI middleware: counts initialize requests; GET /stats answers ``STATS``."""

    def __init__(self, app: Any, on_revoke: Any = None) -> None:
        self.app = app
        self.on_revoke = on_revoke

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/revoke-tokens" and self.on_revoke:
            self.on_revoke()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http" and scope["path"] == "/stats":
            body = json.dumps(STATS).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[dict[str, Any]] = []
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if b'"method":"initialize"' in b"".join(c.get("body", b"") for c in chunks).replace(b" ", b""):
            STATS["initialize"] += 1

        async def replay() -> dict[str, Any]:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/mcp")
    p.add_argument("--extra-tools", type=int, default=0)
    p.add_argument("--page-size", type=int, default=None)
    p.add_argument("--json-response", action="store_true", help="answer with JSON bodies instead of SSE")
    p.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id (stateless_http)")
    p.add_argument("--require-bearer", action="append", default=[])
    p.add_argument("--tricky-schema", action="store_true", help="add the tricky.schema tool")
    p.add_argument("--interactive-tools", action="store_true", help="add the steps and confirm tools")
    p.add_argument("--era", choices=("legacy", "dual", "modern"), default="dual", help="the eras it speaks")
    p.add_argument("--jwt-issuer", default=None, help="require JWTs of this issuer (OAuth resource server)")
    p.add_argument("--jwt-audience", default=None, help="required aud (default: this server's MCP URL)")
    p.add_argument("--jwt-scope", action="append", default=[], help="required scope (repeatable)")
    args = p.parse_args(argv)
    if (args.jwt_audience or args.jwt_scope) and not args.jwt_issuer:
        p.error("--jwt-audience / --jwt-scope need --jwt-issuer")

    tokens = set(args.require_bearer)
    env_tokens = os.environ.get("SDK_SERVER_BEARER_TOKENS", "")
    tokens |= {t for t in env_tokens.split(",") if t}

    resource_url = f"http://{args.host}:{args.port}{args.path}"
    verifier = JwtVerifier(args.jwt_issuer, args.jwt_audience or resource_url) if args.jwt_issuer else None
    server = build_server(
        extra_tools=args.extra_tools,
        page_size=args.page_size,
        tricky_schema=args.tricky_schema,
        verifier=verifier,
        resource_url=resource_url,
        required_scopes=args.jwt_scope,
    )
    interactive = int(args.interactive_tools)
    if interactive:
        add_interactive_tools(server)
    app: Any = server.streamable_http_app(
        streamable_http_path=args.path,
        json_response=args.json_response,
        stateless_http=args.stateless,
        host=args.host,
    )
    if args.era != "dual":
        app = EraGate(app, args.era)
    app = InitializeCounter(app, verifier.revoke_all if verifier else None)
    if tokens:
        app = BearerGate(app, tokens, args.port)

    import uvicorn

    mode = "json" if args.json_response else "sse"
    print(
        f"sdk_server: {len(server._extra) + 5 + 5 * interactive} tools, {mode} responses, "
        f"{'stateless' if args.stateless else 'stateful'}, era {args.era}, {resource_url}"
        + (f", JWTs of {verifier.issuer} for aud {verifier.audience}" if verifier else ""),
        file=sys.stderr,
        flush=True,
    )
    # access_log off: the gateway's requests are not interesting and keep the logs small.
    # open SSE streams must not hold up SIGTERM for long
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
