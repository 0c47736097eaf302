"""``upbit-pipeline demo``: every part of the pipeline on one machine, with no network or account.

It sits in ``ops`` because it does what an operator does: starts the services as processes, watches
them from the outside (broker, lake, alert log), stops them in order, then runs batch and report.
"""

from __future__ import annotations

from upbit_pipeline.ops.demo.plan import DemoOptions, DemoPaths
from upbit_pipeline.ops.demo.run import DemoResult, run_demo

__all__ = ["DemoOptions", "DemoPaths", "DemoResult", "run_demo"]
