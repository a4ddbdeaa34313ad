"""The ``r1data`` command. Each command lives in its own module under ``commands/`` and registers itself.

Only typer and rich are imported here and at the top of command modules, so ``r1data --help``
stays instant; a command imports the library (and torch, kenlm, fasttext) when it runs.
"""

from __future__ import annotations

import importlib
import sys

import typer

# One line per command module; each defines ``register(app)``.
COMMAND_MODULES = [
    "r1data_cli.commands.run",
    "r1data_cli.commands.stages",
    "r1data_cli.commands.status",
    "r1data_cli.commands.models",
    "r1data_cli.commands.stats",
    "r1data_cli.commands.browse",
    "r1data_cli.commands.tokenize",
    "r1data_cli.commands.export",
    "r1data_cli.commands.train",
    "r1data_cli.commands.repro",
]

app = typer.Typer(
    name="r1data",
    help="Raw CommonCrawl, books and code -> LLM pre-training shards -> a small MoE trained on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"r1data {version('r1data')}")
        except PackageNotFoundError:
            typer.echo("r1data (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an unexpected error instead of one line."),
) -> None:
    """r1data: declarative data pipelines (local or Slurm) and a minimal MoE trainer."""


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    """Console-script entry point: maps r1data's errors to one line and an exit code."""
    import os

    from r1data_cli.output import run_app

    if "--debug" in sys.argv[1:]:  # accepted anywhere on the line, not only before the command
        os.environ["R1DATA_DEBUG"] = "1"
        sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a != "--debug"]

    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
