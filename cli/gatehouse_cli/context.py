"""What every command shares: the settings and one admin API client, made when first needed."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from . import settings as settings_
from .api import Api


@dataclass
class Context:
    gateway_url: str | None
    identity_url: str | None
    _api: Api | None = field(default=None, init=False)

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(settings_.load(self.gateway_url, self.identity_url))
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


pass_context = click.make_pass_decorator(Context)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="print JSON for programs instead of a table"
)
