"""A server that is not an MCP server, for negative tests (stdlib only).

Default: every POST (any path) gets `200 text/html` with a small HTML page; GET gets the same
page, other methods 405.
--hang: accepts connections, reads nothing, never answers (for timeout tests); connections are
held until the client gives up or the process ends.
--bad-error: MCP enough to be synced (initialize, tools/list with one tool, "broken"), but every
tools/call gets a JSON-RPC error whose code is a string (a malformed error object).

Run: python tests/servers/not_mcp.py --port 9001 [--hang | --bad-error]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = b"""<!doctype html>
<html><head><title>Welcome</title></head>
<body><h1>It works!</h1><p>This is an ordinary web page, not an MCP server.</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "not-mcp/1.0"

    def _page(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def _drain(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_POST(self) -> None:  # noqa: N802
        if self.server.bad_error:  # type: ignore[attr-defined]
            self._bad_error()
            return
        self._drain()
        self._page()

    def _bad_error(self) -> None:
        msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if "id" not in msg:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer: dict[str, object] = {"jsonrpc": "2.0", "id": msg["id"]}
        if msg["method"] == "initialize":
            answer["result"] = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bad-error", "version": "1"},
            }
        elif msg["method"] == "tools/list":
            answer["result"] = {"tools": [{"name": "broken", "inputSchema": {"type": "object"}}]}
        else:
            answer["error"] = {"code": "oops", "message": "a code that is not an integer"}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._page()

    def _not_allowed(self) -> None:
        self._drain()
        self.send_response(405)
        self.send_header("Allow", "GET, POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # no request logging (headers may carry tokens)


def serve_hang(host: str, port: int) -> None:
    sock = socket.create_server((host, port), backlog=128, reuse_port=False)
    held: list[socket.socket] = []
    print(f"not_mcp: hanging on http://{host}:{port}/ (never answers)", file=sys.stderr, flush=True)
    while True:
        conn, _ = sock.accept()
        held.append(conn)  # keep it open (a reference keeps it from being closed), never answer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--bad-error", action="store_true")
    args = p.parse_args(argv)
    if args.hang:
        serve_hang(args.host, args.port)
        return
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    httpd.bad_error = args.bad_error  # type: ignore[attr-defined]
    print(f"not_mcp: HTML on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
