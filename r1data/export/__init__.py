"""Write a run's kept shards (or token shards) in the formats trainers read.

Formats (``export(fmt=...)``):

- ``megatron``: Megatron-LM indexed dataset, ``OUT/NAME.bin`` + ``OUT/NAME.idx`` (the
  ``MMIDIDX`` mmap format of ``megatron/core/datasets/indexed_dataset.py``): one sequence per
  document (its tokens and the end-of-text id), one document per sequence; token dtype uint16 when
  the vocabulary has fewer than 65,500 ids, else int32 (Megatron's own choice). Train with
  ``--data-path OUT/NAME``.
- ``datatrove``: datatrove/nanotron tokenized files, ``OUT/NAME.ds`` (little-endian uint16 or
  uint32 tokens back to back), ``OUT/NAME.ds.index`` (uint64 end offset, in tokens, of each
  document), ``OUT/NAME.ds.metadata`` and, with ``loss=True``, ``OUT/NAME.ds.loss`` (one byte per
  token, 1 = trained on). Read with ``DatatroveFolderDataset(OUT, seq_len, filename_pattern="*.ds",
  token_size=...)``.
- ``jsonl`` / ``jsonl.zst``: one file per shard, one JSON object per document with every column of
  the shard (``meta`` decoded to an object).
- ``hf``: a Hugging Face ``datasets`` folder (``Dataset.save_to_disk``); load it with
  ``datasets.load_from_disk(OUT)``.

Text shards are tokenized with a ``tokenizer.json`` (the ``tokenizers`` library), one end-of-text
token appended to every document exactly as ``r1data tokenize encode`` does; token shards (from
``r1data tokenize encode``) are written as they are. ``OUT/manifest.json`` records the inputs,
the tokenizer, and what was written.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from r1data.errors import InputError

FORMATS = ("megatron", "datatrove", "jsonl", "jsonl.zst", "hf")
TOKEN_FORMATS = ("megatron", "datatrove")
MANIFEST_KIND = "r1data.export"

MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_VERSION = 1
#: Megatron's DType codes (megatron/core/datasets/indexed_dataset.py)
MEGATRON_DTYPE_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.float64: 6, np.float32: 7, np.uint16: 8}


def megatron_dtype(vocab_size: int):
    """Megatron's ``DType.optimal_dtype``: uint16 below 65,500 ids, else int32."""
    return np.uint16 if vocab_size < 65500 else np.int32


def datatrove_token_size(vocab_size: int) -> int:
    return 2 if vocab_size <= 65536 else 4


# -- inputs -----------------------------------------------------------------------------------------


def find_shards(inputs: list[str]) -> tuple[list[Path], str]:
    """The Parquet files to export and their kind (``text`` or ``tokens``); one-line errors otherwise."""
    from r1data.tokenize.textshards import find_parquet

    files = find_parquet(inputs, what="shards")
    kinds = set()
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except Exception as e:
            raise InputError(f"{f}: not a readable Parquet file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        md = pf.schema_arrow.metadata or {}
        names = pf.schema_arrow.names
        if md.get(b"r1data.kind") == b"tokens" or ("tokens" in names and "text" not in names):
            kinds.add("tokens")
        elif "text" in names and "id" in names:
            kinds.add("text")
        else:
            raise InputError(f"{f}: neither a text shard (id, text) nor a token shard (tokens); has: {', '.join(names)}")
    if len(kinds) > 1:
        raise InputError("inputs mix text shards and token shards; export them separately")
    return files, kinds.pop()


def _token_vocab_size(files: list[Path]) -> int:
    """Vocabulary size of token shards: from their manifest.json when there is one, else the largest id + 1."""
    for f in files:
        m = f.parent / "manifest.json"
        if m.is_file():
            try:
                v = json.loads(m.read_text()).get("tokenizer", {}).get("vocab_size")
                if isinstance(v, int) and v > 0:
                    return v
            except (OSError, ValueError):
                pass
    import pyarrow.compute as pc

    top = 0
    for f in files:
        col = pq.read_table(f, columns=["tokens"]).column("tokens")
        m = pc.max(pc.list_flatten(col)).as_py()
        top = max(top, (m or 0) + 1)
    return top


def iter_token_docs(files: list[Path], kind: str, tokenizer=None, eos_id: int | None = None, batch_rows: int = 256):
    """Yield ``(file, np.ndarray of int64 ids)`` per document, end-of-text included, in shard order."""
    if kind == "tokens":
        for f in files:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=["tokens"]):
                col = batch.column(0)
                offsets = np.asarray(col.offsets)
                values = np.asarray(col.values, dtype=np.int64)
                for i in range(len(col)):
                    yield f, values[offsets[i]:offsets[i + 1]]
        return
    from r1data.tokenize.textshards import iter_text_batches

    for f, cols in iter_text_batches(files, ["id", "text"], batch_rows=batch_rows):
        encs = tokenizer.encode_batch_fast(cols["text"], add_special_tokens=False)
        for e in encs:
            ids = np.empty(len(e.ids) + 1, dtype=np.int64)
            ids[:-1] = e.ids
            ids[-1] = eos_id
            yield f, ids


# -- writers ----------------------------------------------------------------------------------------


def _check_range(ids: np.ndarray, dtype, fmt: str) -> None:
    info = np.iinfo(dtype)
    if len(ids) and (ids.min() < info.min or ids.max() > info.max):
        raise InputError(f"{fmt}: token id {int(ids.max())} does not fit {np.dtype(dtype).name}; pass a larger --token-size")


def write_megatron(docs, prefix: Path, dtype) -> dict:
    """``prefix.bin`` / ``prefix.idx`` in Megatron's MMIDIDX layout; one sequence and one document per input document."""
    lengths: list[int] = []
    n_tokens = 0
    with open(prefix.with_suffix(".bin"), "wb") as fb:
        for _, ids in docs:
            _check_range(ids, dtype, "megatron")
            fb.write(ids.astype(dtype).tobytes())
            lengths.append(len(ids))
            n_tokens += len(ids)
    seq_lengths = np.asarray(lengths, dtype=np.int32)
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(seq_lengths), dtype=np.int64)
    if len(seq_lengths) > 1:
        np.cumsum(seq_lengths[:-1].astype(np.int64) * itemsize, out=pointers[1:])
    doc_idx = np.arange(len(seq_lengths) + 1, dtype=np.int64)
    with open(prefix.with_suffix(".idx"), "wb") as fi:
        fi.write(MEGATRON_HEADER)
        fi.write(struct.pack("<Q", MEGATRON_VERSION))
        fi.write(struct.pack("<B", MEGATRON_DTYPE_CODES[dtype]))
        fi.write(struct.pack("<Q", len(seq_lengths)))
        fi.write(struct.pack("<Q", len(doc_idx)))
        fi.write(seq_lengths.tobytes(order="C"))
        fi.write(pointers.tobytes(order="C"))
        fi.write(doc_idx.tobytes(order="C"))
    return {"files": [prefix.name + ".bin", prefix.name + ".idx"], "documents": len(lengths), "tokens": n_tokens,
            "dtype": np.dtype(dtype).name, "data_path": str(prefix)}


def write_datatrove(docs, path: Path, token_size: int, loss: bool, tokenizer_name: str) -> dict:
    """``path`` (.ds tokens), ``path.index`` (uint64 document ends), ``path.metadata``, optional ``path.loss``."""
    dtype = np.dtype("<u2") if token_size == 2 else np.dtype("<u4")
    ends: list[int] = []
    n = 0
    fl = open(str(path) + ".loss", "wb") if loss else None
    try:
        with open(path, "wb") as fb:
            for _, ids in docs:
                _check_range(ids, dtype, "datatrove")
                fb.write(ids.astype(dtype).tobytes())
                if fl:
                    fl.write(b"\x01" * len(ids))
                n += len(ids)
                ends.append(n)
    finally:
        if fl:
            fl.close()
    Path(str(path) + ".index").write_bytes(np.asarray(ends, dtype="<u8").tobytes())
    # same three lines as datatrove's DocumentTokenizer: "tokenizer|token_size", token count, human count
    Path(str(path) + ".metadata").write_text(f"{tokenizer_name}|{token_size}\n{n}\n{_human(n)}")
    files = [path.name, path.name + ".index", path.name + ".metadata"] + ([path.name + ".loss"] if loss else [])
    return {"files": files, "documents": len(ends), "tokens": n, "token_size": token_size}


def _human(n: int) -> str:
    import humanize  # a datatrove dependency; the same text datatrove's metadata file has

    return humanize.metric(n, unit="T")


def _json_row(row: dict) -> str:
    meta = row.get("meta")
    if isinstance(meta, str):
        try:
            row["meta"] = json.loads(meta)
        except ValueError:
            pass
    return json.dumps(row, ensure_ascii=False, default=str)


def write_jsonl(files: list[Path], out: Path, compress: bool, level: int = 3) -> dict:
    outputs, rows = [], 0
    for f in files:
        name = f.stem + (".jsonl.zst" if compress else ".jsonl")
        dst = out / name
        if compress:
            import zstandard

            raw = open(dst, "wb")
            fh = zstandard.ZstdCompressor(level=level).stream_writer(raw)
        else:
            fh = open(dst, "wb")
        n = 0
        try:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1024):
                buf = "".join(_json_row(r) + "\n" for r in batch.to_pylist())
                fh.write(buf.encode("utf-8"))
                n += batch.num_rows
        finally:
            fh.close()
            if compress:
                raw.close()
        outputs.append({"path": name, "rows": n})
        rows += n
    return {"files": [o["path"] for o in outputs], "outputs": outputs, "documents": rows}


def write_hf(files: list[Path], out: Path) -> dict:
    try:
        import datasets
    except ImportError:
        raise InputError("--format hf needs the datasets package: pip install datasets") from None
    cache = out / ".hf-cache"  # the Arrow cache datasets builds from the Parquet files, removed after saving
    ds = datasets.Dataset.from_parquet([str(f) for f in files], keep_in_memory=False, cache_dir=str(cache))
    ds.save_to_disk(str(out))
    n = len(ds)
    del ds
    shutil.rmtree(cache, ignore_errors=True)
    return {"files": sorted(p.name for p in out.iterdir()), "documents": n, "datasets_version": datasets.__version__}


# -- driver -----------------------------------------------------------------------------------------


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out}: already exists and is not empty; pass --overwrite to replace it")
        m = out / "manifest.json"
        kind = None
        if m.is_file():
            try:
                kind = json.loads(m.read_text()).get("kind")
            except (OSError, ValueError):
                pass
        if kind != MANIFEST_KIND:
            raise InputError(f"{out}: not an earlier r1data export (no export manifest.json); --overwrite only replaces those, choose another --out")
        shutil.rmtree(out)


def export(
    inputs: list[str],
    out: str | Path,
    fmt: str,
    *,
    tokenizer: str | Path | None = None,
    eos: str | None = None,
    name: str = "data",
    token_size: int | None = None,
    loss: bool = False,
    overwrite: bool = False,
) -> dict:
    """Export ``inputs`` (pipeline output folders, shards/ folders, files, globs) to ``out`` as ``fmt``."""
    if fmt not in FORMATS:
        raise InputError(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if token_size not in (None, 2, 4):
        raise InputError(f"--token-size: 2 or 4 bytes, got {token_size}")
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"--name: a plain file name prefix, got {name!r}")
    files, kind = find_shards(inputs)
    out = Path(out)
    tok = tok_path = None
    eos_token = eos_id = None
    vocab_size = None
    if fmt in TOKEN_FORMATS:
        if kind == "text":
            if tokenizer is None:
                raise InputError(f"--format {fmt} of text shards needs --tokenizer (a tokenizer.json), or token shards from r1data tokenize encode")
            from r1data.tokenize.bpe import find_eos, load_tokenizer

            tok, tok_path = load_tokenizer(tokenizer)
            tok.no_truncation()
            tok.no_padding()
            eos_token, eos_id = find_eos(tok, tok_path, eos)
            vocab_size = tok.get_vocab_size(with_added_tokens=True)
        else:
            if tokenizer is not None:
                raise InputError("--tokenizer: the inputs are token shards, already tokenized; leave it out")
            vocab_size = _token_vocab_size(files)
    elif kind == "tokens":
        raise InputError(f"--format {fmt} writes text; the inputs are token shards: export the text shards they came from")
    elif tokenizer is not None:
        raise InputError(f"--tokenizer: --format {fmt} writes text and uses no tokenizer")
    _prepare_out(out, overwrite)

    from r1data.paths import sha256_file

    inputs_info = [{"path": str(f), "sha256": sha256_file(f), "rows": pq.ParquetFile(f).metadata.num_rows} for f in files]
    # write into a temporary sibling folder, renamed when complete: a crash never leaves a half export at OUT
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        if fmt == "megatron":
            dtype = np.int32 if token_size == 4 else (np.uint16 if token_size == 2 else megatron_dtype(vocab_size))
            info = write_megatron(iter_token_docs(files, kind, tok, eos_id), tmp / name, dtype)
            info["data_path"] = str(out / name)
        elif fmt == "datatrove":
            ts = token_size or datatrove_token_size(vocab_size)
            tname = str(tok_path.resolve()) if tok_path else "r1data token shards"
            info = write_datatrove(iter_token_docs(files, kind, tok, eos_id), tmp / f"{name}.ds", ts, loss, tname)
        elif fmt in ("jsonl", "jsonl.zst"):
            info = write_jsonl(files, tmp, compress=fmt == "jsonl.zst")
        else:
            info = write_hf(files, tmp)
        manifest = {
            "kind": MANIFEST_KIND,
            "version": 1,
            "format": fmt,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "input_kind": kind,
            "inputs": inputs_info,
            **info,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        if tok_path is not None:
            import tokenizers

            manifest["tokenizer"] = {"path": str(tok_path.resolve()), "sha256": sha256_file(tok_path), "vocab_size": vocab_size,
                                     "eos_token": eos_token, "eos_id": eos_id, "tokenizers_version": tokenizers.__version__}
        elif vocab_size is not None:
            manifest["vocab_size"] = vocab_size
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
