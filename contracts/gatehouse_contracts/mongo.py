"""MongoDB plumbing every service's store uses: pymongo errors become ours here and nowhere else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError, ServerSelectionTimeoutError

from .errors import GatehouseError, Unavailable

Doc = dict[str, Any]


def connect(url: str) -> AsyncMongoClient[Doc]:
    """A client that fails fast (3 s) while the server is down and reconnects by itself.

    No overall ``timeoutMS``: with it, pymongo selects a server for as long as that whole budget
    (10 s) instead of ``serverSelectionTimeoutMS``. A server that accepts but never answers is cut
    off by the socket timeout instead."""
    return AsyncMongoClient(url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, socketTimeoutMS=10000)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Unreachable server or a connection lost mid-operation -> ``Unavailable`` (try again); any
    other refusal -> ``GatehouseError``.

    ``DuplicateKeyError`` passes through: the caller knows which uniqueness rule it means.
    """
    try:
        yield
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise  # this task is being cancelled (shutdown, a timeout): let it go
        # Not ours: the driver runs each read as its own task (pymongo/network_layer.py) and a
        # cancellation of that task would surface here. Uncaught, it would end loops that stop
        # only on cancellation, such as the sweeper, without a word; treat it as a lost connection.
        raise Unavailable("the database connection was lost during the operation") from None
    except DuplicateKeyError:
        raise
    except (ConnectionFailure, ServerSelectionTimeoutError) as exc:
        raise Unavailable(f"the database is unavailable ({type(exc).__name__})") from None
    except PyMongoError as exc:
        raise GatehouseError(f"the database refused the operation ({type(exc).__name__})") from None


async def ping(client: AsyncMongoClient[Doc]) -> bool:
    try:
        await client.admin.command("ping")
        return True
    except PyMongoError:
        return False
