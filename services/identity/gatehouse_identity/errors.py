"""Identity's errors: the shared hierarchy (see ``gatehouse_contracts.errors``), plus

GatehouseError
└── VaultUnreadable   500  a stored secret was sealed with a vault key identity no longer
                           holds (or does not decrypt): an operator must put the key back
"""

from gatehouse_contracts.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatehouseError,
    NotFound,
    Unauthorized,
    Unavailable,
)


class VaultUnreadable(GatehouseError):
    code = "VaultKeyUnavailable"


__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatehouseError",
    "NotFound",
    "Unauthorized",
    "Unavailable",
    "VaultUnreadable",
]
