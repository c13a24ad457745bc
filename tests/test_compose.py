"""compose.yaml, validated by the real Docker Compose v2 CLI (`docker-compose config`).

`config` parses, interpolates and validates the file exactly as `docker compose up` would, and
needs no Docker engine. The binary is built from source by scripts/install-compose.sh into
<repo>/.tools/bin/docker-compose. Without it the tests skip on a developer machine and fail under
CI, so a broken install can't turn into a green run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "compose.yaml"
COMPOSE_BIN = REPO / ".tools" / "bin" / "docker-compose"

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the containers must listen on
APP_SERVICES = {"identity": 8081, "sync-worker": 8082, "gateway": 8080, "audit": 8083, "console": 8084}
ALL_SERVICES = {"nats", "mongo", *APP_SERVICES}

ADMIN_TOKEN = "test-admin-token"
SESSION_SECRET = "test-session-secret"
VAULT_KEYS = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
TOKEN_KEYS = "k1:compose-test-token-signing-secret-0123456789"
SECRETS = {
    "GATEHOUSE_ADMIN_TOKEN": ADMIN_TOKEN,
    "GATEHOUSE_SESSION_SECRET": SESSION_SECRET,
    "IDENTITY_VAULT_KEYS": VAULT_KEYS,
    "IDENTITY_TOKEN_KEYS": TOKEN_KEYS,
    **{
        f"GATEHOUSE_NATS_{u}_PASSWORD": f"compose-test-nats-{u.lower()}"
        for u in ("GATEWAY", "IDENTITY", "SYNC_WORKER", "AUDIT", "ADMIN")
    },
}

# Anything in the caller's environment that compose.yaml interpolates or that changes how compose
# behaves is dropped, so the tests see the file's own defaults.
_DROP_PREFIXES = (
    "COMPOSE_",
    "DOCKER_",
    "GATEHOUSE_",
    "GATEWAY_",
    "IDENTITY_",
    "SYNC_",
    "AUDIT_",
    "NATS_",
    "MONGO",
)
_DROP_NAMES = {"LOG_LEVEL"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    if not os.access(COMPOSE_BIN, os.X_OK):
        msg = (
            f"docker-compose not installed at {COMPOSE_BIN.relative_to(REPO)}; "
            "run scripts/install-compose.sh (builds Docker Compose v2 from source with Go)"
        )
        if _in_ci():
            pytest.fail(msg + " [CI is set: not skipping]")
        pytest.skip(msg)
    return COMPOSE_BIN


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory) -> Path:
    # Passed as --env-file so a developer's ./.env can't change what these tests see.
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def run_config(
    compose_bin: Path, env_file: Path, files: tuple[Path, ...] = (COMPOSE_FILE,), **env: str
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k not in _DROP_NAMES}
    base.update(env)
    return subprocess.run(
        [
            str(compose_bin),
            "--env-file",
            str(env_file),
            *(arg for path in files for arg in ("-f", str(path))),
            "config",
            "--format",
            "json",
        ],
        cwd=REPO,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_config(compose_bin: Path, env_file: Path, **env: str) -> dict:
    for name, value in SECRETS.items():
        env.setdefault(name, value)
    proc = run_config(compose_bin, env_file, **env)
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def config(compose_bin, empty_env_file) -> dict:
    return load_config(compose_bin, empty_env_file)


@pytest.fixture(scope="module")
def services(config) -> dict:
    return config["services"]


def test_compose_binary_is_reference_v2(compose_bin):
    out = subprocess.run([str(compose_bin), "version", "--short"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"2\.\d+\.\d+", out.stdout.strip()), out.stdout


def test_services(config, services):
    assert set(services) == ALL_SERVICES
    assert config["name"] == "gatehouse"


def test_infrastructure_images(services):
    nats, mongo = services["nats"], services["mongo"]
    # Official images; NATS as -alpine so the health check has wget.
    assert re.fullmatch(r"nats:[\w.-]*alpine[\w.-]*", nats["image"]), nats["image"]
    assert re.fullmatch(r"mongo:[\w.-]+", mongo["image"]), mongo["image"]

    cmd = nats["command"]
    assert "-js" in cmd
    assert cmd[cmd.index("-sd") + 1] == "/data"
    assert cmd[cmd.index("-m") + 1] == "8222"

    def volume_targets(svc):
        return {v["target"]: v for v in svc.get("volumes", [])}

    assert volume_targets(nats)["/data"]["type"] == "volume"
    assert volume_targets(mongo)["/data/db"]["type"] == "volume"


def test_app_images_built_from_repo(services):
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)\s*$", dockerfile))
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile)
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert Path(build["context"]) == REPO
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        assert build["target"] == name
        assert name in stages, f"Dockerfile has no stage named {name!r}"
        assert services[name]["image"].startswith(f"gatehouse/{name}:")


def test_healthchecks(services):
    nats_test = services["nats"]["healthcheck"]["test"]
    assert nats_test[0] == "CMD"
    assert "http://127.0.0.1:8222/healthz" in nats_test

    mongo_test = services["mongo"]["healthcheck"]["test"]
    assert mongo_test[:2] == ["CMD", "mongosh"]
    assert "db.adminCommand('ping')" in mongo_test

    for name, port in APP_SERVICES.items():
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], test
        assert f"http://127.0.0.1:{port}/healthz" in test[3]
        # The one-liner must at least compile.
        compile(test[3], f"<{name} healthcheck>", "exec")

    for name in ALL_SERVICES:
        hc = services[name]["healthcheck"]
        assert not hc.get("disable"), name
        assert hc["interval"] and hc["timeout"] and hc["retries"] >= 1, name


def test_depends_on_healthy(services):
    expected = {
        "identity": {"nats", "mongo"},
        "sync-worker": {"nats", "mongo", "identity"},
        "gateway": {"nats", "mongo", "identity"},
        "audit": {"nats", "mongo", "identity"},  # identity creates the event stream
        "console": {"gateway", "identity"},  # it uses their HTTP APIs only
    }
    for name, deps in expected.items():
        depends_on = services[name]["depends_on"]
        assert set(depends_on) == deps, name
        for dep, cond in depends_on.items():
            assert cond["condition"] == "service_healthy", (name, dep)
    assert not services["nats"].get("depends_on")
    assert not services["mongo"].get("depends_on")


def test_environment(services):
    for name in set(APP_SERVICES) - {"console"}:  # the console has neither: HTTP APIs only
        env = services[name]["environment"]
        assert env["NATS_URL"] == "nats://nats:4222", name
        assert env["MONGODB_URL"] == "mongodb://mongo:27017", name

    gw = services["gateway"]["environment"]
    assert gw["GATEWAY_HOST"] == ALL_INTERFACES
    assert gw["GATEWAY_PORT"] == "8080"
    assert gw["GATEWAY_PUBLIC_URL"] == "http://localhost:8080"
    assert gw["GATEWAY_ALLOWED_ORIGINS"] == ""  # empty = the service default
    assert gw["GATEHOUSE_ADMIN_TOKEN"] == ADMIN_TOKEN
    assert gw["GATEHOUSE_SESSION_SECRET"] == SESSION_SECRET

    idn = services["identity"]["environment"]
    assert idn["IDENTITY_HOST"] == ALL_INTERFACES
    assert idn["IDENTITY_PORT"] == "8081"
    assert idn["IDENTITY_PUBLIC_URL"] == "http://localhost:8081"
    assert idn["GATEHOUSE_ADMIN_TOKEN"] == ADMIN_TOKEN

    sw = services["sync-worker"]["environment"]
    assert sw["SYNC_WORKER_HOST"] == ALL_INTERFACES
    assert sw["SYNC_WORKER_HEALTH_PORT"] == "8082"
    # Secrets go only where they are used.
    assert "GATEHOUSE_ADMIN_TOKEN" not in sw
    assert "GATEHOUSE_SESSION_SECRET" not in sw
    assert "GATEHOUSE_SESSION_SECRET" not in idn

    audit = services["audit"]["environment"]
    assert audit["AUDIT_HOST"] == ALL_INTERFACES
    assert audit["AUDIT_HEALTH_PORT"] == "8083"
    assert audit["AUDIT_DB"] == "gatehouse_audit"
    assert audit["NATS_USER"] == "audit"
    assert audit["NATS_PASSWORD"] == SECRETS["GATEHOUSE_NATS_AUDIT_PASSWORD"]
    assert audit["GATEHOUSE_ADMIN_TOKEN"] == ADMIN_TOKEN  # GET /events, for the admin
    assert "GATEHOUSE_SESSION_SECRET" not in audit

    console = services["console"]["environment"]
    assert console["CONSOLE_GATEWAY_URL"] == "http://gateway:8080"
    assert console["CONSOLE_IDENTITY_URL"] == "http://identity:8081"
    assert console["CONSOLE_AUDIT_URL"] == "http://audit:8083"
    assert not {"NATS_URL", "MONGODB_URL", "GATEHOUSE_SESSION_SECRET"} & set(console)


def test_public_urls_overridable(compose_bin, empty_env_file):
    services = load_config(
        compose_bin,
        empty_env_file,
        GATEWAY_PUBLIC_URL="https://mcp.example.test",
        IDENTITY_PUBLIC_URL="https://id.example.test",
    )["services"]
    assert services["gateway"]["environment"]["GATEWAY_PUBLIC_URL"] == "https://mcp.example.test"
    assert services["identity"]["environment"]["IDENTITY_PUBLIC_URL"] == "https://id.example.test"


def _published(svc: dict) -> list[tuple[str, int]]:
    return [(str(p.get("published", "")), int(p["target"])) for p in svc.get("ports", [])]


def test_published_ports(services):
    assert _published(services["gateway"]) == [("8080", 8080)]
    assert _published(services["identity"]) == [("8081", 8081)]
    assert _published(services["nats"]) == []
    assert _published(services["audit"]) == []  # health only, inside the network
    assert _published(services["console"]) == [("8084", 8084)]
    assert _published(services["mongo"]) == []


def test_scale_friendly(services):
    # `--scale sync-worker=N` needs: no host port, no fixed container name.
    sw = services["sync-worker"]
    assert not sw.get("ports")
    for name, svc in services.items():
        assert "container_name" not in svc, name


def test_gateway_scales_with_a_host_port_range(compose_bin, empty_env_file):
    services = load_config(compose_bin, empty_env_file, GATEWAY_HOST_PORT="8080-8082")["services"]
    assert _published(services["gateway"]) == [("8080-8082", 8080)]


@pytest.mark.parametrize("missing", list(SECRETS))
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_required_secrets(compose_bin, empty_env_file, missing, how):
    env = dict(SECRETS)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    proc = run_config(compose_bin, empty_env_file, **env)
    assert proc.returncode != 0
    assert proc.stdout.strip() == ""
    # Compose names the variable and prints our message.
    assert f"required variable {missing} is missing a value" in proc.stderr, proc.stderr
    assert f"set {missing} (in the environment or ./.env) to" in proc.stderr, proc.stderr


def test_dotenv_file_is_read(compose_bin, tmp_path):
    # The secrets may come from an env file instead of the environment.
    env_file = tmp_path / "gatehouse.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in SECRETS.items()).replace(f"={ADMIN_TOKEN}", "=from-file")
    )
    proc = run_config(compose_bin, env_file)
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert services["gateway"]["environment"]["GATEHOUSE_ADMIN_TOKEN"] == "from-file"


def test_dockerfile_and_dockerignore():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile
    assert re.search(r"pip install --no-deps\b", dockerfile)
    for pkg in (
        "./contracts",
        "./services/gateway",
        "./services/identity",
        "./services/sync-worker",
        "./services/audit",
    ):
        assert pkg in dockerfile, pkg
    assert re.search(r"(?m)^USER\s+(?!0\b|root\b)\S+", dockerfile), "image must not run as root"
    for entry in ("gatehouse-gateway", "gatehouse-identity", "gatehouse-sync-worker", "gatehouse-audit"):
        assert f'CMD ["{entry}"]' in dockerfile, entry

    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".venv", ".tools", ".data", "tests/node_modules", ".git"):
        assert entry in ignored, entry


def test_image_runtime_dependencies_are_locked():
    # The Dockerfile installs the pyprojects' dependencies with requirements.lock as constraints
    # and then fails on anything unpinned; catch a missing pin here, without a Docker engine.
    import importlib.util

    spec = importlib.util.spec_from_file_location("image_deps", REPO / "scripts" / "image-deps.py")
    image_deps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(image_deps)

    reqs = image_deps.runtime_requirements(REPO)
    pins = image_deps.lock_pins(REPO / "requirements.lock")
    assert reqs and pins
    names = {image_deps.norm(re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0]) for r in reqs}
    assert not any(n.startswith("gatehouse-") for n in names)
    missing = sorted(n for n in names if n not in pins)
    assert not missing, f"runtime dependencies not pinned in requirements.lock: {missing}"


def test_metrics_profile_scrapes_every_service(compose_bin, empty_env_file):
    # `docker compose --profile metrics up`: Prometheus on 127.0.0.1:9090 with config/prometheus.yml
    import yaml

    services = load_config(compose_bin, empty_env_file, COMPOSE_PROFILES="metrics")["services"]
    assert set(services) == ALL_SERVICES | {"prometheus"}
    prom = services["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v[\d.]+", prom["image"]), prom["image"]
    mounts = {v["target"]: v for v in prom["volumes"]}
    assert Path(mounts["/etc/prometheus/prometheus.yml"]["source"]) == REPO / "config" / "prometheus.yml"
    assert mounts["/etc/prometheus/prometheus.yml"]["read_only"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in prom["ports"]] == [
        ("127.0.0.1", "9090", 9090)
    ]

    scrape = yaml.safe_load((REPO / "config" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {name: sd["port"] for job in scrape for sd in job["dns_sd_configs"] for name in sd["names"]}
    assert targets == APP_SERVICES  # every service, at the port it listens on in compose.yaml
    for name, port in APP_SERVICES.items():
        env = services[name]["environment"]
        listens = next((v for k, v in env.items() if k.endswith("_PORT") and k != "GATEWAY_HOST_PORT"), None)
        assert listens == str(port), (name, env)
