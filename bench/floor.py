"""The `floor` of the benchmarks: the same framework and server settings as the gateway (FastAPI on
uvicorn, started through ``gatehouse_contracts.config.run_http`` exactly like the gateway's
``main``), one route that answers precomputed bytes and does nothing else.

  POST /floor/{name}   the bytes of <dir>/<name>.json (the gateway's real tools/list answer of that
                       size, captured by bench/run.py), application/json
  GET  /healthz        {"status": "ok"}

Like the gateway's MCP endpoint, the route is a plain Starlette route in FastAPI's router
(``app.router.add_route``); unlike it, no middleware, no checks, no body read.

Run: python bench/floor.py --port 9001 --dir /tmp/bench/floor
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response


def build(settings: SimpleNamespace) -> FastAPI:
    bodies = {p.stem: p.read_bytes() for p in Path(settings.dir).glob("*.json")}
    app = FastAPI(title="bench floor")

    async def floor(request: Request) -> Response:
        body = bodies.get(request.path_params["name"])
        if body is None:
            return Response(b'{"error":"unknown"}', 404, media_type="application/json")
        return Response(body, 200, media_type="application/json")

    app.router.add_route("/floor/{name}", floor, methods=["POST"], include_in_schema=False)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    from gatehouse_contracts.config import run_http

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    settings = SimpleNamespace(
        host=args.host, port=args.port, dir=args.dir, log_level="WARNING", log_format="text"
    )
    run_http("floor", lambda: settings, build, host_attr="host", port_attr="port")


if __name__ == "__main__":
    main()
