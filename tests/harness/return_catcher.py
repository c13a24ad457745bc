"""Return-URL catcher: somewhere for a browser (or login_http) to land."""

from __future__ import annotations

import threading
from typing import Any

from .procs import LOCALHOST


class ReturnCatcher:
    """A tiny HTTP server (in this process, a daemon thread) on 127.0.0.1:<free port> that
    answers 200 to any GET/POST and records each request's path and query parameters.

    `.url` = http://127.0.0.1:<port>; `.callback_url` = `.url + "/callback"` (any path works);
    `.hits` = [{"method", "path", "query": {name: value}}]; `wait(timeout)` returns the first
    hit not yet returned by wait(). Logs nothing (queries carry codes and session ids).
    The page it serves has body[data-page=return] and p#return-path.
    `redirect_to(url)` gives a URL here that answers 302 -> url (not recorded as a hit), to
    stand in for a service that redirects the browser to the provider.
    """

    def __init__(self) -> None:
        import http.server
        import urllib.parse

        catcher = self
        self.hits: list[dict[str, Any]] = []
        self._redirects: dict[str, str] = {}
        self._cond = threading.Condition()
        self._consumed = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                target = catcher._redirects.get(parts.path)
                if target is not None:
                    self.send_response(302)
                    self.send_header("location", target)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                with catcher._cond:
                    catcher.hits.append(
                        {
                            "method": self.command,
                            "path": parts.path,
                            "query": dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
                        }
                    )
                    catcher._cond.notify_all()
                body = (
                    '<!DOCTYPE html><html><head><title>Return</title></head><body data-page="return">'
                    f'<p id="return-path">{parts.path}</p></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _record  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # never log request lines: they carry codes and session ids

        self._server = http.server.ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.callback_url = f"{self.url}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, name="return-catcher", daemon=True)
        self._thread.start()

    def redirect_to(self, target: str) -> str:
        import secrets

        path = f"/redirect/{secrets.token_hex(8)}"
        self._redirects[path] = target
        return f"{self.url}{path}"

    def wait(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next hit (in arrival order) not yet returned by wait(); TimeoutError if none."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.hits) > self._consumed, timeout=timeout):
                raise TimeoutError(f"nothing reached {self.url} within {timeout}s")
            hit = self.hits[self._consumed]
            self._consumed += 1
            return hit

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_return_catcher() -> ReturnCatcher:
    return ReturnCatcher()
