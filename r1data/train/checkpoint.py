"""Checkpoints that resume a run on the exact next batch, written so a kill never leaves a half one.

Layout: ``OUT_DIR/checkpoints/step-00000100/`` holding ``model.pt`` (weights and buffers, e.g. the
MoE expert biases), ``optimizer.pt`` (AdamW moments and step counts), ``scheduler.pt``,
``rng-rank{R}.pt`` (Python, NumPy, torch CPU and CUDA generator states of each rank) and
``trainer.json`` (step, tokens seen, data position, config hash). Everything is written into a
hidden ``.step-00000100.tmp`` folder that is renamed into place once complete (a rename is atomic),
so ``latest_checkpoint`` only ever sees whole checkpoints.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

STEP_DIR = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and (p / "trainer.json").is_file()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(out_dir: Path) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save(obj, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _full_state(model, optimizer):
    """Unsharded model and optimizer state of an FSDP2 model, gathered on rank 0 (a collective: every rank calls it).
    The optimizer state is keyed by parameter name rather than index."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_checkpoint(out_dir: Path, step: int, *, model, optimizer, scheduler, trainer_state: dict,
                    rank: int = 0, world_size: int = 1, barrier=None, keep: int = 2,
                    full_state: bool = False) -> Path | None:
    """Write checkpoint ``step`` (every rank calls this; rank 0 writes the shared state). Returns its path on rank 0.

    ``barrier`` is a callable that synchronises ranks (None in a single process). Older checkpoints
    beyond the newest ``keep`` are removed after the new one is in place.
    """
    root = checkpoint_dir(out_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f".step-{step:08d}.tmp"
    if rank == 0:
        if tmp.exists():
            shutil.rmtree(tmp)  # left by a run killed while writing
        tmp.mkdir(parents=True)
    if barrier:
        barrier()
    _save(rng_state(), tmp / f"rng-rank{rank}.pt")
    model_state, optim_state = _full_state(model, optimizer) if full_state else (None, None)
    if rank == 0:
        _save(model_state if full_state else model.state_dict(), tmp / "model.pt")
        _save(optim_state if full_state else optimizer.state_dict(), tmp / "optimizer.pt")
        _save(scheduler.state_dict(), tmp / "scheduler.pt")
        state = {**trainer_state, "step": step, "world_size": world_size}
        with open(tmp / "trainer.json", "w") as f:
            json.dump(state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
    if barrier:
        barrier()
    if rank != 0:
        return None
    _fsync_dir(tmp)
    if final.exists():  # the same step saved again (e.g. the end of a resumed run): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _param_names(model, optimizer) -> list[str]:
    """Qualified names of the optimizer's parameters in its own order: the order a plain
    ``optimizer.state_dict()`` numbers them in (FSDP2 and in-place ``compile`` keep the names)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def _keyed_by_name(optim_state: dict) -> bool:
    return any(isinstance(k, str) for g in optim_state["param_groups"] for k in g["params"][:1])


def optim_state_by_name(optim_state: dict, names: list[str]) -> dict:
    """A plain (index-keyed) AdamW state dict re-keyed by parameter name, as FSDP2 checkpoints hold it."""
    key = dict(enumerate(names))
    return {"state": {key[i]: v for i, v in optim_state["state"].items()},
            "param_groups": [{**g, "params": [key[i] for i in g["params"]]} for g in optim_state["param_groups"]]}


def optim_state_by_index(optim_state: dict, names: list[str]) -> dict:
    """The inverse of ``optim_state_by_name`` for the current optimizer's parameter order."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for g in optim_state["param_groups"] for n in g["params"] if n not in index]
    if missing:
        raise ValueError(f"optimizer.pt names parameters this model does not have: {missing[:3]}")
    return {"state": {index[n]: v for n, v in optim_state["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in optim_state["param_groups"]]}


def load_checkpoint(path: Path, *, model, optimizer, scheduler, rank: int = 0, map_location="cpu",
                    full_state: bool = False) -> dict:
    """Restore model, optimizer, scheduler and this rank's RNG states; return ``trainer.json``.

    ``full_state``: the model is FSDP2-sharded and the files hold unsharded state (``_full_state``);
    every rank reads them and keeps its own shard. Either kind of run reads either kind of checkpoint:
    ``model.pt`` is the same unsharded state dict, and ``optimizer.pt`` (keyed by index after a DDP or
    single-process run, by parameter name after FSDP2) is re-keyed to what this run's optimizer loads."""
    path = Path(path)
    state = json.loads((path / "trainer.json").read_text())
    names = _param_names(model, optimizer)
    if full_state:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        optim_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        if not _keyed_by_name(optim_state):
            optim_state = optim_state_by_name(optim_state, names)
        set_state_dict(model, optimizer,
                       model_state_dict=torch.load(path / "model.pt", map_location="cpu", weights_only=True),
                       optim_state_dict=optim_state, options=StateDictOptions(full_state_dict=True))
    else:
        model.load_state_dict(torch.load(path / "model.pt", map_location=map_location, weights_only=True))
        optim_state = torch.load(path / "optimizer.pt", map_location=map_location, weights_only=True)
        if _keyed_by_name(optim_state):
            optim_state = optim_state_by_index(optim_state, names)
        optimizer.load_state_dict(optim_state)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=False))
    rng_file = path / f"rng-rank{rank}.pt"
    if rng_file.is_file():  # absent when resuming on more ranks than saved: the data order does not depend on it
        set_rng_state(torch.load(rng_file, map_location="cpu", weights_only=False))
    return state
