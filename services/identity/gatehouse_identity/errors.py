"""Identity's errors: the shared hierarchy (see ``gatehouse_contracts.errors``) is all it needs so far."""

from gatehouse_contracts.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatehouseError,
    NotFound,
    Unauthorized,
    Unavailable,
)

__all__ = ["BadRequest", "Conflict", "Forbidden", "GatehouseError", "NotFound", "Unauthorized", "Unavailable"]
