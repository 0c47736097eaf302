"""Lake storage through fsspec: a local folder (default), ``gs://`` (gcsfs) or ``s3://`` (s3fs).

Credentials come from each library's standard means (gcsfs: Application Default Credentials or
``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST`` for an emulator; s3fs: the AWS
environment/config chain, ``AWS_ENDPOINT_URL`` for a non-AWS endpoint), never from our settings.

**Durable write** is what the sink's exactly-once argument rests on:

* local disk: write ``.{name}.tmp`` beside the target, ``fsync`` it, ``os.replace`` it onto the
  name (atomic on POSIX), ``fsync`` the directory (and the parents of any directory we created),
  so after a power cut the name holds either nothing or the whole file;
* object stores: one ``pipe_file`` of the fully built bytes. A simple PUT, and above the libraries'
  chunk size a resumable (GCS) or multipart (S3) upload: in every case the object becomes visible
  only when the upload completes, whole, and replaces any object of that name.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import fsspec  # type: ignore[import-untyped]
from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]

from upbit_pipeline.lake import layout

__all__ = ["LakeStorage", "open_lake"]


class LakeStorage:
    """A lake root on some filesystem; every path argument is relative to the root."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.local = isinstance(fs, LocalFileSystem)

    def full(self, rel: str) -> str:
        """Filesystem path of a lake-relative path (what fsspec calls take)."""
        return f"{self.root}/{rel}"

    def rel(self, full: str) -> str:
        """Lake-relative path of a filesystem path returned by a listing."""
        full = full.rstrip("/")
        prefix = self.root + "/"
        return full[len(prefix) :] if full.startswith(prefix) else full

    # -- writes -----------------------------------------------------------------------------

    def write(self, rel: str, data: bytes) -> None:
        """Durably write ``data`` at ``rel``, replacing any previous file (see module doc)."""
        if self.local:
            self._write_local(self.full(rel), data)
        else:
            self.fs.pipe_file(self.full(rel), data)

    def _write_local(self, path: str, data: bytes) -> None:
        directory = os.path.dirname(path)
        _makedirs_durable(directory)
        tmp = os.path.join(directory, "." + os.path.basename(path) + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(directory)

    def delete(self, rel: str) -> bool:
        """Remove ``rel`` (and a local write's temp file); False if it did not exist."""
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.full(layout.temp_name(rel)))
        else:
            self.fs.invalidate_cache(self.full(rel))
            if not self.fs.exists(self.full(rel)):
                return False  # S3 deletes of missing keys succeed silently: ask, for the count
        try:
            self.fs.rm_file(self.full(rel))
        except FileNotFoundError:
            return False
        return True

    # -- reads ------------------------------------------------------------------------------

    def read(self, rel: str) -> bytes | None:
        """The bytes at ``rel``, or None when there is no such file."""
        try:
            data: bytes = self.fs.cat_file(self.full(rel))
        except FileNotFoundError:
            return None
        return data

    def read_many(self, rels: list[str], concurrency: int = 4) -> dict[str, bytes]:
        """Several files at once; object stores fetch ``concurrency`` at a time.

        fsspec's default sends every request at once; gcp-storage-emulator then stalls for
        minutes (150 reads: 108 s at once, 0.09 s four at a time), and real stores gain
        little beyond a few parallel reads of multi-megabyte files.
        """
        if not rels:
            return {}
        paths = [self.full(r) for r in rels]
        got: Any = (
            self.fs.cat(paths, on_error="raise")
            if self.local
            else self.fs.cat(paths, on_error="raise", batch_size=concurrency)
        )
        if not isinstance(got, dict):  # a single path may come back as bytes
            return {rels[0]: got}
        return {self.rel(path): data for path, data in got.items()}

    def find(self, rel_prefix: str) -> list[str]:
        """Every file below ``rel_prefix`` (recursive, sorted), as lake-relative paths."""
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(self.full(rel_prefix))
        except FileNotFoundError:
            return []
        return sorted(self.rel(path) for path in found)


def open_lake(url: str, **storage_options: Any) -> LakeStorage:
    """A :class:`LakeStorage` for a local path, ``gs://...`` or ``s3://...``.

    Instances are not shared through fsspec's cache (``skip_instance_cache``), so an endpoint or
    credential change in the environment takes effect on the next open.
    """
    if url.startswith(("gs://", "gcs://")):
        # gcsfs probes new buckets for hierarchical namespace over gRPC; where that is not
        # reachable (emulators, restricted networks) every bucket stalls 60 s. Standard buckets
        # need no probe; an operator who uses HNS buckets sets the variable to true.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    if "://" not in url:
        url = os.path.abspath(url)
    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **storage_options)
    return LakeStorage(fs, root, url)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs_durable(directory: str) -> None:
    """``mkdir -p`` that also fsyncs the parent of every directory it creates."""
    missing: list[str] = []
    path = directory
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        _fsync_dir(os.path.dirname(path))
