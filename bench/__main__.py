"""Run every benchmark module ``bench/bench_*.py`` and print one Markdown table.

Each module exposes ``run() -> list[Result]``. Numbers are medians of repeated runs on this
machine; compare ratios, not absolute values, across machines.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import sys

import bench
from bench.common import Result


def main() -> int:
    only = set(sys.argv[1:])
    results: list[Result] = []
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (only and info.name not in only):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"running {info.name} ...", file=sys.stderr, flush=True)
        results.extend(module.run())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| benchmark | median | goal | note |")
    print("|---|---|---|---|")
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
