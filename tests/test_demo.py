"""`make demo` from a clean clone, followed exactly as the box it prints says: call a protected
tool as alice, open the consent URL in headless Chromium, sign in, allow, call again; then Ctrl-C,
and nothing is left running. A second `make demo` reuses the first one's gateway and alice's grant.

The clone is `git clone` of this repository's HEAD (committed work only). Its bootstrap reuses
this checkout's .venv, .tools and tests/node_modules through symlinks (the services then run this
checkout's packages, installed editable; the demo's scripts are the clone's), so the test takes
seconds, not the minutes of a first bootstrap. GATEHOUSE_DEMO_TEST_BOOTSTRAP=1 bootstraps the
clone from scratch instead (pip, npm and FerretDB from their caches), as a new user would; so
does the test when the bootstrap's inputs (lock file, pyprojects, npm files) have uncommitted
changes, which would make the clone's bootstrap reinstall into the borrowed tools.

Prints how long it took from `make demo` to the consented tool call (README, "Five minutes").
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import browser
import httpx
import pytest
from rawmcp import initialize, post

REPO = Path(__file__).resolve().parents[1]
# NATS, FerretDB, gateway, identity, sync-worker, audit, demo IdP, toolbox, notes (docs/demo.md)
PORTS = [4222, 27017, 8080, 8081, 8082, 8083, 8090, 8091, 8092]
NOTES_URL = "http://127.0.0.1:8092/mcp"
# What scripts/bootstrap.sh installs from. This checkout's tools are borrowed only when the clone's
# copies of these are the same: otherwise the clone's bootstrap would reinstall into them.
BOOTSTRAP_INPUTS = [
    "requirements.lock",
    "contracts/pyproject.toml",
    "services/*/pyproject.toml",
    "cli/pyproject.toml",
    "tests/package.json",
    "tests/package-lock.json",
]


def _borrow_tools() -> bool:
    if os.environ.get("GATEHOUSE_DEMO_TEST_BOOTSTRAP"):
        return False
    same = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", *BOOTSTRAP_INPUTS], cwd=REPO, timeout=60)
    return same.returncode == 0


BORROW = _borrow_tools()
UP_TIMEOUT = 180 if BORROW else 900
# Whatever of the caller's environment would change what `make demo` does.
DROP = ("GATEHOUSE_", "NATS_", "MONGODB_", "GATEWAY_", "IDENTITY_", "SYNC_WORKER_", "AUDIT_", "DEMO_")

pytestmark = [
    pytest.mark.skipif(
        not browser.chromium_available(), reason="chromium missing: run scripts/install-browser.sh"
    ),
    pytest.mark.timeout(UP_TIMEOUT * 2 + 300),
]


def _busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    """`make demo` running in its own process group, as in a terminal; its output collected."""

    def __init__(self, clone: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["make", "demo"],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def wait_for_instructions(self) -> str:
        """Everything from the box to the end of the client configuration."""
        deadline = time.monotonic() + UP_TIMEOUT
        with self.changed:
            while True:
                text = "\n".join(self.lines)
                m = re.search(r"^\+-+\+$.*?^MCP client configuration.*?^\}$", text, re.S | re.M)
                if m:
                    return m.group(0)
                left = deadline - time.monotonic()
                if self.proc.poll() is not None or left <= 0:
                    tail = "\n".join(self.lines[-60:])
                    raise AssertionError(f"make demo did not print its instructions:\n{tail}")
                self.changed.wait(min(left, 1.0))

    def ctrl_c(self) -> None:
        """SIGINT to the foreground process group, as a terminal's Ctrl-C does; everything stops.
        (make itself then ends by SIGINT, as make does on Ctrl-C; scripts/demo.sh exits 0.)"""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        status = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        assert status in (0, -signal.SIGINT), self.output()[-3000:]
        assert self.output().rstrip().endswith("==> stopped"), self.output()[-3000:]


def _box(instructions: str) -> list[str]:
    return [line[2:-2].rstrip() for line in instructions.splitlines() if line.startswith("| ")]


def _field(box: list[str], name: str) -> str:
    return next(line[len(name) :].strip() for line in box if line.startswith(name))


def _commands(box: list[str]) -> list[str]:
    """The shell commands the box shows, in order (indented lines, and the token command)."""
    cmds = [line.strip() for line in box if line.startswith("     ")]
    cmds += [line.split(":  ", 1)[1] for line in box if line.startswith("A user's token")]
    return cmds


def _sh(clone: Path, *commands: str) -> subprocess.CompletedProcess[str]:
    """Commands as a person pastes them into one shell in the clone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
    script = "\n".join(commands)
    return subprocess.run(
        ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=120
    )


def _leftovers(clone: Path) -> list[str]:
    """Processes whose command line names the clone."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(clone) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


async def _list_with_config(config: dict[str, Any]) -> list[str]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    server = config["mcpServers"]["gatehouse-demo"]
    async with httpx2.AsyncClient(headers=server["headers"], trust_env=False) as http:
        async with Client(streamable_http_client(server["url"], http_client=http)) as client:
            return [t.name for t in (await client.list_tools()).tools]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    busy = [p for p in PORTS if _busy(p)]
    if busy:
        pytest.skip(f"the demo's fixed ports are in use: {busy} (is a make dev / make demo running?)")
    target = tmp_path / "gatehouse"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True, timeout=120)
    if BORROW:
        for tool in (".venv", ".tools", "tests/node_modules"):
            (target / tool).symlink_to(REPO / tool)
    return target


async def test_make_demo_to_a_consented_call_then_ctrl_c(clone: Path) -> None:
    demo = Demo(clone)
    try:
        instructions = demo.wait_for_instructions()
        up = time.monotonic() - demo.started
        box = _box(instructions)
        mcp_url = _field(box, "MCP URL")
        admin_token = _field(box, "admin token")
        users = dict(re.findall(r"(\w+) / (\S+?)(?:,|$)", _field(box, "demo users")))
        export, call, token_cmd = _commands(box)
        assert export == f"export MCP={mcp_url}" and "demo/call.py alice $MCP notes___add_note" in call

        # 1. the call: the tools, then the consent URL (exit 3)
        first = _sh(clone, export, call)
        assert first.returncode == 3, first.stdout + first.stderr
        assert "toolbox___roll_dice" in first.stdout and "notes___add_note" in first.stdout
        consent_url = re.search(r"http://127\.0\.0\.1:8081/identities/oauth2/authorize\?\S+", first.stdout)
        assert consent_url, first.stdout
        # 2. open it in a browser, sign in as alice, allow: identity completes it (verified user)
        landed = await browser.consent(consent_url.group(0), "alice", users["alice"])
        assert "/identities/oauth2/callback/" in landed, landed
        # 3. the same command again
        again = _sh(clone, export, call)
        consented = time.monotonic() - demo.started
        assert again.returncode == 0, again.stdout + again.stderr
        assert "result: note 1 added for alice" in again.stdout
        # bob is someone else: his own consent, not alice's
        bob = _sh(clone, export, call.replace("call.py alice", "call.py bob"))
        assert bob.returncode == 3 and "/identities/oauth2/authorize?" in bob.stdout

        # the token command and the printed client configuration work as they are
        token = _sh(clone, export, token_cmd)
        assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr
        config = json.loads(instructions.split("MCP client configuration", 1)[1].split("\n", 1)[1])
        assert config["mcpServers"]["gatehouse-demo"]["url"] == mcp_url
        assert "notes___list_notes" in await _list_with_config(config)
        # the notes server itself takes no request without a token of its own: none, or alice's
        # token for the gateway (another audience), is refused
        jwt = token.stdout.strip()
        async with httpx.AsyncClient(trust_env=False) as http:
            for headers in ({}, {"Authorization": f"Bearer {jwt}"}):
                r = await post(http, NOTES_URL, initialize(), headers=headers)
                assert r.status_code == 401, (headers.keys(), r.status_code, r.text)
        # the admin token is the admin API's
        async with httpx.AsyncClient(trust_env=False) as http:
            r = await http.get(
                "http://127.0.0.1:8080/gateways", headers={"Authorization": f"Bearer {admin_token}"}
            )
            assert [g["name"] for g in r.json()["items"]] == ["demo"]
        print(f"\nmake demo: instructions after {up:.1f} s, consented tool call after {consented:.1f} s")
    finally:
        demo.ctrl_c()
    assert not _leftovers(clone)
    assert not [p for p in PORTS if _busy(p)]

    # A second run reuses it all: the same gateway, and alice's grant still holds. Its client
    # secrets' file is lost meanwhile (the database kept): new ones go to identity, and bob's
    # consent, which needs them, works; bob's notes are his own.
    (clone / ".data" / "demo" / "state.json").unlink()
    second = Demo(clone)
    try:
        box = _box(second.wait_for_instructions())
        assert _field(box, "MCP URL") == mcp_url
        export, call, _ = _commands(box)
        result = _sh(clone, export, call)
        assert result.returncode == 0 and "result: note 1 added for alice" in result.stdout, result.stdout
        as_bob = call.replace("call.py alice", "call.py bob")
        bob = _sh(clone, export, as_bob)
        link = re.search(r"http://127\.0\.0\.1:8081/identities/oauth2/authorize\?\S+", bob.stdout)
        assert bob.returncode == 3 and link, bob.stdout
        await browser.consent(link.group(0), "bob", users["bob"])
        bob = _sh(clone, export, as_bob)
        assert bob.returncode == 0 and "result: note 1 added for bob" in bob.stdout, bob.stdout
        print(f"second make demo, through bob's consent: {time.monotonic() - second.started:.1f} s")
    finally:
        second.ctrl_c()
    assert not _leftovers(clone)
    assert not [p for p in PORTS if _busy(p)]
