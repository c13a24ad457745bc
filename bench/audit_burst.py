"""The audit path's cost per event: publish a burst of ``tool.invoked`` events as the gateway does,
time until the audit service has stored them all, and read the CPU the audit service, FerretDB and
NATS spent on them (``/proc/<pid>/stat`` utime+stime, before and after).

    .venv/bin/python bench/audit_burst.py [--events 5000] [--rounds 3] [--batch-size N] [--mongo-url URL]

Starts its own NATS (config/nats.conf), FerretDB (unless ``--mongo-url``) and audit service with
the test harness (tests/harness), so nothing of a running ``make dev`` is touched. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import harness  # noqa: E402
import nats  # noqa: E402
from measure import cpu_seconds  # noqa: E402  (bench/measure.py: /proc utime + stime)
from pymongo import AsyncMongoClient  # noqa: E402

from gatehouse_contracts.bus import StreamLimits, create_stream, publish_confirmed  # noqa: E402
from gatehouse_contracts.events import ToolInvoked, new_event  # noqa: E402
from gatehouse_contracts.subjects import STREAM  # noqa: E402

DB = "gatehouse_audit_burst"
STUCK_SECONDS = 120


def event(i: int) -> ToolInvoked:
    return new_event(
        ToolInvoked,
        source="gateway",
        gateway_id="team-tools-3f9a1c2b7d",
        target_id="K3M9Q2ZP7A",
        tool=f"tool_{i % 100}",
        user="https://sso.example.com#alice",
        outcome="success",
        duration_ms=2.345,
    )


async def burst(nc: Any, mongo: Any, pids: dict[str, int], n: int) -> dict[str, float]:
    js = nc.jetstream()
    before_count = await mongo[DB]["events"].count_documents({})
    first = (await js.stream_info(STREAM)).state.last_seq + 1
    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    if await publish_confirmed(js, [event(i) for i in range(n)]):
        raise SystemExit("the stream did not confirm every event")
    published = time.monotonic()
    last = first + n - 1
    # no event says "all acknowledged": poll the consumer (NATS answers in microseconds)
    while (await js.consumer_info(STREAM, "audit")).ack_floor.stream_seq < last:  # noqa: ASYNC110
        if time.monotonic() - published > STUCK_SECONDS:
            raise SystemExit(f"the audit service stored nothing for {STUCK_SECONDS}s")
        await asyncio.sleep(0.02)
    stored = time.monotonic()
    spent = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
    count = await mongo[DB]["events"].count_documents({}) - before_count
    if count != n:
        raise SystemExit(f"{count} events stored of {n}")
    return {
        "publish_s": published - started,
        "drain_s": stored - published,
        **{f"{name}_ms_per_event": 1000 * s / n for name, s in spent.items()},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mongo-url", default="")
    parser.add_argument("--batch-size", default="", help="AUDIT_BATCH_SIZE (default: the service's)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="audit-burst-")
    harness.set_log_dir(Path(tmp) / "logs")
    try:
        nats_proc = harness.start_nats(tmp)
        if args.mongo_url:
            os.environ["MONGODB_URL"] = args.mongo_url
        mongo_proc = harness.start_mongo(tmp)
        nc = await nats.connect(harness.nats_admin_url(nats_proc.url or ""))
        limits = StreamLimits(max_age_seconds=3600, max_bytes=1 << 30)
        await create_stream(nc, limits, logging.getLogger("audit-burst"))
        audit = harness.start_service(
            "audit",
            {
                "NATS_URL": nats_proc.url or "",
                "MONGODB_URL": mongo_proc.url or "",
                "AUDIT_DB": DB,
                "LOG_LEVEL": "WARNING",
                **({"AUDIT_BATCH_SIZE": args.batch_size} if args.batch_size else {}),
            },
        )
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_proc.url)
        pids = {"audit": audit.pid or 0, "nats": nats_proc.pid or 0}
        if isinstance(mongo_proc, harness.Proc):
            pids["ferretdb"] = mongo_proc.pid or 0
        await burst(nc, mongo, pids, 200)  # warm-up: indexes, connections, imports
        for _ in range(args.rounds):
            result = await burst(nc, mongo, pids, args.events)
            print(" ".join(f"{k}={v:.3f}" for k, v in result.items()), flush=True)
        await mongo.close()
        await nc.close()
    finally:
        harness.stop_all()


if __name__ == "__main__":
    asyncio.run(main())
