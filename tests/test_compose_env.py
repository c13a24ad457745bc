"""`make env` (scripts/env.py), .env.example, and compose.yaml rendered with a generated .env for
both profiles (default and `demo`) by the real Compose v2 CLI (`docker-compose config`, no Docker
engine; see test_compose.py for the binary)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from test_compose import ALL_SERVICES, COMPOSE_FILE, REPO, SECRETS, compose_bin, run_config

__all__ = ["compose_bin"]  # the fixture, shared with test_compose.py


@pytest.fixture(autouse=True)
def _no_demo_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # the caller's DEMO_* would win over the .env file under test
    import os

    for name in [n for n in os.environ if n.startswith("DEMO_")]:
        monkeypatch.delenv(name)


DEMO_SERVICES = {"demo-idp", "demo-toolbox", "demo-notes", "demo-setup"}


def _make_env(output: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["python3", str(REPO / "scripts" / "env.py"), "--output", str(output), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return dict(pairs)


@pytest.fixture(scope="module")
def generated_env(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("env") / ".env"
    made = _make_env(path)
    assert made.returncode == 0, made.stderr
    return path


def test_make_env_writes_fresh_secrets_in_their_formats(generated_env, tmp_path):
    import base64
    import stat

    env = _read_env(generated_env)
    assert stat.S_IMODE(generated_env.stat().st_mode) == 0o600
    # every secret compose requires, and nothing else set: the optional ones stay commented out
    assert set(env) == {*SECRETS, "DEMO_IDP_ADMIN_SECRET"}
    assert len(env["GATEHOUSE_ADMIN_TOKEN"]) >= 32 and len(env["GATEHOUSE_SESSION_SECRET"]) >= 32
    kid, key = env["IDENTITY_VAULT_KEYS"].split(":")
    assert kid and len(base64.b64decode(key, validate=True)) == 32
    kid, key = env["IDENTITY_TOKEN_KEYS"].split(":")
    assert kid and len(key) >= 32
    passwords = [v for k, v in env.items() if k.startswith("GATEHOUSE_NATS_")]
    assert len(passwords) == 5 == len(set(passwords))
    assert all(re.fullmatch(r"[a-z][0-9a-f]{48}", p) for p in passwords)  # nats.conf reads them as strings
    # the services accept them
    from gatehouse_identity.crypto import TokenSigner, Vault

    Vault(env["IDENTITY_VAULT_KEYS"])
    TokenSigner(env["IDENTITY_TOKEN_KEYS"], 60)

    # an existing .env is kept (its keys open the vault) unless forced; forced, all is new
    copy = tmp_path / ".env"
    copy.write_bytes(generated_env.read_bytes())
    refused = _make_env(copy)
    assert refused.returncode != 0 and "exists" in refused.stderr
    assert copy.read_bytes() == generated_env.read_bytes()
    assert _make_env(copy, "--force").returncode == 0
    fresh = _read_env(copy)
    assert set(fresh) == set(env) and not set(fresh.values()) & set(env.values())


def test_make_target_writes_dot_env(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=60)
    # the committed Makefile, scripts/env.py and .env.example, with this checkout's edits on top
    for name in ("Makefile", "scripts/env.py", ".env.example"):
        (clone / name).write_bytes((REPO / name).read_bytes())
    made = subprocess.run(["make", "env"], cwd=clone, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert _read_env(clone / ".env")["GATEHOUSE_ADMIN_TOKEN"]
    again = subprocess.run(["make", "env"], cwd=clone, capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "FORCE=1" in again.stderr


def test_env_example_names_every_compose_variable():
    # every compose file of the repository (compose.yaml and its overrides) reads only what the
    # example lists, commented out when optional
    used = {
        name
        for path in REPO.glob("compose*.yaml")
        for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)", path.read_text())
    }
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"(?m)^(?:# )?([A-Z][A-Z0-9_]*)=", example))
    assert COMPOSE_FILE in REPO.glob("compose*.yaml")
    assert used - listed == set(), "variables compose files read but .env.example does not list"


@pytest.mark.parametrize("profile", ["default", "demo"])
def test_generated_env_renders_with_nothing_unset(compose_bin, generated_env, profile):
    profiles = {"COMPOSE_PROFILES": "demo"} if profile == "demo" else {}
    proc = run_config(compose_bin, generated_env, **profiles)
    assert proc.returncode == 0, proc.stderr
    assert "is not set" not in proc.stderr, proc.stderr  # compose warns of unset variables
    services = json.loads(proc.stdout)["services"]
    assert set(services) == (ALL_SERVICES | DEMO_SERVICES if profile == "demo" else ALL_SERVICES)
    empty = {
        (name, var)
        for name, svc in services.items()
        for var, value in (svc.get("environment") or {}).items()
        if value in ("", None)
    }
    # empty = the service default; the console's users' sign-in is optional (operators only without it)
    console_oidc = {
        ("console", f"CONSOLE_OIDC_{v}") for v in ("DISCOVERY_URL", "CLIENT_ID", "CLIENT_SECRET", "RESOURCE")
    }
    # and tool search's embedding service is optional (words only without it)
    embeddings = {("gateway", f"GATEWAY_SEARCH_EMBEDDINGS_{v}") for v in ("URL", "MODEL", "API_KEY")}
    assert empty == {("gateway", "GATEWAY_ALLOWED_ORIGINS"), *console_oidc, *embeddings}


def test_demo_profile(compose_bin, generated_env):
    proc = run_config(compose_bin, generated_env, COMPOSE_PROFILES="demo")
    services = json.loads(proc.stdout)["services"]
    env = _read_env(generated_env)
    idp, setup = services["demo-idp"], services["demo-setup"]
    assert idp["build"]["target"] == "demo" and "demo" in set(
        re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)\s*$", (REPO / "Dockerfile").read_text())
    )
    # the provider is published on loopback only, under the name browsers and containers share
    assert [(p.get("host_ip"), str(p["published"])) for p in idp["ports"]] == [("127.0.0.1", "8090")]
    assert "idp.localhost" in idp["networks"]["default"]["aliases"]
    assert idp["environment"]["DEMO_IDP_ADMIN_SECRET"] == env["DEMO_IDP_ADMIN_SECRET"]
    assert setup["environment"]["DEMO_IDP_ADMIN_SECRET"] == env["DEMO_IDP_ADMIN_SECRET"]
    assert setup["environment"]["GATEHOUSE_ADMIN_TOKEN"] == env["GATEHOUSE_ADMIN_TOKEN"]
    assert setup["command"][:2] == ["python", "demo/provision.py"]  # the set-up `make demo` runs
    assert setup["restart"] == "no"
    assert {d for d, c in setup["depends_on"].items() if c["condition"] == "service_healthy"} >= {
        "gateway",
        "identity",
        "demo-idp",
    }
    for name in DEMO_SERVICES - {"demo-idp"}:
        assert not services[name].get("ports"), name


def test_readme_compose_steps():
    readme = (REPO / "README.md").read_text()
    assert "```sh\nmake env\ndocker compose up --build\n```" in readme
