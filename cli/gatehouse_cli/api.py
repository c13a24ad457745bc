"""The public admin APIs over HTTP: the gateway's (gateways, targets) and identity's (credential
providers, workload identities). Every failure becomes an ``ApiError`` saying what the API said, or
which URL could not be reached; the admin token is sent, never shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import click
import httpx

from .settings import Settings

Doc = dict[str, Any]


class ApiError(click.ClickException):
    """An admin API refused a request (its own message), or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    pass


def _error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        text = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = response.text[:300] or response.reason_phrase
    message = (
        f"HTTP {response.status_code} from {response.request.method} {response.request.url.path}: {text}"
    )
    kind = NotFound if response.status_code == 404 else ApiError
    return kind(message, response.status_code)


def _paged(fetch: Callable[[Doc], Any]) -> Iterator[Doc]:
    """Every item of a list call, following ``nextToken``."""
    token: str | None = None
    while True:
        page = fetch({"maxResults": 1000, **({"nextToken": token} if token else {})})
        yield from page["items"]
        token = page.get("nextToken")
        if not token:
            return


class Api:
    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.admin_token}"} if settings.admin_token else {}
        self.http = httpx.Client(headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, url: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        if not self.settings.admin_token:
            raise ApiError(
                "no admin token: set GATEHOUSE_ADMIN_TOKEN or admin_token in the config file "
                "(gatehouse --help says where)"
            )
        try:
            response = self.http.request(method, url, json=body, params=params)
        except httpx.ConnectError as exc:
            raise ApiError(f"cannot connect to {url}: {exc}") from None
        except httpx.TimeoutException:
            raise ApiError(f"no answer from {url} within {self.http.timeout.read}s") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {url} failed: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise ApiError(f"{url} did not answer JSON: is it a Gatehouse service?") from None

    # -- the gateway's admin API ----------------------------------------------------------------

    def _gw(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        return self.request(method, f"{self.settings.gateway_url}{path}", body, params)

    def gateways(self) -> list[Doc]:
        return list(_paged(lambda page: self._gw("GET", "/gateways", params=page)))

    def gateway(self, ref: str) -> Doc:
        """A gateway by id, or else by name."""
        try:
            return self._gw("GET", f"/gateways/{ref}")  # type: ignore[no-any-return]
        except NotFound:
            for gateway in self.gateways():
                if gateway["name"] == ref:
                    return gateway
            raise NotFound(f"no gateway with id or name {ref!r}", 404) from None

    def create_gateway(self, body: Doc) -> Doc:
        return self._gw("POST", "/gateways", body)  # type: ignore[no-any-return]

    def update_gateway(self, gateway_id: str, body: Doc) -> Doc:
        return self._gw("PUT", f"/gateways/{gateway_id}", body)  # type: ignore[no-any-return]

    def delete_gateway(self, gateway_id: str) -> Doc:
        return self._gw("DELETE", f"/gateways/{gateway_id}")  # type: ignore[no-any-return]

    def targets(self, gateway_id: str) -> list[Doc]:
        return list(_paged(lambda page: self._gw("GET", f"/gateways/{gateway_id}/targets", params=page)))

    def target(self, gateway_id: str, ref: str) -> Doc:
        """A gateway's target by id, or else by name."""
        try:
            return self._gw("GET", f"/gateways/{gateway_id}/targets/{ref}")  # type: ignore[no-any-return]
        except NotFound:
            for target in self.targets(gateway_id):
                if target["name"] == ref:
                    return target
            raise NotFound(f"gateway {gateway_id!r} has no target with id or name {ref!r}", 404) from None

    def create_target(self, gateway_id: str, body: Doc) -> Doc:
        return self._gw("POST", f"/gateways/{gateway_id}/targets", body)  # type: ignore[no-any-return]

    def update_target(self, gateway_id: str, target_id: str, body: Doc) -> Doc:
        return self._gw("PUT", f"/gateways/{gateway_id}/targets/{target_id}", body)  # type: ignore[no-any-return]

    def delete_target(self, gateway_id: str, target_id: str) -> Doc:
        return self._gw("DELETE", f"/gateways/{gateway_id}/targets/{target_id}")  # type: ignore[no-any-return]

    def synchronize_targets(self, gateway_id: str, target_ids: list[str]) -> list[Doc]:
        answer = self._gw("PUT", f"/gateways/{gateway_id}/synchronizeTargets", {"targetIdList": target_ids})
        return answer["targets"]  # type: ignore[no-any-return]

    # -- identity's admin API (POST /identities/<Operation>) -----------------------------------

    def identity(self, operation: str, body: Doc) -> Any:
        return self.request("POST", f"{self.settings.identity_url}/identities/{operation}", body)

    def providers(self) -> list[Doc]:
        return list(_paged(lambda page: self.identity("ListOauth2CredentialProviders", page)))

    def provider(self, name: str) -> Doc:
        return self.identity("GetOauth2CredentialProvider", {"name": name})  # type: ignore[no-any-return]

    def workload_identities(self) -> list[Doc]:
        return list(_paged(lambda page: self.identity("ListWorkloadIdentities", page)))
