"""upbit-pipeline: Upbit market data, streamed and batched, with guarantees you can check.

Layers point one way: ``upbit`` (exchange edge) -> ``streaming`` -> ``lake`` -> ``alerts`` ->
``batch`` -> ``ops``; ``cli`` sits on top. ``errors``, ``settings`` and ``logs`` are the
foundation every layer may import.
"""

__version__ = "0.1.0"
