"""Pieces every channel decoder shares: SIMPLE rename maps, REST error bodies, error wrapping.

The SIMPLE key maps live once in ``upbit.fields``; :func:`simple_names` only re-keys them by model
field name where a model field is spelt differently from Upbit's DEFAULT key (``units`` for
``orderbook_units``), so no key is typed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import GenericAlias
from typing import Any, TypeVar

import msgspec

from upbit_pipeline.upbit.errors import MalformedFrameError

__all__ = [
    "DECODE_ERRORS",
    "decode_rest",
    "decode_rest_error",
    "list_decoder",
    "simple_names",
    "tuple_of",
    "wire_class",
]

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

DECODE_ERRORS = (msgspec.MsgspecError, ValueError, OverflowError, RecursionError)
"""What decoding untrusted bytes may raise. Converters signal a semantic fault with ValueError;
RecursionError comes from absurdly nested JSON; OverflowError from date arithmetic at the ends of
the calendar."""


def simple_names(wire: Mapping[str, str], **aliases: str) -> dict[str, str]:
    """Model field name -> SIMPLE key, from a DEFAULT -> SIMPLE map of ``upbit.fields``.

    ``aliases`` name model fields whose DEFAULT key differs: ``units="orderbook_units"``.
    Keys of ``wire`` that are no model field (``type``) are ignored by msgspec.
    """
    names = dict(wire)
    for field, default_key in aliases.items():
        names[field] = wire[default_key]
    return names


def wire_class(
    base: type[S],
    name: str,
    *,
    rename: Mapping[str, str] | None = None,
    tag: str | None = None,
    tag_field: str | None = None,
    types: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> type[S]:
    """A subclass of ``base`` with the same fields, methods and order under other wire keys.

    msgspec applies a class's ``rename`` only to the fields that class itself declares, so the
    subclass re-declares every field of ``base`` (same type, unless ``types`` overrides it, and same
    default). Being a subclass, it keeps ``base``'s methods (``to_model``) and field order, so
    ``Model(*astuple(wire))`` rebuilds the model.
    """
    declared: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(base):
        typ = (types or {}).get(f.name, f.type)
        if f.default is not msgspec.NODEFAULT:
            declared.append((f.name, typ, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            declared.append((f.name, typ, msgspec.field(default_factory=f.default_factory)))
        else:
            declared.append((f.name, typ))
    cls = msgspec.defstruct(
        name,
        declared,
        bases=(base,),
        module=base.__module__,
        namespace=dict(namespace or {}),
        rename=rename,
        tag=tag,
        tag_field=tag_field,
        frozen=True,
        gc=False,
    )
    return cls  # type: ignore[return-value]


def list_decoder(item: type[S]) -> msgspec.json.Decoder[list[S]]:
    """A decoder of ``list[item]`` for a class made at run time (mypy takes no variable as type)."""
    return msgspec.json.Decoder(GenericAlias(list, (item,)))


def tuple_of(item: type[S]) -> Any:
    """``tuple[item, ...]`` for a class made at run time."""
    return GenericAlias(tuple, (item, ...))


class _RestErrorDetail(msgspec.Struct, frozen=True, gc=False):
    name: int | str
    message: str = ""


class _RestErrorBody(msgspec.Struct, frozen=True, gc=False):
    error: _RestErrorDetail


_REST_ERROR = msgspec.json.Decoder(_RestErrorBody)


def decode_rest_error(body: bytes) -> tuple[int | str, str] | None:
    """``(name, message)`` of an Upbit REST error body, or None if ``body`` is anything else.

    ``{"error":{"name":404,"message":"Code not found"}}`` -> ``(404, "Code not found")``. ``name``
    is an int for quotation errors and a string elsewhere (``"not_found"``). Never raises: an HTML
    page from a proxy or a normal response is simply "not an Upbit error".
    """
    try:
        detail = _REST_ERROR.decode(body).error
    except DECODE_ERRORS:
        return None
    return detail.name, detail.message


def decode_rest(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """Decode a REST body or raise MalformedFrameError whose reason names ``what`` went wrong."""
    try:
        return decoder.decode(body)
    except DECODE_ERRORS as exc:
        error = decode_rest_error(body)
        if error is not None:
            reason = f"{what}: body is an Upbit error {error[0]}: {error[1]}"
        else:
            reason = f"{what}: {exc}"
        raise MalformedFrameError(reason, bytes(body)) from None
