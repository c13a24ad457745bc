"""The error base every service shares; each service's ``errors.py`` adds its own on top.

    GatehouseError            code + safe message + HTTP status
    ├── BadRequest            400  the request is malformed or breaks a rule
    ├── Unauthorized          401  no or wrong credentials
    ├── Forbidden             403  credentials fine, action not allowed
    ├── NotFound              404  no such resource
    ├── Conflict              409  the resource's state forbids it now
    ├── PayloadTooLarge       413  the body is over the limit
    └── Unavailable           503  a dependency (NATS, MongoDB, identity) is down; try again

Messages are shown to callers as they are: never put a secret in one.
"""

from __future__ import annotations


class GatehouseError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatehouseError):
    status = 400
    code = "ValidationException"


class Unauthorized(GatehouseError):
    status = 401
    code = "UnauthorizedException"


class Forbidden(GatehouseError):
    status = 403
    code = "AccessDeniedException"


class NotFound(GatehouseError):
    status = 404
    code = "ResourceNotFoundException"


class Conflict(GatehouseError):
    status = 409
    code = "ConflictException"


class PayloadTooLarge(GatehouseError):
    status = 413
    code = "PayloadTooLarge"


class Unavailable(GatehouseError):
    status = 503
    code = "ServiceUnavailableException"


BY_CODE: dict[str, type[GatehouseError]] = {
    cls.code: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unavailable)
}


def from_code(code: str, message: str) -> GatehouseError:
    """Rebuild an error that crossed the bus as (code, message)."""
    return BY_CODE.get(code, GatehouseError)(message)
