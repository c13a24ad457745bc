"""The per-call OAuth overrides in ``_meta`` and the answer when the user must consent first."""

from __future__ import annotations

import msgspec
import pytest

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.jsonrpc import JsonRpcError
from gatehouse_gateway.elicitation import OAUTH_META, authorization_required, split_meta


def test_meta_without_our_key_is_forwarded_as_it_came() -> None:
    meta = {"progressToken": 1}
    assert split_meta(meta) == (meta, {})
    assert split_meta(None) == (None, {})
    assert split_meta("not an object") == (None, {})


def test_our_key_is_taken_out_and_returned_as_the_override() -> None:
    override = {"returnUrl": "https://app/back", "forceAuthentication": True}
    assert split_meta({"progressToken": 1, OAUTH_META: override}) == ({"progressToken": 1}, override)
    assert split_meta({OAUTH_META: {}}) == (None, {})  # nothing left to forward


@pytest.mark.parametrize(
    "override",
    [
        "https://app/back",
        {"returnUrl": 7},
        {"forceAuthentication": "yes"},
        {"returnUrl": "https://app/back", "scope": "x"},
    ],
)
def test_a_malformed_override_is_invalid_params(override: object) -> None:
    with pytest.raises(JsonRpcError) as err:
        split_meta({OAUTH_META: override})
    assert err.value.code == jsonrpc.INVALID_PARAMS and OAUTH_META in err.value.message


def test_new_clients_get_a_url_elicitation() -> None:
    with pytest.raises(JsonRpcError) as err:
        authorization_required("github", "https://id/consent", "e1", "2025-11-25")
    assert err.value.code == jsonrpc.URL_ELICITATION_REQUIRED
    (elicitation,) = err.value.data["elicitations"]
    assert elicitation["mode"] == "url" and elicitation["url"] == "https://id/consent"
    assert elicitation["elicitationId"] == "e1" and "'github'" in elicitation["message"]


def test_older_clients_get_an_error_result_with_the_url() -> None:
    result = msgspec.json.decode(authorization_required("github", "https://id/consent", "e1", "2025-06-18"))
    assert result["isError"] is True
    assert result["content"][0]["text"].endswith(" https://id/consent")
