"""A MongoDB-compatible server: $MONGODB_URL, else mongod on PATH, else FerretDB (SQLite backend)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .procs import DEFAULT_TIMEOUT, LOCALHOST, REPO, External, Proc, StartError, free_port


def ferretdb_binary() -> str | None:
    """<repo>/.tools/bin/ferretdb, else `ferretdb` on PATH.

    Note: `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` yields a binary that
    panics at start ("Invalid build/version/version.txt file content"): the module zip has no
    version.txt and the check runs for the FerretDB main module. Build it from a copy of the
    module source with `echo v1.24.2 > build/version/version.txt; go build -o ... ./cmd/ferretdb`.
    """
    local = REPO / ".tools" / "bin" / "ferretdb"
    if local.exists():
        return str(local)
    return shutil.which("ferretdb")


def _wait_mongo_ping(proc: Proc, url: str, timeout: float) -> None:
    import pymongo  # test dependency

    def check() -> bool:
        client: Any = pymongo.MongoClient(url, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
        try:
            return client.admin.command("ping").get("ok") == 1
        finally:
            client.close()

    proc._wait(check, f"MongoDB ping at {url}", timeout)


def start_mongo(tmpdir: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> Proc | External:
    """A MongoDB-compatible server; `.url` = mongodb://127.0.0.1:<port>, `.kind` says which.

    $MONGODB_URL set → use it, start nothing. Else `mongod` on PATH. Else FerretDB 1.24 with
    the SQLite backend (<repo>/.tools/bin/ferretdb, else `ferretdb` on PATH).
    """
    env_url = os.environ.get("MONGODB_URL")
    if env_url:
        return External("mongo", env_url, kind="external")

    base = Path(tmpdir)
    port = free_port()
    url = f"mongodb://{LOCALHOST}:{port}"
    mongod = shutil.which("mongod")
    if mongod:
        dbpath = base / "mongod"
        dbpath.mkdir(parents=True, exist_ok=True)
        cmd = [mongod, "--dbpath", str(dbpath), "--bind_ip", LOCALHOST, "--port", str(port), "--quiet"]
        kind = "mongod"
        env: dict[str, str] = {}
    else:
        ferret = ferretdb_binary()
        if not ferret:
            raise StartError(
                "no MongoDB-compatible server: set MONGODB_URL, put mongod on PATH, or build FerretDB 1.24.2 "
                f"into {REPO / '.tools/bin/ferretdb'} (make dev / the bootstrap script does this)"
            )
        data = base / "ferretdb-data"
        data.mkdir(parents=True, exist_ok=True)  # FerretDB refuses a missing SQLite directory
        cmd = [
            ferret,
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--state-dir={base}",
            f"--listen-addr={LOCALHOST}:{port}",
            "--debug-addr=-",  # no metrics/pprof listener (default 127.0.0.1:8088 would collide)
            "--telemetry=disable",
            # warn would log every failed command's full response (pymongo's endSessions on close,
            # duplicate-key errors with the key); keep infrastructure logs quiet
            "--log-level=error",
        ]
        kind = "ferretdb"
        env = {"DO_NOT_TRACK": "1"}
    proc = Proc("mongo-" + kind, cmd, env, cwd=base, port=port, url=url, role="infra")
    proc.kind = kind  # type: ignore[attr-defined]
    proc.start()
    proc.wait_port(timeout=timeout)
    _wait_mongo_ping(proc, url, timeout)
    return proc
