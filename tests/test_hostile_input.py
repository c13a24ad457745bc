"""Hostile input: every bad request gets a clear 4xx (or JSON-RPC error), nothing crashes, nothing
changes; the OpenAPI documents hold against schemathesis; the MCP endpoint holds against fuzzing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin import Admin, target_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawmcp import HEADERS, initialize, open_session, post

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,negative_data_rejection"
)


@pytest.mark.parametrize("service", ["gateway", "identity"])
def test_schemathesis_finds_no_5xx_and_no_schema_violation(stack: Any, service: str) -> None:
    base = stack.gateway_url if service == "gateway" else stack.identity_url
    cli = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(cli),
            "run",
            f"{base}/openapi.json",
            "-H",
            f"Authorization: Bearer {stack.admin_token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--request-timeout",
            "20",
            "--seed",
            "7",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


async def test_deep_json_is_refused_cleanly(stack: Any, sdk_server: Any) -> None:
    deep = "[" * 5000 + "]" * 5000
    async with Admin(stack.gateway_url, stack.admin_headers) as admin, httpx.AsyncClient() as http:
        gateway = await admin.create_gateway()
        url = gateway["gatewayUrl"]
        session = await open_session(http, url)
        body = (
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {"a": '
            + deep
            + "}}}"
        )
        r = await post(http, url, None, session=session, raw=body.encode())
        assert (
            r.status_code == 400
            and r.json()["error"]["code"] == -32700
            and "deeper" in r.json()["error"]["message"]
        )
        nested = {"a": 1}
        for _ in range(100):
            nested = {"a": nested}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "x", "arguments": nested},
        }
        r = await post(http, url, call, session=session)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = await admin.http.post(
            "/gateways", content=deep.encode(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400
        inline = target_body("deep", sdk_server.url)
        inline["targetConfiguration"]["mcp"]["mcpServer"]["mcpToolSchema"] = {"inlinePayload": deep}
        r = await admin.http.post(f"/gateways/{gateway['gatewayId']}/targets", json=inline)
        assert r.status_code == 400
        tool = {"name": "t", "inputSchema": {"type": "object", "properties": nested}}
        r = await admin.http.post(
            f"/gateways/{gateway['gatewayId']}/targets",
            json=target_body("deep2", sdk_server.url, inline_tools=[tool]),
        )
        assert r.status_code == 400 and "nests deeper" in r.json()["error"]["message"]


async def test_oversized_headers_get_431(stack: Any) -> None:
    async with httpx.AsyncClient() as http:
        for base in (stack.gateway_url, stack.identity_url):
            r = await http.get(f"{base}/healthz", headers={f"X-Filler-{i}": "x" * 1000 for i in range(20)})
            assert r.status_code == 431


async def test_invalid_utf8_inside_a_json_string_is_a_400_on_every_admin_call(stack: Any) -> None:
    """msgspec raises UnicodeDecodeError (not a DecodeError) for such a body: it was a 500 with a
    traceback on every admin POST/PUT; now a 400 like any other malformed body, changing nothing."""
    bodies = [b'{"name": "\xcd"}', b'{"name": "ok", "description": "caf\xe9"}', b'{"n\xffame": 1}']
    async with httpx.AsyncClient(headers=stack.admin_headers) as http:
        before = (await http.get(f"{stack.gateway_url}/gateways")).json()["items"]
        calls = 0
        for base in (stack.gateway_url, stack.identity_url):
            paths = (await http.get(f"{base}/openapi.json")).json()["paths"]
            for path, methods in paths.items():
                if path.endswith("/mcp"):
                    continue  # the MCP endpoint answers JSON-RPC (-32700), see the fuzzing test
                for method in ("post", "put"):
                    if method not in methods:
                        continue
                    url = base + re.sub(r"\{[^}]+\}", "none", path)
                    for body in bodies:
                        r = await http.request(
                            method.upper(), url, content=body, headers={"Content-Type": "application/json"}
                        )
                        assert r.status_code == 400, (method, path, body, r.text)
                        assert r.json()["error"]["code"] == "ValidationException", r.text
                        calls += 1
        assert calls >= 20 * len(bodies)
        assert (await http.get(f"{stack.gateway_url}/gateways")).json()["items"] == before
    for proc in (stack.gateway, stack.identity):
        assert "UnicodeDecodeError" not in proc.log_text()


async def test_targets_on_denied_networks_are_refused(stack: Any, sdk_server: Any) -> None:
    async with Admin(stack.gateway_url, stack.admin_headers) as admin:
        gateway = await admin.create_gateway()
        for endpoint in (
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/mcp",
            "http://[fd00:ec2::254]/mcp",
            "http://[::ffff:169.254.169.254]/mcp",
            "file:///etc/passwd",
            "gopher://127.0.0.1:70/x",
        ):
            r = await admin.http.post(
                f"/gateways/{gateway['gatewayId']}/targets", json=target_body("bad", endpoint)
            )
            assert r.status_code == 400, (endpoint, r.text)
    # an operator can deny more, e.g. the gateway's own machine; a name that resolves there is caught too
    strict = stack.start_gateway_replica(TARGET_DENIED_NETWORKS="127.0.0.0/8,::1/128")
    async with Admin(strict.url, stack.admin_headers) as admin:
        port = sdk_server.url.split(":")[2].split("/")[0]
        for endpoint in (sdk_server.url, f"http://localhost:{port}/mcp"):
            r = await admin.http.post(
                f"/gateways/{gateway['gatewayId']}/targets", json=target_body("loop", endpoint)
            )
            assert r.status_code == 400 and "denied network" in r.json()["error"]["message"], r.text


async def test_browser_endpoints_never_redirect_anywhere_unknown(stack: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.identity_url, follow_redirects=False) as http:
        for path in (
            "/identities/oauth2/authorize?request_uri=urn:ietf:params:oauth:request_uri:forged",
            "/identities/oauth2/authorize?request_uri=https://evil.example/",
            "/identities/oauth2/callback/nope?code=c&state=forged",
            "/identities/oauth2/callback/nope?error=access_denied&state=s",
        ):
            r = await http.get(path)
            assert r.status_code == 400 and "location" not in r.headers
            assert r.headers["content-type"].startswith("text/html")
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
MESSAGES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
            "method": st.sampled_from(
                [
                    "tools/call",
                    "tools/list",
                    "ping",
                    "initialize",
                    "server/discover",
                    "notifications/initialized",
                    "x",
                ]
            )
            | st.text(max_size=10),
        },
        optional={"id": st.integers() | st.text(max_size=5) | st.none() | st.booleans(), "params": JSON},
    ),
)


@pytest.fixture(scope="module")
def fuzz_target(stack: Any) -> tuple[str, str]:
    r = httpx.post(f"{stack.gateway_url}/gateways", json={"name": "fuzz"}, headers=stack.admin_headers)
    url = r.json()["gatewayUrl"]
    init = initialize(msg_id=0)
    session = httpx.post(url, json=init, headers=HEADERS).headers["mcp-session-id"]
    return url, session


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=MESSAGES, with_session=st.booleans())
def test_mcp_endpoint_survives_fuzzing(
    fuzz_target: tuple[str, str], message: Any, with_session: bool
) -> None:
    url, session = fuzz_target
    headers = dict(HEADERS)
    if with_session:
        headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    r = httpx.post(url, content=json.dumps(message).encode(), headers=headers, timeout=10)
    assert r.status_code in (200, 202, 400, 404), r.text
    if r.status_code == 202:
        assert r.content == b""
        return
    answer = r.json()
    assert answer["jsonrpc"] == "2.0" and ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        assert isinstance(answer["error"]["code"], int) and isinstance(answer["error"]["message"], str)
