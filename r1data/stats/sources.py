"""Find what to inspect: an output directory (``shards/``, ``rejected/``, ``manifest.json``, ``stats/``) or Parquet files.

    target = resolve_target(["out/web"])            # a run directory
    target = resolve_target(["out/*/shards/*.parquet"])   # any glob, directory or file list

Every file's footer is read once here (pyarrow, no data pages): that gives its row count, its
schema, and finds files that are not Parquet at all before any scan starts. A file whose footer
cannot be read is recorded in ``target.errors`` and left out; the others are still inspected.
Files holding ``stage`` and ``reason`` columns are rejected documents, the others kept ones.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1data.errors import InputError
from r1data.io.schema import CORE_COLUMNS

REJECT_MARKERS = ("stage", "reason")


@dataclass
class ShardFile:
    """One readable Parquet file: where it is, its rows, bytes on disk and column types."""

    path: str
    rows: int
    bytes: int
    columns: dict[str, str]  # name -> arrow type as text
    row_groups: int
    #: numeric column -> (min, max) from the footer's row-group statistics; absent when any row group lacks them
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return all(c in self.columns for c in REJECT_MARKERS)

    def schema_key(self) -> tuple:
        return tuple(sorted(self.columns.items()))


@dataclass
class FileError:
    path: str
    error: str

    def line(self) -> str:
        return f"{self.path}: {self.error}"


@dataclass
class Target:
    """What ``r1data stats`` looks at. ``run_dir`` is set for an output directory (manifest may be absent)."""

    label: str
    kept: list[ShardFile] = field(default_factory=list)
    rejected: list[ShardFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    run_dir: Path | None = None
    manifest: dict[str, Any] | None = None
    task_stats: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[ShardFile]:
        return self.kept + self.rejected

    def stage_order(self) -> list[str]:
        """Stage labels in pipeline order, from the manifest's resolved config (empty without one)."""
        if not self.manifest:
            return []
        stages = (self.manifest.get("config") or {}).get("stages") or []
        out = []
        for s in stages:
            label = s.get("name") or s.get("label") or s.get("stage")
            if label:
                out.append(label)
        if not out:
            out = [s.get("label") or s.get("stage") for s in self.manifest.get("stages") or [] if s.get("label") or s.get("stage")]
        return out

    def stage_types(self) -> dict[str, str]:
        """Stage label -> registered stage name (``minhash_dedup`` ...), from the manifest."""
        if not self.manifest:
            return {}
        return {
            (s.get("name") or s.get("stage")): s.get("stage")
            for s in (self.manifest.get("config") or {}).get("stages") or []
            if s.get("stage")
        }


NUMERIC_TYPES = ("float", "double", "halffloat", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _footer_ranges(md, columns: dict[str, str]) -> dict[str, tuple[float | None, float | None]]:
    """Min/max of each top-level numeric column over all row groups, from statistics alone."""
    index = {md.schema.column(i).path: i for i in range(md.num_columns)}
    out = {}
    for name, typ in columns.items():
        if typ not in NUMERIC_TYPES or name not in index:
            continue
        lo = hi = None
        complete = True
        for g in range(md.num_row_groups):
            col = md.row_group(g).column(index[name])
            st = col.statistics
            if st is None:
                complete = False
                break
            if col.num_values == 0 or not st.has_min_max:
                if st.null_count == col.num_values:
                    continue  # an all-null row group has no range to give
                complete = False
                break
            lo = st.min if lo is None else min(lo, st.min)
            hi = st.max if hi is None else max(hi, st.max)
        if complete:
            out[name] = (None if lo is None else float(lo), None if hi is None else float(hi))
    return out


def _describe(path: str) -> ShardFile:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    md = pf.metadata
    columns = {f.name: str(f.type) for f in pf.schema_arrow}
    return ShardFile(
        path=path,
        rows=md.num_rows,
        bytes=Path(path).stat().st_size,
        columns=columns,
        row_groups=md.num_row_groups,
        ranges=_footer_ranges(md, columns),
    )


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."


def inspect_file(path: str) -> ShardFile | FileError:
    """Read one file's footer; a file that is not (complete) Parquet becomes a ``FileError``."""
    try:
        return _describe(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for the many ways a file breaks
        return FileError(path, f"not a readable Parquet file ({_one_line(e)})")


def _expand(arg: str) -> tuple[list[str], Path | None]:
    """Files named by one argument, and the run directory when the argument is one."""
    p = Path(arg)
    if p.is_dir():
        if (p / "manifest.json").is_file() or (p / "shards").is_dir() or (p / "rejected").is_dir():
            files = sorted(str(f) for sub in ("shards", "rejected") for f in (p / sub).glob("*.parquet"))
            return files, p
        return sorted(str(f) for f in p.rglob("*.parquet") if not f.name.startswith(".")), None
    if p.is_file():
        return [str(p)], None
    if glob.has_magic(arg):
        return sorted(f for f in glob.glob(arg, recursive=True) if Path(f).is_file()), None
    raise InputError(f"{arg}: no such file or directory")


def load_manifest(run_dir: Path) -> tuple[dict | None, list[str]]:
    path = run_dir / "manifest.json"
    if not path.is_file():
        return None, []
    try:
        return json.loads(path.read_text()), []
    except (OSError, ValueError) as e:
        return None, [f"{path}: unreadable manifest ({_one_line(e)}); stage order and read counts are unknown"]


def load_task_stats(run_dir: Path) -> tuple[list[dict], list[str]]:
    """Every ``stats/**/NNNNN.json``: r1data's counts and datatrove's step stats, in phase order.

    Phases live in ``stats/NN-<stage>-<step>/`` and run in name order; the final phase
    (``stats/NNNNN.json``) runs last."""
    folder = run_dir / "stats"
    out, warnings = [], []
    if not folder.is_dir():
        return out, warnings
    files = sorted(folder.rglob("[0-9]*.json"), key=lambda f: (f.parent == folder, str(f.relative_to(folder))))
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            warnings.append(f"{f}: unreadable task stats ({_one_line(e)})")
            continue
        data["_phase"] = str(f.parent.relative_to(folder)) if f.parent != folder else ""
        out.append(data)
    return out, warnings


def resolve_target(args: list[str] | str) -> Target:
    """Resolve run directories, directories, files and globs into one ``Target``.

    Raises ``InputError`` when an argument does not exist or nothing at all matches."""
    args = [args] if isinstance(args, str) else list(args)
    if not args:
        raise InputError("give an output directory or Parquet files (e.g. out/web or 'out/web/shards/*.parquet')")
    files: list[str] = []
    run_dirs: list[Path] = []
    for a in args:
        got, run_dir = _expand(a)
        if run_dir is not None:
            run_dirs.append(run_dir)
        files.extend(got)
    seen = set()
    files = [f for f in files if not (f in seen or seen.add(f))]
    label = args[0] if len(args) == 1 else f"{args[0]} (+{len(args) - 1} more)"
    target = Target(label=label)
    if len(run_dirs) == 1 and len(args) == 1:
        target.run_dir = run_dirs[0]
        target.manifest, w1 = load_manifest(run_dirs[0])
        target.task_stats, w2 = load_task_stats(run_dirs[0])
        target.warnings += w1 + w2
    if not files:
        where = args[0] if len(args) == 1 else " ".join(args)
        hint = " (expected shards/*.parquet and rejected/*.parquet)" if run_dirs else ""
        raise InputError(f"{where}: no Parquet files{hint}")
    foreign: list[tuple[ShardFile, list[str]]] = []
    for f in files:
        got = inspect_file(f)
        if isinstance(got, FileError):
            target.errors.append(got)
        elif missing_columns(got):
            foreign.append((got, missing_columns(got)))
        elif got.rejected:
            target.rejected.append(got)
        else:
            target.kept.append(got)
    if foreign and not target.files:
        f, missing = foreign[0]
        more = f" (and {len(foreign) - 1} more file(s) not written by r1data)" if len(foreign) > 1 else ""
        raise InputError(f"{f.path}: not an r1data shard: missing column(s) {', '.join(missing)}{more}; stats, head and show read the output of r1data run")
    for f, missing in foreign:  # beside r1data shards: named and left out, like an unreadable file
        target.errors.append(FileError(f.path, f"not an r1data shard (missing column(s) {', '.join(missing)})"))
    return target


def missing_columns(f: ShardFile) -> list[str]:
    """The core columns every r1data shard has and ``f`` lacks (a Parquet file r1data did not write)."""
    return [c for c in CORE_COLUMNS if c not in f.columns]
