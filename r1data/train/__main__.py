"""``python -m r1data.train CONFIG.yaml [--set key=value ...] [--resume auto|none|PATH] [--overwrite] [--dry-run]``
and ``python -m r1data.train plot RUN_DIR``.

The same as ``r1data train`` without the CLI's dependencies (typer, rich), for bare GPU images and
for ``torchrun --nproc-per-node N -m r1data.train CONFIG.yaml``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from r1data.errors import R1DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "plot":
            p = argparse.ArgumentParser(prog="python -m r1data.train plot")
            p.add_argument("run_dir")
            p.add_argument("--out", default=None)
            a = p.parse_args(argv[1:])
            from r1data.train.plot import plot_run

            for path in plot_run(a.run_dir, a.out):
                print(path)
            return 0
        p = argparse.ArgumentParser(prog="python -m r1data.train", description="Train a MoE on r1data token shards.")
        p.add_argument("config")
        p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--resume", default="none", help="auto (latest checkpoint in out_dir), none, or a checkpoint folder")
        p.add_argument("--overwrite", action="store_true", help="start again in an out_dir that holds a run")
        p.add_argument("--dry-run", action="store_true", help="print the resolved config and model size, then exit")
        a = p.parse_args(argv)
        from r1data.train.config import describe, load_train_config

        cfg = load_train_config(a.config, a.sets)
        if a.dry_run:
            from r1data.train.loop import dry_run

            print(describe(cfg), end="")
            print(dry_run(cfg))
            return 0
        from r1data.train.loop import train

        train(cfg, resume=a.resume, overwrite=a.overwrite)
        return 0
    except R1DataError as e:
        from r1data.train.loop import main_error

        return main_error(e)


if __name__ == "__main__":
    sys.exit(main())
