"""The per-partition intent record: which files may exist beyond the committed offset.

Before the sink writes any data file of a partition it durably writes
``_state/pending/{topic}+{partition}.json`` naming *every* file it has written or is about to
write since that partition's last successful commit. Hence the invariant

    every lake file of a partition whose first offset is >= the committed offset
    is named in that partition's intent record,

because a data file is only ever written after an intent that names it is durable, and a name
leaves the intent only when a commit has moved the committed offset past its first offset.

Leftover discovery on assignment is then one small GET per partition plus one DELETE per leftover:
no listing of the lake, whose size grows without bound while the intent stays a few names long
(the files of one flush interval). Names whose first offset is below the committed offset are
committed files and are never touched.
"""

from __future__ import annotations

import json
import logging

from upbit_pipeline.lake import layout
from upbit_pipeline.lake.storage import LakeStorage

__all__ = ["read_intent", "remove_leftovers", "write_intent"]

log = logging.getLogger(__name__)


def write_intent(storage: LakeStorage, topic: str, partition: int, paths: list[str]) -> None:
    """Durably record ``paths`` (lake-relative) as possibly existing and uncommitted."""
    body = {"topic": topic, "partition": partition, "paths": paths}
    storage.write(layout.pending_path(topic, partition), json.dumps(body, indent=1).encode())


def read_intent(storage: LakeStorage, topic: str, partition: int) -> list[str]:
    """The paths of the last intent record (empty when there is none)."""
    data = storage.read(layout.pending_path(topic, partition))
    if data is None:
        return []
    body = json.loads(data)
    paths: list[str] = body["paths"]
    return paths


def remove_leftovers(storage: LakeStorage, topic: str, partition: int, committed: int) -> int:
    """Delete the files of an uncommitted attempt: intent names with first offset >= committed.

    Idempotent (a crash halfway through is finished by the next assignment). Returns how many
    files existed and were removed.
    """
    removed = 0
    for path in read_intent(storage, topic, partition):
        key = layout.parse_file_name(path)
        if key is None or key.topic != topic or key.partition != partition:
            raise ValueError(f"intent record of {topic}[{partition}] names a foreign path {path}")
        if key.first_offset < committed:
            continue  # committed: it belongs to the lake now
        if storage.delete(path):
            removed += 1
            log.info(
                "removed leftover %s (first offset %d >= committed %d)",
                path, key.first_offset, committed,
                extra={"topic": topic, "partition": partition, "offset": key.first_offset},
            )  # fmt: skip
    return removed
