"""Runs one Gatehouse service for the benchmarks, exactly as ``python -m gatehouse_<service>`` would,
under a command line that does not carry the service's module name.

Why: on a shared development machine a broad ``pkill -f gatehouse_...`` run by someone else between
two test runs would stop a benchmark's services midway. bench/run.py points the harness's
``SERVICES`` table at this module (``python -m bench.service``) and passes
``BENCH_SERVICE_MODULES`` (``<PORT_VAR>=<module>,...``); the service to run is the one whose port
variable the harness set for this process.
"""

from __future__ import annotations

import os
import runpy


def main() -> None:
    for pair in os.environ.get("BENCH_SERVICE_MODULES", "").split(","):
        port_var, _, module = pair.partition("=")
        if port_var and module and port_var in os.environ:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            return
    raise SystemExit("bench.service: no port variable of BENCH_SERVICE_MODULES is set")


if __name__ == "__main__":
    main()
