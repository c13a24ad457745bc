"""`gatehouse`, the admin CLI, run as a user runs it (a subprocess) against the running stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import harness
import httpx
import pytest
from admin import unique

CLI = shutil.which("gatehouse", path=os.path.dirname(sys.executable)) or "gatehouse"


class Cli:
    """Runs `gatehouse` with the stack's URLs and admin token in the environment, as a user would."""

    def __init__(self, stack: Any, home: Path) -> None:
        self.stack = stack
        self.env = {
            **os.environ,
            "GATEWAY_PUBLIC_URL": stack.gateway_url,
            "IDENTITY_PUBLIC_URL": stack.identity_url,
            "GATEHOUSE_ADMIN_TOKEN": stack.admin_token,
            "XDG_CONFIG_HOME": str(home),  # no config file of whoever runs the tests
        }
        self.env.pop("GATEHOUSE_CONFIG", None)
        self.env.pop("GATEHOUSE_USER_TOKEN", None)

    def run(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
        result = subprocess.run(
            [CLI, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            input=stdin,
        )
        # whatever happens, the admin token is never shown
        assert self.stack.admin_token not in result.stdout + result.stderr
        return result

    def ok(self, *args: str, **kwargs: Any) -> str:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"gatehouse {' '.join(args)}: {result.stdout}{result.stderr}"
        return str(result.stdout)

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs))

    def fails(self, *args: str, code: int = 1, **kwargs: Any) -> str:
        result = self.run(*args, **kwargs)
        assert result.returncode == code, f"gatehouse {' '.join(args)}: {result.stdout}{result.stderr}"
        return str(result.stdout + result.stderr)


@pytest.fixture
def cli(stack: Any, tmp_path: Path) -> Cli:
    return Cli(stack, tmp_path / "config")


def _http(stack: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, headers=stack.admin_headers, timeout=30)


def _wait(stack: Any, gateway_id: str, target_id: str, status: str = "READY") -> dict[str, Any]:
    with _http(stack) as http:
        deadline = time.monotonic() + 60
        while True:
            target = http.get(f"/gateways/{gateway_id}/targets/{target_id}").json()
            if target["status"] == status or time.monotonic() > deadline:
                assert target["status"] == status, target
                return target  # type: ignore[no-any-return]
            time.sleep(0.1)


def _gateway_names(stack: Any) -> set[str]:
    with _http(stack) as http:
        return {g["name"] for g in http.get("/gateways", params={"maxResults": 1000}).json()["items"]}


# -- list / get / create / delete ---------------------------------------------------------------


def test_gateways_list_get_create_delete(cli: Cli, tmp_path: Path) -> None:
    name = unique("cligw")
    created = cli.json("gateways", "create", "--name", name, "--description", "made by the CLI")
    gid = created["gatewayId"]
    assert created["name"] == name and created["authorizerType"] == "NONE"
    table = cli.ok("gateways", "list")
    assert table.splitlines()[0].split() == ["ID", "NAME", "AUTHORIZER", "STATUS", "URL"]
    assert any(line.split()[:2] == [gid, name] for line in table.splitlines())
    assert cli.json("gateways", "get", name)["gatewayId"] == gid  # by name
    shown = cli.ok("gateways", "get", gid)  # by id, for people
    assert "made by the CLI" in shown and created["gatewayUrl"] in shown
    # from a YAML body
    body = tmp_path / "gw.yaml"
    other = unique("cligwfile")
    body.write_text(f"name: {other}\nprotocolConfiguration:\n  mcp:\n    supportedVersions: ['2025-11-25']\n")
    from_file = cli.json("gateways", "create", "-f", str(body))
    assert from_file["protocolConfiguration"]["mcp"]["supportedVersions"] == ["2025-11-25"]
    # the API's refusal is shown as the API's message; nothing is created
    out = cli.fails("gateways", "create", "--name", "bad_name")
    assert "HTTP 400 from POST /gateways: ValidationException" in out and "$.name" in out
    assert cli.json("gateways", "delete", name)["status"] == "DELETING"
    cli.ok("gateways", "delete", from_file["gatewayId"])
    assert not {name, other} & _gateway_names(cli.stack)
    assert "no gateway with id or name" in cli.fails("gateways", "get", name)


def test_targets_list_get_create_delete(cli: Cli, sdk_server: Any, tmp_path: Path) -> None:
    gateway = cli.json("gateways", "create", "--name", unique("clitg"))
    gid = gateway["gatewayId"]
    synced = cli.json("targets", "create", gateway["name"], "--name", "echo", "--endpoint", sdk_server.url)
    assert synced["status"] == "CREATING"
    tools = tmp_path / "tools.yaml"
    tools.write_text("tools:\n  - name: forecast\n    inputSchema: {type: object}\n")
    inline = cli.json(
        "targets",
        "create",
        gid,
        "--name",
        "weather",
        "--endpoint",
        sdk_server.url,
        "--tools-file",
        str(tools),
    )
    assert inline["status"] == "READY" and inline["toolCount"] == 1
    _wait(cli.stack, gid, synced["targetId"])
    table = cli.ok("targets", "list", gid).splitlines()
    assert table[0].split()[:4] == ["ID", "NAME", "STATUS", "TOOLS"]
    rows = {line.split()[1]: line.split() for line in table[1:]}
    assert rows["echo"][2:4] == ["READY", "5"] and rows["weather"][2:4] == ["READY", "1"]
    got = cli.json("targets", "get", gateway["name"], "echo")  # both by name
    assert got["targetId"] == synced["targetId"] and got["toolCount"] == 5
    # a body on standard input, its tools as an object rather than the API's JSON string
    body = {"name": "viastdin", "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": sdk_server.url}}}}
    tools_object = {"tools": [{"name": "a", "inputSchema": {"type": "object"}}]}
    body["targetConfiguration"]["mcp"]["mcpServer"]["mcpToolSchema"] = {"inlinePayload": tools_object}
    from_stdin = cli.json("targets", "create", gid, "-f", "-", stdin=json.dumps(body))
    payload = from_stdin["targetConfiguration"]["mcp"]["mcpServer"]["mcpToolSchema"]["inlinePayload"]
    assert from_stdin["toolCount"] == 1 and json.loads(payload) == tools_object
    cli.ok("targets", "delete", gid, "viastdin")
    cli.ok("targets", "delete", gid, "weather")
    cli.ok("targets", "delete", gid, synced["targetId"])
    assert cli.json("targets", "list", gid) == []
    # a gateway with targets cannot go: the API says why
    again = cli.json("targets", "create", gid, "--name", "echo", "--endpoint", sdk_server.url)
    out = cli.fails("gateways", "delete", gid)
    assert "HTTP 409" in out and "ConflictException" in out
    cli.ok("targets", "delete", gid, again["targetId"])
    cli.ok("gateways", "delete", gid)


def test_providers_list_get_create_delete(cli: Cli, tmp_path: Path) -> None:
    name = unique("cliprov")
    secret = f"gh-test-{uuid.uuid4().hex}"
    harness.remember_secret(secret)
    endpoints = [
        "--issuer", "http://127.0.0.1:1/as",
        "--authorization-endpoint", "http://127.0.0.1:1/as/authorize",
        "--token-endpoint", "http://127.0.0.1:1/as/token",
    ]  # fmt: skip
    created = cli.json(
        "providers", "create", "--name", name, "--client-id", "c", *endpoints,
        "--client-secret-env", "PROVIDER_SECRET", env={"PROVIDER_SECRET": secret},
    )  # fmt: skip
    assert created["callbackUrl"].startswith(cli.stack.identity_url)
    got = cli.json("providers", "get", name)
    assert got["clientId"] == "c" and secret not in json.dumps(got)
    assert any(line.split()[0] == name for line in cli.ok("providers", "list").splitlines())
    # a secret never comes from the command line or a body: the environment or a file only
    assert "--client-secret-env or --client-secret-file" in cli.fails(
        "providers", "create", "--name", "x", "--client-id", "c", code=2
    )
    body = tmp_path / "provider.yaml"
    github = {"githubOauth2ProviderConfig": {"clientId": "c", "clientSecret": "inline-secret"}}
    body.write_text(
        json.dumps(
            {
                "name": unique("cliprov"),
                "credentialProviderVendor": "GithubOauth2",
                "oauth2ProviderConfigInput": github,
            }
        )
    )
    assert "inline secrets are refused" in cli.fails("providers", "create", "-f", str(body))
    (tmp_path / "secret.txt").write_text(secret + "\n")
    body.write_text(body.read_text().replace('"inline-secret"', '{"file": "secret.txt"}'))
    from_file = cli.json("providers", "create", "-f", str(body))
    assert from_file["credentialProviderVendor"] == "GithubOauth2"
    cli.ok("providers", "delete", name)
    cli.ok("providers", "delete", from_file["name"])
    assert "HTTP 404" in cli.fails("providers", "get", name)


def test_identities_list_get_create_delete(cli: Cli) -> None:
    name = unique("cliwl")
    result = cli.run("identities", "create", "--name", name, "--return-url", "http://127.0.0.1:9/done")
    assert result.returncode == 0, result.stderr
    assert "clientSecret" in result.stdout and "shown this once" in result.stderr
    got = cli.json("identities", "get", name)
    assert (
        got["allowedResourceOauth2ReturnUrls"] == ["http://127.0.0.1:9/done"] and got["clientSecret"] is None
    )
    assert any(line.split()[:2] == [name, "admin"] for line in cli.ok("identities", "list").splitlines())
    cli.ok("identities", "delete", name)
    assert "ResourceNotFoundException" in cli.fails("identities", "get", name)


# -- status, tools ------------------------------------------------------------------------------


def test_status_shows_every_target_with_reasons_and_tools(
    cli: Cli, sdk_server: Any, not_mcp_server: Any
) -> None:
    gateway = cli.json("gateways", "create", "--name", unique("clistatus"))
    gid = gateway["gatewayId"]
    good = cli.json("targets", "create", gid, "--name", "good", "--endpoint", sdk_server.url)
    bad = cli.json("targets", "create", gid, "--name", "bad", "--endpoint", not_mcp_server.url)
    _wait(cli.stack, gid, good["targetId"])
    failed = _wait(cli.stack, gid, bad["targetId"], "FAILED")
    lines = cli.ok("status").splitlines()
    assert lines[0].split() == ["GATEWAY", "TARGET", "ID", "STATUS", "TOOLS", "REASONS"]
    mine = {line.split()[1]: line for line in lines if line.startswith(gateway["name"] + " ")}
    assert mine["good"].split()[3:5] == ["READY", "5"]
    assert mine["bad"].split()[3:5] == ["FAILED", "0"] and failed["statusReasons"][0] in mine["bad"]
    one = cli.json("status", gateway["name"])
    assert sorted(t["name"] for t in one) == ["bad", "good"]
    # tools: what the gateway's MCP clients see
    tools = cli.ok("tools", gateway["name"]).splitlines()
    assert tools[0].split() == ["NAME", "DESCRIPTION"]
    assert {line.split()[0] for line in tools[1:]} == {
        f"good___{t}" for t in ("echo", "add", "slow", "fail", "whoami")
    }
    for t in (good, bad):
        cli.ok("targets", "delete", gid, t["targetId"])
    cli.ok("gateways", "delete", gid)


def test_tools_of_a_custom_jwt_gateway_take_a_users_token(
    cli: Cli, sdk_server: Any, oidc_provider: Any
) -> None:
    audience = f"https://gatehouse.test/{uuid.uuid4().hex[:8]}"
    discovery = f"{oidc_provider.url}/.well-known/openid-configuration"
    gateway = cli.json(
        "gateways", "create", "--name", unique("clijwt"), "--discovery-url", discovery, "--audience", audience
    )
    gid = gateway["gatewayId"]
    target = cli.json("targets", "create", gid, "--name", "t", "--endpoint", sdk_server.url)
    _wait(cli.stack, gid, target["targetId"])
    out = cli.fails("tools", gid)  # the admin token is no MCP credential
    assert "HTTP 401" in out and "--token" in out
    token = harness.user_tokens(oidc_provider, "U1", resource=audience)["access_token"]
    assert "t___echo" in cli.ok("tools", gid, "--token", token)
    assert "t___echo" in cli.ok("tools", gid, env={"GATEHOUSE_USER_TOKEN": token})
    cli.ok("targets", "delete", gid, "t")
    cli.ok("gateways", "delete", gid)


# -- credentials and errors ---------------------------------------------------------------------


def test_settings_from_a_config_file_and_clear_errors(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config" / "gatehouse" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'gateway_url = "{cli.stack.gateway_url}"\nidentity_url = "{cli.stack.identity_url}"\n'
        f'admin_token = "{cli.stack.admin_token}"\n'
    )
    config.chmod(0o600)
    bare = {
        k: v
        for k, v in cli.env.items()
        if k not in ("GATEWAY_PUBLIC_URL", "IDENTITY_PUBLIC_URL", "GATEHOUSE_ADMIN_TOKEN")
    }
    result = subprocess.run(
        [CLI, "providers", "list", "--json"], env=bare, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    # the environment wins over the file: a wrong token is refused with the API's message
    assert "HTTP 401" in cli.fails("gateways", "list", env={"GATEHOUSE_ADMIN_TOKEN": "not-the-token"})
    config.unlink()
    assert "no admin token" in cli.fails("gateways", "list", env={"GATEHOUSE_ADMIN_TOKEN": ""})
    # connection refused names the URL
    down = f"http://127.0.0.1:{harness.free_port()}"
    assert f"cannot connect to {down}/gateways" in cli.fails("--gateway-url", down, "gateways", "list")
    assert f"cannot connect to {down}/identities" in cli.fails("--identity-url", down, "identities", "list")


# -- apply --------------------------------------------------------------------------------------


def _file(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "gatehouse.yaml"
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _target(name: str, endpoint: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": endpoint}}}, **fields}


def _provider(name: str) -> dict[str, Any]:
    metadata = {
        "issuer": "http://127.0.0.1:1/as",
        "authorizationEndpoint": "http://127.0.0.1:1/as/authorize",
        "tokenEndpoint": "http://127.0.0.1:1/as/token",
    }
    config = {
        "oauthDiscovery": {"authorizationServerMetadata": metadata},
        "clientId": "c",
        "clientSecret": "${APPLY_SECRET}",
    }
    return {
        "name": name,
        "credentialProviderVendor": "CustomOauth2",
        "oauth2ProviderConfigInput": {"customOauth2ProviderConfig": config},
    }


def _plan_lines(out: str) -> list[str]:
    return [
        line.strip() for line in out.splitlines() if line.startswith("  ") and line.strip()[:1] in "+~-↻="
    ]


def test_apply_creates_then_changes_only_what_differs_and_prunes(
    cli: Cli, sdk_server: Any, tmp_path: Path
) -> None:
    owner, gw, gone_gw, prov = unique("stack"), unique("applygw"), unique("applyold"), unique("applyprov")
    secret = {"APPLY_SECRET": f"gh-test-{uuid.uuid4().hex}"}
    harness.remember_secret(secret["APPLY_SECRET"])
    inline = {
        "mcpToolSchema": {
            "inlinePayload": {"tools": [{"name": "forecast", "inputSchema": {"type": "object"}}]}
        }
    }
    weather = _target("weather", sdk_server.url)
    weather["targetConfiguration"]["mcp"]["mcpServer"].update(inline)
    doc: dict[str, Any] = {
        "name": owner,
        "providers": [_provider(prov)],
        "gateways": [
            {
                "name": gw,
                "description": "team tools",
                "targets": [_target("echo", sdk_server.url), weather, _target("old", sdk_server.url)],
            },
            {"name": gone_gw, "targets": [_target("echo", sdk_server.url)]},
        ],
    }
    path = _file(tmp_path, doc)

    # --dry-run: the plan, and nothing else
    out = cli.ok("apply", "-f", path, "--dry-run", env=secret)
    assert (
        f"+ create gateway {gw}" in out
        and f"+ create target {gw}/echo" in out
        and f"+ create provider {prov}" in out
    )
    assert gw not in _gateway_names(cli.stack)

    out = cli.ok("apply", "-f", path, env=secret)
    assert (
        len([line for line in _plan_lines(out) if line.startswith("+")]) == 7
    )  # 1 provider, 2 gateways, 4 targets
    assert f"{gw}/echo: CREATING -> READY" in out and "Applied: 4 target(s) READY." in out
    status = {(t["gatewayName"], t["name"]): t for t in cli.json("status")}
    assert status[(gw, "echo")]["toolCount"] == 5 and status[(gw, "weather")]["toolCount"] == 1
    gateway = cli.json("gateways", "get", gw)
    assert gateway["description"] == f"team tools [gatehouse:{owner}]"  # the mark --prune goes by
    assert cli.json("providers", "get", prov)["clientId"] == "c"

    # again: nothing to do
    out = cli.ok("apply", "-f", path, env=secret)
    assert "No changes." in out and _plan_lines(out) == [
        f"= 7 unchanged: provider {prov}, gateway {gw}, target {gw}/echo, target {gw}/weather, "
        f"target {gw}/old, gateway {gone_gw}, target {gone_gw}/echo"
    ]

    # one field changed: one update; --dry-run first changes nothing
    doc["gateways"][0]["targets"][0]["description"] = "echoes"
    path = _file(tmp_path, doc)
    before = cli.json("targets", "get", gw, "echo")
    out = cli.ok("apply", "-f", path, "--dry-run", env=secret)
    assert [line for line in _plan_lines(out) if not line.startswith("=")] == [
        f"~ update target {gw}/echo (description)"
    ]
    assert cli.json("targets", "get", gw, "echo")["generation"] == before["generation"]
    out = cli.ok("apply", "-f", path, env=secret)
    assert [line for line in _plan_lines(out) if not line.startswith("=")] == [
        f"~ update target {gw}/echo (description)"
    ]
    after = cli.json("targets", "get", gw, "echo")
    assert after["description"] == "echoes" and after["generation"] == before["generation"] + 1
    assert after["status"] == "READY" and after["targetId"] == before["targetId"]

    # --prune: a target and a gateway the file no longer names go; what it never managed stays
    stranger = cli.json("gateways", "create", "--name", unique("applystranger"))
    doc["gateways"][0]["targets"] = doc["gateways"][0]["targets"][:2]
    del doc["gateways"][1]
    path = _file(tmp_path, doc)
    out = cli.ok("apply", "-f", path, env=secret)  # without --prune, nothing is deleted
    assert "No changes." in out
    out = cli.ok("apply", "-f", path, "--prune", env=secret)
    assert {line for line in _plan_lines(out) if line.startswith("-")} == {
        f"- delete target {gw}/old",
        f"- delete target {gone_gw}/echo",
        f"- delete gateway {gone_gw}",
    }
    names = _gateway_names(cli.stack)
    assert gw in names and gone_gw not in names and stranger["name"] in names
    assert sorted(t["name"] for t in cli.json("targets", "list", gw)) == ["echo", "weather"]

    # a gateway another file manages is not taken over
    out = cli.fails("apply", "-f", _file(tmp_path, {"name": "someone-else", "gateways": [{"name": gw}]}))
    assert f"gateway {gw!r} is managed by the file named {owner!r}" in out

    for target in ("echo", "weather"):
        cli.ok("targets", "delete", gw, target)
    for name in (gw, stranger["name"]):
        cli.ok("gateways", "delete", name)
    cli.ok("providers", "delete", prov)


def test_apply_exits_non_zero_with_the_reason_of_a_failed_target(
    cli: Cli, sdk_server: Any, not_mcp_server: Any, tmp_path: Path
) -> None:
    gw = unique("applyfail")
    doc = {
        "name": unique("stack"),
        "gateways": [
            {"name": gw, "targets": [_target("good", sdk_server.url), _target("html", not_mcp_server.url)]}
        ],
    }
    result = cli.run("apply", "-f", _file(tmp_path, doc))
    assert result.returncode == 1, result.stdout + result.stderr
    reason = cli.json("targets", "get", gw, "html")["statusReasons"][0]
    assert (
        f"FAILED: target html of gateway {cli.json('gateways', 'get', gw)['gatewayId']} is FAILED: {reason}"
        in result.stderr
    )
    assert f"{gw}/good: CREATING -> READY" in result.stdout
    # applied again, the failed target is synchronized again (and fails again)
    result = cli.run("apply", "-f", _file(tmp_path, doc))
    assert result.returncode == 1 and f"↻ sync target {gw}/html (FAILED)" in result.stdout
    for target in ("good", "html"):
        cli.ok("targets", "delete", gw, target)
    cli.ok("gateways", "delete", gw)


def test_apply_refuses_inline_secrets_and_invalid_files_changing_nothing(cli: Cli, tmp_path: Path) -> None:
    prov = _provider(unique("applyinline"))
    prov["oauth2ProviderConfigInput"]["customOauth2ProviderConfig"]["clientSecret"] = "s3cret-inline"
    gw = unique("applyinline")
    out = cli.fails(
        "apply", "-f", _file(tmp_path, {"name": "x", "providers": [prov], "gateways": [{"name": gw}]})
    )
    where = "providers[0].oauth2ProviderConfigInput.customOauth2ProviderConfig.clientSecret"
    assert f"{where}: inline secrets are refused" in out
    assert '"${ENV_VAR}"' in out and "s3cret-inline" not in out
    # a secret named but not there
    prov["oauth2ProviderConfigInput"]["customOauth2ProviderConfig"]["clientSecret"] = "${APPLY_UNSET_SECRET}"
    out = cli.fails("apply", "-f", _file(tmp_path, {"name": "x", "providers": [prov]}))
    assert "the environment variable APPLY_UNSET_SECRET is not set" in out
    # the schema: where and what
    bad = {
        "name": "x",
        "gateways": [{"name": gw, "targets": [{"name": "t", "targetConfiguration": {}}]}],
        "extra": 1,
    }
    out = cli.fails("apply", "-f", _file(tmp_path, bad))
    assert "does not follow docs/gatehouse.schema.json" in out
    assert "gateways[0].targets[0].targetConfiguration: 'mcp' is a required property" in out
    assert "Additional properties are not allowed ('extra' was unexpected)" in out
    twice = {"name": "x", "gateways": [{"name": gw}, {"name": gw}]}
    assert f"gateway {gw!r} is named twice" in cli.fails("apply", "-f", _file(tmp_path, twice))
    assert gw not in _gateway_names(cli.stack)


def test_the_published_schema_is_the_one_the_cli_checks_with() -> None:
    root = Path(__file__).resolve().parents[1]
    published = json.loads((root / "docs" / "gatehouse.schema.json").read_text())
    from gatehouse_cli.spec import schema

    assert published == schema()


def test_apply_shows_the_consent_url_of_a_target_that_waits_for_the_admin(
    cli: Cli, sdk_server: Any, oidc_provider: Any, tmp_path: Path
) -> None:
    """An authorization-code target without tools up front waits for the admin's consent: apply says
    where to give it and exits 3; applied again, the discovered provider and the gateway with its
    authorizer (and a login-client secret read from a file) compare equal."""
    discovery = f"{oidc_provider.url}/.well-known/openid-configuration"
    prov, gw = unique("applyas"), unique("applyjwt")
    secrets = {"APPLY_AS_SECRET": f"gh-test-{uuid.uuid4().hex}"}
    login_secret = f"gh-test-{uuid.uuid4().hex}"
    for secret in (*secrets.values(), login_secret):
        harness.remember_secret(secret)
    (tmp_path / "login-secret").write_text(login_secret)
    return_url = f"http://127.0.0.1:{harness.free_port()}/callback"
    oauth = {"providerName": prov, "grantType": "AUTHORIZATION_CODE", "defaultReturnUrl": return_url}
    target = _target("mine", sdk_server.url)
    target["credentialProviderConfigurations"] = [
        {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
    ]
    authorizer = {
        "discoveryUrl": discovery,
        "allowedAudience": [f"https://gatehouse.test/{uuid.uuid4().hex[:8]}"],
        "loginClient": {"clientId": "gatehouse-consent", "clientSecret": {"file": "login-secret"}},
    }
    config = {
        "oauthDiscovery": {"discoveryUrl": discovery},
        "clientId": "c",
        "clientSecret": "${APPLY_AS_SECRET}",
    }
    doc = {
        "name": unique("stack"),
        "providers": [
            {
                "name": prov,
                "credentialProviderVendor": "CustomOauth2",
                "oauth2ProviderConfigInput": {"customOauth2ProviderConfig": config},
            }
        ],
        "gateways": [
            {
                "name": gw,
                "authorizerType": "CUSTOM_JWT",
                "authorizerConfiguration": {"customJWTAuthorizer": authorizer},
                "targets": [target],
            }
        ],
    }
    path = _file(tmp_path, doc)
    result = cli.run("apply", "-f", path, env=secrets)
    assert result.returncode == 3, result.stdout + result.stderr
    waiting = cli.json("targets", "get", gw, "mine")
    assert waiting["status"] == "CREATE_PENDING_AUTH"
    url = waiting["authorizationData"]["oauth2"]["authorizationUrl"]
    assert "/identities/oauth2/authorize?request_uri=" in url and url in result.stderr
    assert f"gatehouse authorize --target {waiting['gatewayId']} {waiting['targetId']}" in result.stderr
    assert "consent at" in cli.ok("status", gw)
    result = cli.run("apply", "-f", path, env=secrets)
    assert result.returncode == 3 and "No changes." in result.stdout, result.stdout + result.stderr
    # --update-secrets sends them again: the provider and the gateway's login client
    out = cli.run("apply", "-f", path, "--update-secrets", "--dry-run", env=secrets).stdout
    assert f"~ update provider {prov} (clientSecret)" in out
    assert f"~ update gateway {gw} (loginClient.clientSecret)" in out
    # a changed discovery URL is seen, though the API keeps only what it discovered
    config["oauthDiscovery"] = {"discoveryUrl": f"{oidc_provider.url}/other/.well-known/openid-configuration"}
    out = cli.run("apply", "-f", _file(tmp_path, doc), "--dry-run", env=secrets).stdout
    assert f"~ update provider {prov} (discoveryUrl)" in out
