"""The Parquet contract: one typed schema for kept shards, the same plus three columns for rejects.

Core columns are always present. Each stage in a pipeline adds the columns it declares
(``Stage.columns``), so a shard's schema is known before the run starts and never depends on
which documents happened to come first. Everything else a reader or stage attaches to a
document goes, JSON-encoded, into ``meta``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import pyarrow as pa

SCHEMA_VERSION = 1

# name -> (arrow type, nullable, description). Order is the column order in every shard.
CORE_COLUMNS: dict[str, tuple[pa.DataType, bool, str]] = {
    "id": (pa.string(), False, "stable document id (WARC-Record-ID for web records, source:path#n otherwise)"),
    "text": (pa.string(), False, "document text (for documents rejected before extraction: the raw payload)"),
    "source": (pa.string(), False, "source name given by the reader (web, books, code, math, ...)"),
    "url": (pa.string(), True, "URL of a web record"),
    "path": (pa.string(), True, "path of the document inside its source (book file, file in a repository)"),
    "date": (pa.string(), True, "capture or release date, ISO 8601 when known"),
    "input_file": (pa.string(), False, "the input shard the document was read from, as resolved"),
    "input_index": (pa.int32(), False, "position of that shard in sorted input order (dedup windows use it)"),
    "record_index": (pa.int64(), False, "position of the document within its input shard"),
}
META_COLUMN = ("meta", pa.string(), True, "JSON object with every other field readers and stages attached")

REJECT_COLUMNS: dict[str, tuple[pa.DataType, bool, str]] = {
    "stage": (pa.string(), False, "label of the stage that dropped the document"),
    "reason": (pa.string(), False, "why it was dropped (e.g. gopher_short_doc, near_duplicate)"),
    "duplicate_of": (pa.string(), True, "for duplicates: the id of the kept document of its cluster"),
}

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "list<string>": pa.list_(pa.string()),
}

INTERNAL_PREFIX = "_"  # metadata keys starting with "_" are working state and never written


def _fields(columns: Mapping[str, tuple[pa.DataType, bool, str]]) -> list[pa.Field]:
    return [pa.field(n, t, nullable=nl, metadata={"description": d}) for n, (t, nl, d) in columns.items()]


def stage_fields(stage_columns: Mapping[str, str]) -> list[pa.Field]:
    out = []
    for name, type_name in stage_columns.items():
        if name in CORE_COLUMNS or name in REJECT_COLUMNS or name == META_COLUMN[0]:
            raise ValueError(f"stage column {name!r} collides with a core column")
        if type_name not in ARROW_TYPES:
            raise ValueError(f"column {name!r}: unknown type {type_name!r} (known: {', '.join(ARROW_TYPES)})")
        out.append(pa.field(name, ARROW_TYPES[type_name], nullable=True))
    return out


def shard_schema(stage_columns: Mapping[str, str] = {}) -> pa.Schema:
    """Schema of ``shards/*.parquet``: core columns, stage columns, ``meta``."""
    fields = _fields(CORE_COLUMNS) + stage_fields(stage_columns)
    fields.append(pa.field(META_COLUMN[0], META_COLUMN[1], nullable=True, metadata={"description": META_COLUMN[3]}))
    return pa.schema(fields, metadata={"r1data.schema_version": str(SCHEMA_VERSION)})


def rejected_schema(stage_columns: Mapping[str, str] = {}) -> pa.Schema:
    """Schema of ``rejected/*.parquet``: the shard schema plus ``stage``, ``reason``, ``duplicate_of``."""
    base = shard_schema(stage_columns)
    fields = list(base)[:-1] + _fields(REJECT_COLUMNS) + [base.field(META_COLUMN[0])]
    return pa.schema(fields, metadata=base.metadata)


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def docs_to_table(docs: Iterable, schema: pa.Schema, rejected: bool = False) -> pa.Table:
    """Turn datatrove Documents into a table of ``schema``; unknown metadata goes to ``meta``."""
    names = [f.name for f in schema]
    cols: dict[str, list] = {n: [] for n in names}
    known = set(names)
    for doc in docs:
        md = doc.metadata
        row_meta = {}
        for k, v in md.items():
            if k in known or k.startswith(INTERNAL_PREFIX):
                continue
            row_meta[k] = _jsonable(v)
        for n in names:
            if n == "id":
                cols[n].append(str(doc.id))
            elif n == "text":
                cols[n].append(doc.text if isinstance(doc.text, str) else ("" if doc.text is None else str(doc.text)))
            elif n == "meta":
                cols[n].append(json.dumps(row_meta, ensure_ascii=False, sort_keys=True) if row_meta else None)
            elif rejected and n in ("stage", "reason"):
                stage, reason = md["_rejected"]
                cols[n].append(stage if n == "stage" else reason)
            else:
                cols[n].append(md.get(n))
    arrays = []
    for f in schema:
        try:
            arrays.append(pa.array(cols[f.name], type=f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise ValueError(f"column {f.name!r}: {e}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


def describe_schema(schema: pa.Schema) -> list[tuple[str, str, str]]:
    """``[(name, type, description)]`` for docs and ``--dry-run``."""
    out = []
    for f in schema:
        desc = (f.metadata or {}).get(b"description", b"").decode()
        out.append((f.name, str(f.type), desc))
    return out
