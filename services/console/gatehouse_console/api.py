"""The public APIs the console uses, and nothing else: the gateway's admin API, identity's HTTP API,
the audit service's ``GET /events``. Every refusal becomes an ``ApiError`` carrying the API's own
message, so a form shows exactly what the API said."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

Doc = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _p(value: str) -> str:
    return quote(value, safe="")


class Api:
    def __init__(self, http: httpx.AsyncClient, gateway_url: str, identity_url: str, audit_url: str) -> None:
        self._http = http
        self._gateway = gateway_url.rstrip("/")
        self._identity = identity_url.rstrip("/")
        self._audit = audit_url.rstrip("/")

    async def _send(self, method: str, url: str, token: str | None, **kwargs: Any) -> Doc:
        try:
            r = await self._http.request(method, url, headers=_bearer(token) if token else {}, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(503, f"{url.split('/')[2]} is unreachable ({type(exc).__name__})") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise ApiError(r.status_code, str(message or f"HTTP {r.status_code}"))
        return body if isinstance(body, dict) else {}

    # --- the gateway's admin API --------------------------------------------------------------

    async def gateways(self, token: str) -> list[Doc]:
        return await self._all(f"{self._gateway}/gateways", token)

    async def gateway(self, token: str, gateway_id: str) -> Doc:
        return await self._send("GET", f"{self._gateway}/gateways/{_p(gateway_id)}", token)

    async def targets(self, token: str, gateway_id: str) -> list[Doc]:
        return await self._all(f"{self._gateway}/gateways/{_p(gateway_id)}/targets", token)

    async def target(self, token: str, gateway_id: str, target_id: str) -> Doc:
        return await self._send("GET", self._target_url(gateway_id, target_id), token)

    async def tools(self, token: str, gateway_id: str, target_id: str) -> list[Doc]:
        return list(
            (await self._send("GET", self._target_url(gateway_id, target_id) + "/tools", token))["items"]
        )

    async def create_target(self, token: str, gateway_id: str, body: Doc) -> Doc:
        return await self._send(
            "POST", f"{self._gateway}/gateways/{_p(gateway_id)}/targets", token, json=body
        )

    async def update_target(self, token: str, gateway_id: str, target_id: str, body: Doc) -> Doc:
        return await self._send("PUT", self._target_url(gateway_id, target_id), token, json=body)

    async def delete_target(self, token: str, gateway_id: str, target_id: str) -> Doc:
        return await self._send("DELETE", self._target_url(gateway_id, target_id), token)

    async def synchronize(self, token: str, gateway_id: str, target_id: str) -> Doc:
        url = f"{self._gateway}/gateways/{_p(gateway_id)}/synchronizeTargets"
        return await self._send("PUT", url, token, json={"targetIdList": [target_id]})

    def _target_url(self, gateway_id: str, target_id: str) -> str:
        return f"{self._gateway}/gateways/{_p(gateway_id)}/targets/{_p(target_id)}"

    async def _all(self, url: str, token: str) -> list[Doc]:
        items: list[Doc] = []
        params: dict[str, str] = {"maxResults": "1000"}
        while True:
            page = await self._send("GET", url, token, params=params)
            items += page.get("items", [])
            if not page.get("nextToken") or len(items) >= 10_000:
                return items
            params["nextToken"] = page["nextToken"]

    # --- identity -----------------------------------------------------------------------------

    async def identity(self, operation: str, body: Doc, token: str | None = None) -> Doc:
        """``POST /identities/<operation>`` (``oauth2/token`` for GetResourceOauth2Token)."""
        return await self._send("POST", f"{self._identity}/identities/{operation}", token, json=body)

    async def providers(self, token: str) -> list[Doc]:
        items: list[Doc] = []
        body: Doc = {"maxResults": 100}
        while True:
            page = await self.identity("ListOauth2CredentialProviders", body, token)
            items += page.get("items", [])
            if not page.get("nextToken") or len(items) >= 10_000:
                return items
            body["nextToken"] = page["nextToken"]

    # --- the audit service --------------------------------------------------------------------

    @property
    def audit_enabled(self) -> bool:
        return bool(self._audit)

    async def events(self, token: str, filters: list[tuple[str, str]]) -> list[Doc]:
        page = await self._send("GET", f"{self._audit}/events", token, params=filters)
        return list(page.get("items", []))
