"""Settings that would open a hole refuse to load."""

from __future__ import annotations

import pytest

from gatehouse_contracts.config import AdminSettings, SettingsError, load_settings


def test_admin_jwts_need_an_audience() -> None:
    env = {"GATEHOUSE_ADMIN_TOKEN": "t", "ADMIN_JWT_DISCOVERY_URL": "https://idp.example/.well-known/x"}
    with pytest.raises(SettingsError, match="ADMIN_JWT_AUDIENCE must be set"):
        load_settings(AdminSettings, env)
    with pytest.raises(SettingsError, match="ADMIN_JWT_AUDIENCE must be set"):
        load_settings(AdminSettings, {**env, "ADMIN_JWT_AUDIENCE": "  "})
    assert load_settings(AdminSettings, {**env, "ADMIN_JWT_AUDIENCE": "gatehouse"}).admin_jwt_audience
    assert load_settings(AdminSettings, {"GATEHOUSE_ADMIN_TOKEN": "t"}).admin_jwt_audience == ""
