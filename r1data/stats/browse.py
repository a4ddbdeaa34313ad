"""Read documents back: the first rows matching a SQL condition (``head``) and one document by id (``find_document``).

    from r1data.stats.browse import head, find_document
    df = head("out/web", n=5, where="lang = 'de' AND lang_score > 0.9", rejected=True)
    hits = find_document("<urn:uuid:...>", ["out/web"])

``where`` is parsed by polars' SQL parser (``pl.sql_expr``) into a polars expression: it can name
columns, compare, use SQL operators and functions (``LIKE``, ``LENGTH``, ``IN``, ``IS NULL``...)
and nothing else — no Python is ever evaluated. Scans stream and stop at the ``n``-th match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from r1data.errors import InputError, R1DataError
from r1data.stats.sources import FileError, ShardFile, Target, _one_line, resolve_target


class WhereError(R1DataError):
    """A ``--where`` expression that does not parse or names unknown columns."""

    exit_code = 2


def _scan(files: list[ShardFile]) -> pl.LazyFrame:
    """One lazy frame over files whose schemas may differ (missing columns read as null)."""
    groups: dict[tuple, list[str]] = {}
    for f in files:
        groups.setdefault(f.schema_key(), []).append(f.path)
    frames = [pl.scan_parquet(paths) for paths in groups.values()]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def parse_where(where: str, columns: list[str]) -> pl.Expr:
    """``where`` as a polars expression; raises ``WhereError`` (one line) when it is invalid."""
    if not where or not where.strip():
        raise WhereError("--where: empty expression")
    try:
        expr = pl.sql_expr(where)
    except Exception as e:
        raise WhereError(f"--where: not a valid SQL expression: {_one_line(e)}") from None
    if isinstance(expr, list):
        raise WhereError("--where: give one expression")
    try:
        names = expr.meta.root_names()
    except Exception:
        names = []
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise WhereError(f"--where: unknown column {unknown[0]!r} (columns: {', '.join(columns)})")
    return expr


def display_redactor(t: Target):
    """``text -> text`` applying the run's ``secret_redaction`` stages (from its manifest), or None.

    ``head`` and ``show`` pass every text they return through it, so a run written before rejected
    rows were redacted (or under a policy that does not redact them, code-v1) shows no secret the
    recipe redacts either."""
    stages = ((t.manifest or {}).get("config") or {}).get("stages") or []
    configs = [s for s in stages if isinstance(s, dict) and s.get("stage") == "secret_redaction"]
    if not configs:
        return None
    from r1data.sources.secrets import DEFAULT_KINDS, EXAMPLE_DOMAINS, KINDS, redact

    passes = []
    for c in configs:
        kinds = [k for k in (c.get("kinds") or DEFAULT_KINDS) if k in KINDS]
        # a manifest from before by_content existed: its runs found AWS secret keys by name only
        passes.append((kinds, tuple(c.get("keep_email_domains") or EXAMPLE_DOMAINS), bool(c.get("by_content", False))))

    def apply(text):
        if not isinstance(text, str) or not text:
            return text
        for kinds, keep, by_content in passes:
            text = redact(text, kinds, keep, by_content)[0]
        return text

    return apply


def head(target: str | list[str] | Target, n: int = 5, where: str | None = None, rejected: bool = False) -> pl.DataFrame:
    """The first ``n`` documents (in file order) of the kept shards, or of ``rejected/``, matching ``where``.

    Texts pass the run's redaction (``display_redactor``)."""
    t = target if isinstance(target, Target) else resolve_target(target)
    files = t.rejected if rejected else t.kept
    if not files:
        what = "rejected documents" if rejected else "kept shards"
        raise InputError(f"{t.label}: no {what} to read" + ("" if rejected else " (try --rejected)"))
    columns = list(dict.fromkeys(c for f in files for c in f.columns))
    cond = parse_where(where, columns) if where is not None else None

    def collect(fs: list[ShardFile]) -> pl.DataFrame:
        lf = _scan(fs)
        if cond is not None:
            lf = lf.filter(cond)
        return lf.head(n).collect(engine="streaming")

    try:
        df = collect(files)
    except (pl.exceptions.PolarsError, OSError) as e:
        good = readable_files(files, t)
        if len(good) == len(files):
            if where is not None:
                raise WhereError(f"--where: cannot evaluate {where!r}: {_one_line(e)}") from None
            raise InputError(f"{t.label}: cannot read the shards: {_one_line(e)}") from None
        if not good:
            raise InputError(f"{t.label}: none of the {len(files)} shard(s) could be read; first: {t.errors[-1].line()}") from None
        df = collect(good)
    scrub = display_redactor(t)
    if scrub is not None and "text" in df.columns and df.height:
        df = df.with_columns(pl.Series("text", [scrub(x) for x in df["text"].to_list()], dtype=df.schema["text"]))
    return df


def readable_files(files: list[ShardFile], t: Target) -> list[ShardFile]:
    """The files whose data can be decoded; each other one is added to ``t.errors`` (named, with why).

    Run only after reading failed: a shard whose footer is fine but whose data pages are corrupt
    (a partial copy, bit rot) is found by decoding each file in full."""
    good = []
    for f in files:
        try:
            pl.scan_parquet(f.path).select(pl.all().hash()).collect(engine="streaming")
            good.append(f)
        except Exception as e:  # any decoding failure names the file; the others are still read
            t.errors.append(FileError(f.path, f"unreadable data: {_one_line(e)}"))
    return good


@dataclass
class Found:
    """One document found by id: where it is and everything stored with it."""

    path: str
    rejected: bool
    row: dict[str, Any]
    run_dir: Path | None = None
    manifest: dict | None = None
    stage_config: dict | None = None
    passed_stages: list[str] = field(default_factory=list)
    kept_copy: dict | None = None  # for a duplicate: where the kept document of its cluster is
    duplicates: int = 0  # for a kept document: how many rejected documents name it as duplicate_of


def _run_dirs_under(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and ((p / "manifest.json").is_file() or (p / "shards").is_dir()))


def default_targets() -> list[str]:
    """Run directories under ./out (what ``r1data show ID`` searches when no directory is given)."""
    root = Path("out")
    if not root.is_dir() or not _run_dirs_under(root):
        raise InputError("no output directories under ./out; give one: r1data show ID out/web")
    return [str(p) for p in _run_dirs_under(root)]


def _lookup(files: list[ShardFile], cond: pl.Expr, limit: int) -> list[tuple[str, dict]]:
    """Up to ``limit`` rows matching ``cond``, with the file each came from (one parallel scan)."""
    files = [f for f in files if "id" in f.columns]
    if not files or limit <= 0:
        return []
    groups: dict[tuple, list[str]] = {}
    for f in files:
        groups.setdefault(f.schema_key(), []).append(f.path)
    frames = [pl.scan_parquet(paths, include_file_paths="_file") for paths in groups.values()]
    lf = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    df = lf.filter(cond).head(limit).collect(engine="streaming")
    return [(row.pop("_file"), row) for row in df.iter_rows(named=True)]


def find_document(
    doc_id: str, targets: list[str] | None = None, limit: int = 10, errors: list[FileError] | None = None
) -> tuple[list[Found], bool]:
    """Find ``doc_id`` in the kept and rejected files of each target.

    Returns (documents, exact): an exact id match if there is one, else up to ``limit`` documents
    whose id starts with ``doc_id`` (``exact`` is False then). Files that cannot be read are left
    out and appended to ``errors``."""
    resolved = [resolve_target(d) for d in (targets or default_targets())]

    def lookup(t: Target, kind: str, cond: pl.Expr, n: int) -> list[tuple[str, dict]]:
        try:
            return _lookup(getattr(t, kind), cond, n)
        except (pl.exceptions.PolarsError, OSError):  # a corrupt file: name it, look in the others
            setattr(t, kind, readable_files(getattr(t, kind), t))
            return _lookup(getattr(t, kind), cond, n)

    result: tuple[list[Found], bool] = ([], True)
    for cond, exact in ((pl.col("id") == doc_id, True), (pl.col("id").str.starts_with(doc_id), False)):
        found: list[Found] = []
        for t in resolved:
            for is_rej, kind in ((False, "kept"), (True, "rejected")):
                for path, row in lookup(t, kind, cond, limit - len(found)):
                    found.append(_describe(Found(path, is_rej, row, t.run_dir, t.manifest), t))
        if found:
            result = (found, exact)
            break
    if errors is not None:
        for t in resolved:
            errors.extend(t.errors)
    return result


def _describe(doc: Found, t: Target) -> Found:
    """Add the rejecting stage's config, the stages it passed, and its duplicate cluster; redact its text."""
    scrub = display_redactor(t)
    if scrub is not None and "text" in doc.row:
        doc.row["text"] = scrub(doc.row["text"])
    order = t.stage_order()
    stage = doc.row.get("stage")
    if doc.rejected and stage in order:
        doc.passed_stages = order[: order.index(stage)]
    elif not doc.rejected:
        doc.passed_stages = order
    if doc.rejected and t.manifest:
        for s in (t.manifest.get("config") or {}).get("stages") or []:
            if (s.get("name") or s.get("stage")) == stage:
                doc.stage_config = {k: v for k, v in s.items() if k not in ("name",)}
    dup_of = doc.row.get("duplicate_of")
    if dup_of:
        hits = _lookup(t.kept, pl.col("id") == dup_of, 1) or _lookup(t.rejected, pl.col("id") == dup_of, 1)
        if hits:
            path, row = hits[0]
            doc.kept_copy = {"path": path, "id": row["id"], "url": row.get("url"), "rejected": "stage" in row}
    if not doc.rejected and any("duplicate_of" in f.columns for f in t.rejected):
        files = [f for f in t.rejected if "duplicate_of" in f.columns]
        doc.duplicates = int(_scan(files).filter(pl.col("duplicate_of") == doc.row["id"]).select(pl.len()).collect(engine="streaming").item())
    return doc
