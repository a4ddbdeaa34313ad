"""Encode r1data text shards into token shards (see ``r1data.tokenize`` for the format)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from r1data.errors import InputError
from r1data.tokenize.bpe import find_eos, load_tokenizer
from r1data.tokenize.textshards import check_columns, find_parquet, iter_text_batches

TOKEN_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=True),
    pa.field("tokens", pa.list_(pa.int32()), nullable=False),
    pa.field("n_tokens", pa.int32(), nullable=False),
    pa.field("n_bytes", pa.int64(), nullable=False),
], metadata={"r1data.kind": "tokens", "r1data.tokens_version": "1"})
MANIFEST_KIND = "r1data.tokens"
STATE_FILE = ".encode-state.json"


def _versions() -> dict[str, str]:
    # Not r1data.run.manifest.package_versions: that module imports datatrove, which the GPU image lacks.
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("r1data", "tokenizers", "pyarrow", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _encode_batch(tok, texts: list[str], eos_id: int) -> tuple[pa.Array, np.ndarray]:
    """Token ids of each text plus ``eos_id``, as an Arrow list<int32> array, and the lengths."""
    encs = tok.encode_batch_fast(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) + 1 for e in encs), dtype=np.int32, count=len(encs))
    offsets = np.zeros(len(encs) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.empty(int(offsets[-1]), dtype=np.int32)
    for i, e in enumerate(encs):
        a, b = offsets[i], offsets[i + 1]
        values[a:b - 1] = e.ids
        values[b - 1] = eos_id
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int32())), lengths


def encode_file(tok, eos_id: int, src: Path, dst: Path, row_group_tokens: int, batch_rows: int = 256) -> dict:
    """Encode one text shard into ``dst`` (written under a temporary name, renamed when complete)."""
    has_source = "source" in check_columns(src, ["id", "text"]).schema_arrow.names
    cols = ["id", "text"] + (["source"] if has_source else [])
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    writer = pq.ParquetWriter(tmp, TOKEN_SCHEMA, compression="zstd", compression_level=3)
    pending: list[pa.RecordBatch] = []
    pending_tokens = rows = tokens = nbytes = 0

    def flush():
        nonlocal pending, pending_tokens
        if pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=sum(len(x) for x in pending))
        pending, pending_tokens = [], 0

    try:
        for _, batch in iter_text_batches([src], cols, batch_rows=batch_rows):
            toks, lengths = _encode_batch(tok, batch["text"], eos_id)
            b = np.fromiter((len(t.encode("utf-8")) for t in batch["text"]), dtype=np.int64, count=len(lengths))
            rb = pa.RecordBatch.from_arrays(
                [pa.array(batch["id"], pa.string()), pa.array(batch.get("source") or [None] * len(lengths), pa.string()),
                 toks, pa.array(lengths, pa.int32()), pa.array(b, pa.int64())], schema=TOKEN_SCHEMA)
            rows += len(lengths)
            tokens += int(lengths.sum())
            nbytes += int(b.sum())
            # Close a row group as soon as it holds row_group_tokens tokens (a document is never split).
            start = 0
            cum = pending_tokens + np.cumsum(lengths, dtype=np.int64)
            while start < len(lengths):
                full = np.nonzero(cum[start:] >= row_group_tokens)[0]
                end = start + int(full[0]) + 1 if len(full) else len(lengths)
                pending.append(rb.slice(start, end - start))
                pending_tokens = int(cum[end - 1])
                if pending_tokens >= row_group_tokens:
                    flush()
                    cum = cum - cum[end - 1]
                start = end
        flush()
        writer.close()
        os.replace(tmp, dst)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return {"rows": rows, "tokens": tokens, "bytes": nbytes, "row_groups": pq.ParquetFile(dst).metadata.num_row_groups}


def encode_shards(
    tokenizer: str | Path,
    inputs: list[str],
    out_dir: str | Path,
    *,
    eos: str | None = None,
    row_group_tokens: int = 262_144,
    overwrite: bool = False,
    on_file=None,
) -> dict:
    """Encode every input shard to ``out_dir/<same name>.parquet`` and write ``out_dir/manifest.json``.

    Rerunning after an interruption keeps the outputs already finished (same tokenizer and inputs);
    a finished output folder is only replaced with ``overwrite``.
    """
    from r1data.paths import sha256_file

    if row_group_tokens < 1:
        raise InputError(f"--row-group-tokens: must be >= 1, got {row_group_tokens}")
    tok, tok_path = load_tokenizer(tokenizer)
    tok.no_truncation()  # a tokenizer.json made for a classifier (BERT) truncates at 512 tokens
    tok.no_padding()
    eos_token, eos_id = find_eos(tok, tok_path, eos)
    files = find_parquet(inputs)
    for f in files:
        check_columns(f, ["id", "text"])
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"input shards share file names ({', '.join(dup)}); encode each folder to its own output")

    out = Path(out_dir)
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not overwrite:
        raise InputError(f"{out}: already holds encoded shards (manifest.json); pass --overwrite to replace them")
    tok_sha = sha256_file(tok_path)
    inputs_info = [{"path": str(f), "sha256": sha256_file(f), "rows": pq.ParquetFile(f).metadata.num_rows} for f in files]
    state = {"tokenizer_sha256": tok_sha, "eos_id": eos_id, "inputs": inputs_info, "row_group_tokens": row_group_tokens}
    state_path = out / STATE_FILE
    resumable = False
    if out.exists():
        if overwrite:
            for p in list(out.glob("*.parquet")) + [manifest_path, state_path]:
                p.unlink(missing_ok=True)
        elif state_path.exists():
            resumable = json.loads(state_path.read_text()) == state
            if not resumable:
                raise InputError(f"{out}: holds an unfinished encode with another tokenizer or other inputs; "
                                 "pass --overwrite to start again")
    out.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state))

    t0 = time.perf_counter()
    outputs = []
    for f in files:
        dst = out / f.name
        if resumable and dst.exists():
            pf = pq.ParquetFile(dst)
            n_tok = pc.sum(pf.read(columns=["n_tokens"]).column(0)).as_py() or 0
            n_bytes = pc.sum(pf.read(columns=["n_bytes"]).column(0)).as_py() or 0
            info = {"rows": pf.metadata.num_rows, "tokens": n_tok, "bytes": n_bytes, "row_groups": pf.metadata.num_row_groups,
                    "resumed": True}
        else:
            info = encode_file(tok, eos_id, f, dst, row_group_tokens)
        info = {"path": dst.name, **info, "sha256": sha256_file(dst)}
        outputs.append(info)
        if on_file:
            on_file(f, info)
    seconds = time.perf_counter() - t0
    import tokenizers

    totals = {k: sum(o[k] for o in outputs) for k in ("rows", "tokens", "bytes")}
    manifest = {
        "kind": MANIFEST_KIND,
        "version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tokenizer": {
            "path": str(tok_path.resolve()),
            "sha256": tok_sha,
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "eos_token": eos_token,
            "eos_id": eos_id,
            "tokenizers_version": tokenizers.__version__,
        },
        "row_group_tokens": row_group_tokens,
        "inputs": inputs_info,
        "outputs": outputs,
        "totals": {**totals, "bytes_per_token": round(totals["bytes"] / totals["tokens"], 4) if totals["tokens"] else None},
        "seconds": round(seconds, 2),
        "versions": _versions(),
    }
    tmp = out / f".manifest.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    state_path.unlink(missing_ok=True)
    return manifest
