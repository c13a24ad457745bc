# ruff: noqa: F811  (pytest fixtures imported from test_compose, then named as parameters)
"""compose.cluster.yaml over compose.yaml: a 3-node NATS cluster, replicated events, gateway and
sync-worker replicas behind one load-balanced address; rendered by the real Docker Compose CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_compose import COMPOSE_FILE, REPO, SECRETS, compose_bin, empty_env_file, run_config  # noqa: F401 (fixtures)

CLUSTER_FILE = REPO / "compose.cluster.yaml"
NODES = ("nats", "nats-2", "nats-3")


def _render(compose_bin: Path, env_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_config(compose_bin, env_file, files=(COMPOSE_FILE, CLUSTER_FILE), **env)


@pytest.fixture(scope="module")
def services(compose_bin: Path, empty_env_file: Path) -> dict[str, Any]:
    done = _render(compose_bin, empty_env_file, **SECRETS)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]  # type: ignore[no-any-return]


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_three_nats_nodes_route_to_each_other(services: dict[str, Any]) -> None:
    names = set()
    for node in NODES:
        command = services[node]["command"]
        assert "-js" in command and _flag(command, "--cluster_name") == "gatehouse"
        names.add(_flag(command, "--server_name"))
        routes = set(_flag(command, "--routes").split(","))
        assert routes == {f"nats://{other}:6222" for other in NODES if other != node}
        assert any(v["target"] == "/etc/gatehouse/nats.conf" for v in services[node]["volumes"])
        assert any(v["target"] == "/data" for v in services[node]["volumes"])
    assert len(names) == 3  # JetStream needs a unique server name per node


def test_every_service_knows_every_node_and_events_have_three_replicas(services: dict[str, Any]) -> None:
    for name in ("identity", "sync-worker", "gateway", "audit"):
        servers = services[name]["environment"]["NATS_URL"].split(",")
        assert servers == [f"nats://{node}:4222" for node in NODES], name
        assert services[name]["environment"]["NATS_USER"] == name  # still its own NATS user
    assert services["identity"]["environment"]["EVENTS_REPLICAS"] == "3"


def test_replicas_behind_one_address(services: dict[str, Any]) -> None:
    assert services["gateway"]["deploy"]["replicas"] == 3
    assert services["sync-worker"]["deploy"]["replicas"] == 3
    assert not services["gateway"].get("ports")  # the replicas share the balancer's port
    lb = services["lb"]
    assert [(p["published"], p["target"]) for p in lb["ports"]] == [("8080", 8080)]
    conf = next(v for v in lb["volumes"] if v["target"] == "/etc/nginx/conf.d/default.conf")
    assert "server gateway:8080;" in Path(conf["source"]).read_text()
    assert lb["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_a_missing_secret_stops_the_cluster_too(compose_bin: Path, empty_env_file: Path) -> None:
    env = {k: v for k, v in SECRETS.items() if k != "GATEHOUSE_NATS_AUDIT_PASSWORD"}
    done = _render(compose_bin, empty_env_file, **env)
    assert done.returncode != 0 and "GATEHOUSE_NATS_AUDIT_PASSWORD" in done.stderr
