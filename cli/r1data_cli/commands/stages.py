"""``r1data stages [NAME]``: the registry, as users see it."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from r1data_cli.output import fail


def _type_name(annotation) -> str:
    s = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return s or str(annotation).replace("typing.", "")


def stages(
    name: Annotated[Optional[str], typer.Argument(help="A stage name for its parameters and an example.", show_default=False)] = None,
) -> None:
    """List the registered stages, or show one stage's parameters, defaults and a YAML example."""
    from rich.console import Console
    from rich.table import Table

    from r1data.dotted import suggest
    from r1data.stages.registry import all_stages

    registry = all_stages()
    con = Console()
    if name is None:
        table = Table("stage", "kind", "columns", "description")
        for n, cls in registry.items():
            table.add_row(f"{n}@{cls.version}", cls.kind, ", ".join(cls.columns), (cls.__doc__ or "").strip().splitlines()[0])
        con.print(table)
        con.print("`r1data stages NAME` shows a stage's parameters and a YAML example.")
        return
    if name not in registry:
        raise fail(f"unknown stage {name!r}{suggest(name, registry)} (see `r1data stages`)")
    cls = registry[name]
    con.print(f"[bold]{name}[/] (version {cls.version}, {cls.kind}) — {(cls.__doc__ or '').strip()}")
    if cls.knobs:
        from r1data.config.knobs import KNOBS

        con.print("command-line knobs: " + ", ".join(f"{KNOBS[k].flag} sets {v}" for k, v in cls.knobs.items()))
    if cls.columns:
        con.print("adds columns: " + ", ".join(f"{c} ({t})" for c, t in cls.columns.items()))
    table = Table("parameter", "type", "default", "description")
    for pname, field in cls.Config.model_fields.items():
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        table.add_row(pname, _type_name(field.annotation), default, field.description or "")
    con.print(table)
    if cls.example:
        con.print("[bold]example[/]")
        con.print(cls.example.rstrip(), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("stages")(stages)
