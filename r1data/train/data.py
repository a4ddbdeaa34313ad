"""Stream token shards, pack them into fixed-length sequences, and hand each rank its slice.

The unit of reading is a Parquet row group. A split (``train`` or ``eval``) is the documents whose id
hashes below ``eval_fraction`` (eval) or above it (train), so any token shards can be split without
rewriting them. Each epoch visits the row groups in a seeded random order and the documents of a
row group in a seeded random order; their tokens (each document ends with the end-of-text id) are
concatenated into one stream that is cut into windows of ``seq_len + 1`` tokens (inputs and shifted
targets).

Ranks: every rank walks the same global stream and keeps only its own windows: of each global
micro-batch of ``ranks * batch_size`` windows, rank ``r`` takes windows ``r * batch_size`` onwards.
So the data a step sees does not depend on the number of GPUs, and the position is one
``(epoch, unit, offset)`` triple shared by all ranks, which is what a checkpoint stores. The price
is that every rank reads every row group; at a few GB/s that is noise next to the step time.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from r1data.errors import ConfigError, InputError

HASH_BUCKETS = 1_000_000


@dataclass
class TokenShards:
    """A folder (or file) of token shards and what its manifest says about them."""

    files: list[Path]
    units: list[tuple[int, int]]  # (file index, row group index), in file order
    vocab_size: int | None
    eos_id: int | None
    manifest: dict

    def fingerprint(self) -> str:
        """Identifies the files and their row-group layout; a checkpoint's data position is only valid for it."""
        desc = [(f.name, sum(1 for u in self.units if u[0] == i)) for i, f in enumerate(self.files)]
        return f"{zlib.crc32(json.dumps(desc).encode()):08x}"


def open_token_shards(path: str | Path, where: str = "data.path") -> TokenShards:
    """Open ``path`` (a folder with ``manifest.json`` from ``r1data tokenize encode``, or Parquet files with a
    ``tokens`` column); ``ConfigError`` naming ``where`` if it is not usable."""
    p = Path(path).expanduser()
    manifest = {}
    if p.is_dir():
        mf = p / "manifest.json"
        if mf.is_file():
            manifest = json.loads(mf.read_text())
            if manifest.get("kind") != "r1data.tokens":
                raise ConfigError(f"{where}: {mf} is not a token-shard manifest (kind {manifest.get('kind')!r}); "
                                  "make token shards with `r1data tokenize encode`")
        files = sorted(p.glob("*.parquet"))
        if not files:
            hint = " (text shards? encode them first: r1data tokenize encode --tokenizer TOK.json OUT --out OUT/tokens)" \
                if (p / "shards").is_dir() else ""
            raise ConfigError(f"{where}: {p} holds no .parquet token shards{hint}")
    elif p.is_file():
        files = [p]
    else:
        raise ConfigError(f"{where}: {p}: no such folder or file")
    listed = {o["path"]: o for o in manifest.get("outputs", []) if isinstance(o, dict) and "path" in o}
    if listed:  # the manifest says which shards make the data: a missing or stray one is not trained on quietly
        found = {f.name for f in files}
        missing = sorted(set(listed) - found)
        stray = sorted(found - set(listed))
        if missing:
            raise InputError(f"{where}: {len(missing)} of the {len(listed)} shards {p / 'manifest.json'} lists are missing "
                             f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); copy them or encode again")
        if stray:
            raise InputError(f"{where}: {p} holds .parquet files {p / 'manifest.json'} does not list "
                             f"({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''}); move them out or encode again")
    units = []
    for i, f in enumerate(files):
        try:
            pf = pq.ParquetFile(f)
        except Exception as e:
            raise InputError(f"{f}: not a readable Parquet file ({e})") from None
        want = listed.get(f.name, {}).get("rows")
        if want is not None and pf.metadata.num_rows != want:
            raise InputError(f"{f}: {pf.metadata.num_rows:,} rows where manifest.json lists {want:,}: "
                             "not the shard that was encoded (copied partly, or replaced); encode again")
        names = pf.schema_arrow.names
        if "tokens" not in names or "id" not in names:
            raise ConfigError(f"{where}: {f} has no tokens/id columns (has: {', '.join(names)}); "
                              "is it a text shard? encode it with `r1data tokenize encode`")
        units.extend((i, rg) for rg in range(pf.num_row_groups))
    tok = manifest.get("tokenizer", {})
    return TokenShards(files=files, units=units, vocab_size=tok.get("vocab_size"), eos_id=tok.get("eos_id"),
                       manifest=manifest)


def doc_buckets(ids: list[str]) -> np.ndarray:
    """A stable hash bucket in [0, HASH_BUCKETS) per document id (crc32: the same on every machine)."""
    return np.fromiter((zlib.crc32(i.encode("utf-8")) % HASH_BUCKETS for i in ids), dtype=np.int64, count=len(ids))


class PackedStream:
    """An endless (or, with ``repeat=False``, one-epoch) stream of tokens from one split of ``shards``.

    ``read(n)`` returns the next ``n`` tokens, ``skip(n)`` passes over them; ``state_dict()`` /
    ``load_state_dict()`` save and restore the exact position.
    """

    def __init__(self, shards: TokenShards, split: str, eval_fraction: float, *, shuffle: bool, seed: int,
                 repeat: bool = True, vocab_size: int | None = None):
        assert split in ("train", "eval", "all")
        self.shards, self.split, self.eval_fraction = shards, split, eval_fraction
        self.shuffle, self.seed, self.repeat, self.vocab_size = shuffle, seed, repeat, vocab_size
        self.epoch = self.unit = self.offset = 0
        self._cache_key = None
        self._tokens = np.empty(0, dtype=np.int32)
        self._files: dict[int, pq.ParquetFile] = {}
        self.tokens_read = 0  # tokens of documents loaded so far (for bits per byte)
        self.bytes_read = 0
        self._empty_units_in_a_row = 0

    # -- position -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "unit": self.unit, "offset": self.offset, "fingerprint": self.shards.fingerprint(),
                "split": self.split, "eval_fraction": self.eval_fraction, "seed": self.seed, "shuffle": self.shuffle}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for key in ("fingerprint", "split", "eval_fraction", "seed", "shuffle"):
            if state.get(key) != mine[key]:
                raise ConfigError(f"checkpoint data position was saved for other data ({key}: {state.get(key)!r} "
                                  f"!= {mine[key]!r}); resume with the same data settings or start a new out_dir")
        self.epoch, self.unit, self.offset = int(state["epoch"]), int(state["unit"]), int(state["offset"])

    # -- reading --------------------------------------------------------------------------------------
    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.shards.units)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def _load(self) -> np.ndarray:
        key = (self.epoch, self.unit)
        if self._cache_key == key:
            return self._tokens
        file_idx, rg = self.shards.units[int(self._order(self.epoch)[self.unit])]
        pf = self._files.get(file_idx)
        if pf is None:
            pf = self._files[file_idx] = pq.ParquetFile(self.shards.files[file_idx])
        cols = ["id", "tokens"] + (["n_bytes"] if "n_bytes" in pf.schema_arrow.names else [])
        table = pf.read_row_group(rg, columns=cols)
        lists = table.column("tokens").combine_chunks()
        offsets = lists.offsets.to_numpy().astype(np.int64)
        values = lists.values.to_numpy(zero_copy_only=False)
        if self.vocab_size is not None and len(values) and (values.max() >= self.vocab_size or values.min() < 0):
            bad = int(values.max()) if values.max() >= self.vocab_size else int(values.min())
            raise InputError(f"{self.shards.files[file_idx]}: row group {rg} holds token id {bad}, outside the model's "
                             f"vocabulary of {self.vocab_size}; set model.vocab_size or re-encode")
        keep = np.arange(len(offsets) - 1)
        if self.split != "all" and self.eval_fraction > 0:
            held_out = doc_buckets(table.column("id").to_pylist()) < round(self.eval_fraction * HASH_BUCKETS)
            keep = keep[held_out] if self.split == "eval" else keep[~held_out]
        if self.shuffle and len(keep) > 1:
            keep = keep[np.random.default_rng([self.seed, self.epoch, file_idx, rg]).permutation(len(keep))]
        starts, lengths = offsets[keep], offsets[keep + 1] - offsets[keep]
        total = int(lengths.sum())
        # Gather the kept documents' token ranges in their (shuffled) order without a Python loop.
        idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(total)
        self._tokens = values[idx]
        self._cache_key = key
        self.tokens_read += total
        if "n_bytes" in cols:
            self.bytes_read += int(table.column("n_bytes").to_numpy()[keep].sum())
        return self._tokens

    def _advance(self, n: int, out: np.ndarray | None) -> None:
        got = 0
        while got < n:
            toks = self._load()
            if self.offset >= len(toks):  # move on lazily, so a read that ends a unit never needs the next one
                self._next_unit(empty=len(toks) == 0)
                continue
            take = min(n - got, len(toks) - self.offset)
            if out is not None:
                out[got:got + take] = toks[self.offset:self.offset + take]
            got += take
            self.offset += take
            self._empty_units_in_a_row = 0

    def _next_unit(self, empty: bool) -> None:
        self.offset = 0
        self.unit += 1
        if empty:
            self._empty_units_in_a_row += 1
            if self._empty_units_in_a_row > len(self.shards.units):
                raise InputError(f"the {self.split} split of {self.shards.files[0].parent} holds no tokens "
                                 f"(eval_fraction {self.eval_fraction})")
        if self.unit >= len(self.shards.units):
            if not self.repeat:
                raise EOFError
            self.unit = 0
            self.epoch += 1

    def read(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int32)
        self._advance(n, out)
        return out

    def skip(self, n: int) -> None:
        self._advance(n, None)


class BatchLoader:
    """Micro-batches of ``(inputs, targets)`` (batch_size, seq_len) int64 tensors for one rank."""

    def __init__(self, stream: PackedStream, batch_size: int, seq_len: int, rank: int = 0, world_size: int = 1):
        self.stream, self.batch_size, self.seq_len = stream, batch_size, seq_len
        self.rank, self.world_size = rank, world_size

    def next_numpy(self) -> np.ndarray:
        """The next global micro-batch's slice for this rank: (batch_size, seq_len + 1) int32."""
        window = self.batch_size * (self.seq_len + 1)
        self.stream.skip(self.rank * window)
        mine = self.stream.read(window)
        self.stream.skip((self.world_size - 1 - self.rank) * window)
        return mine.reshape(self.batch_size, self.seq_len + 1)

    def next(self, device=None):
        import torch

        arr = torch.from_numpy(self.next_numpy().astype(np.int64))
        if device is not None and torch.device(device).type == "cuda":
            arr = arr.pin_memory().to(device, non_blocking=True)
        return arr[:, :-1], arr[:, 1:]
