"""The Parquet lake: exactly-once raw files from the channel topics, and their verification.

``layout`` names every path, ``schema`` defines the columns, ``writer`` cuts records into
deterministic units, ``storage`` writes them durably (local, gs://, s3://), ``intent`` remembers
what may exist beyond the committed offset, ``sink`` is the consumer, ``verify`` checks the lake.
"""

from __future__ import annotations

from upbit_pipeline.lake.layout import FileKey, parse_file_name
from upbit_pipeline.lake.schema import SCHEMA_VERSION, SCHEMAS
from upbit_pipeline.lake.sink import ConsumerStats, LakeSink, SinkHook, run_consumer
from upbit_pipeline.lake.storage import LakeStorage, open_lake
from upbit_pipeline.lake.verify import PartitionReport, VerifyReport, verify_lake

__all__ = [
    "SCHEMAS",
    "SCHEMA_VERSION",
    "ConsumerStats",
    "FileKey",
    "LakeSink",
    "LakeStorage",
    "PartitionReport",
    "SinkHook",
    "VerifyReport",
    "open_lake",
    "parse_file_name",
    "run_consumer",
    "verify_lake",
]
