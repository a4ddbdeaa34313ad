"""Rows of tabular sources (JSONL, JSON arrays, Parquet, CSV) -> document fields, by a field mapping.

    m = RowMapping(templates=["{question}\\n\\n{answer}"])
    text, doc_id, metadata, problem = m.apply({"question": "1+1?", "answer": "2", "level": 1})
    # text == "1+1?\\n\\n2", metadata == {"level": 1}, problem is None

Rules:

- the text is ``text_field``, or the first of ``templates`` whose fields are all present (not
  null) in the row; fields a template used are not repeated in the metadata;
- ``id_field``/``url_field``/``path_field``/``date_field`` fill those columns; a row field already
  named ``url``, ``path`` or ``date`` fills its column too. Values become strings (dates ISO 8601);
- every other field goes to the metadata (all of them, or only ``meta_fields``), renamed by
  ``rename``. A field whose name is a column r1data sets itself (``id``, ``text``, ``source``,
  ``input_file``, ``input_index``, ``record_index``, ``meta``) is kept as ``row_<name>``;
- rows of r1data's own shards (they carry every core column) round-trip: their ``meta`` JSON is
  unpacked, ``source`` is kept, and the previous run's ``input_file``/``input_index``/
  ``record_index`` are dropped (the new run numbers its own inputs).
"""

from __future__ import annotations

import datetime as _dt
import json
import string
from dataclasses import dataclass, field
from typing import Any

CONTENT_COLUMNS = ("url", "path", "date")
RESERVED = ("id", "text", "source", "input_file", "input_index", "record_index", "meta")
R1DATA_ROW_KEYS = frozenset({"id", "text", "source", "input_file", "input_index", "record_index"})


def template_fields(template: str) -> list[str]:
    """The row fields a ``str.format`` template refers to (``{a[b]}`` and ``{a.b}`` refer to ``a``).

    Raises ``ValueError`` for a malformed template or one with positional fields."""
    names = []
    for _, field_name, _, _ in string.Formatter().parse(template):
        if field_name is None:
            continue
        root = field_name.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            raise ValueError(f"template {template!r}: fields must be named, like {{question}}")
        if root not in names:
            names.append(root)
    return names


def is_r1data_row(row: dict) -> bool:
    return R1DATA_ROW_KEYS <= row.keys()


def as_column_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value if isinstance(value, str) else str(value)


@dataclass
class RowMapping:
    text_field: str = "text"
    templates: list[str] = field(default_factory=list)
    id_field: str | None = "id"
    url_field: str | None = None
    path_field: str | None = None
    date_field: str | None = None
    meta_fields: list[str] | None = None
    rename: dict[str, str] = field(default_factory=dict)
    drop_template_fields: bool = True

    def __post_init__(self):
        self._fields = [template_fields(t) for t in self.templates]

    def apply(self, row: dict, r1data_row: bool | None = None) -> tuple[str | None, str | None, dict[str, Any], str | None]:
        """``(text, id, metadata, problem)``: ``problem`` is a drop reason (``missing_text_field``,
        ``missing_fields``, ``empty_text``) or None; metadata then says what was missing."""
        row = dict(row)
        md: dict[str, Any] = {}
        if r1data_row is None:
            r1data_row = is_r1data_row(row)
        if r1data_row:
            for key in ("input_file", "input_index", "record_index"):
                row.pop(key, None)
            packed = row.pop("meta", None)
            if isinstance(packed, str) and packed:
                try:
                    packed = json.loads(packed)
                except json.JSONDecodeError:
                    packed = {"meta": packed}
            if isinstance(packed, dict):
                md.update(packed)
            if row.get("source") is not None:
                md["source"] = row.pop("source")

        used: set[str] = set()
        problem = None
        text: Any = None
        if self.templates:
            for tpl, names in zip(self.templates, self._fields):
                if all(row.get(n) is not None for n in names):
                    try:
                        text = tpl.format_map(row)
                    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
                        continue
                    if self.drop_template_fields:
                        used.update(names)
                    break
            else:
                problem = "missing_fields"
                md["missing_fields"] = [n for n in self._fields[0] if row.get(n) is None]
        else:
            text = row.get(self.text_field)
            used.add(self.text_field)
            if not isinstance(text, str):
                problem = "missing_text_field"
                text = None
        if problem is None and not text.strip():
            problem = "empty_text"

        doc_id = None
        if self.id_field and row.get(self.id_field) is not None:
            doc_id = str(row[self.id_field])
            used.add(self.id_field)
        for column, mapped in zip(CONTENT_COLUMNS, (self.url_field, self.path_field, self.date_field)):
            src = mapped or column
            if src in row and (mapped or src not in used):
                if row[src] is not None:
                    md[column] = as_column_value(row[src])
                used.add(src)

        for key, value in row.items():
            if key in used or (self.meta_fields is not None and key not in self.meta_fields):
                continue
            if r1data_row and key == "text":
                continue
            name = self.rename.get(key, key)
            if name in RESERVED:
                name = f"row_{name}"
            md[name] = value
        return text, doc_id, md, problem
