"""``r1data head`` and ``r1data show``: read documents back, and see why one was dropped."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from r1data_cli.output import fail, user_errors

# shown above the text, in this order, when present; other columns follow
FIRST_FIELDS = ("id", "stage", "reason", "duplicate_of", "source", "url", "path", "date", "lang", "lang_score")
HIDDEN_FIELDS = ("text", "meta")


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _print_doc(con, row: dict, *, chars: int, title: str | None = None, extra: list[tuple[str, str]] = ()) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    names = [n for n in FIRST_FIELDS if n in row] + [n for n in row if n not in FIRST_FIELDS and n not in HIDDEN_FIELDS]
    for n in names:
        v = row.get(n)
        if v is None or n == "id":
            continue
        style = "red" if n in ("stage", "reason") else None
        fields.add_row(n, Text(_value(v), style=style or ""))
    for k, v in extra:
        fields.add_row(k, Text(v))
    if row.get("meta"):
        fields.add_row("meta", Text(row["meta"] if len(row["meta"]) < 300 else row["meta"][:297] + "...", style="dim"))
    text = row.get("text") or ""
    shown = text if chars <= 0 or len(text) <= chars else text[:chars] + f" … [{len(text) - chars:,} more characters]"
    body = Table.grid()
    body.add_row(fields)
    body.add_row(Text(f"text ({len(text.encode()):,} bytes)", style="bold"))
    body.add_row(Text(shown))
    con.print(Panel(body, title=title or str(row.get("id") or "(no id column)"), title_align="left"))


def head(
    target: Annotated[str, typer.Argument(help="An output directory (out/web) or Parquet files / a quoted glob.", show_default=False)],
    n: Annotated[int, typer.Option("-n", "--rows", min=1, help="How many documents.")] = 5,
    where: Annotated[
        Optional[str],
        typer.Option("--where", "-w", help="SQL condition, e.g. \"lang = 'de' AND lang_score > 0.9\" or \"text LIKE '%cookie%'\".", show_default=False),
    ] = None,
    rejected: Annotated[bool, typer.Option("--rejected", help="Read rejected/ instead of the kept shards.")] = False,
    chars: Annotated[int, typer.Option("--chars", help="Characters of text shown per document (0: all).")] = 600,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print full rows as JSON lines instead.")] = False,
) -> None:
    """Print the first documents of a run (or of rejected/), optionally those matching a SQL condition.

    Examples:

      r1data head out/web -n 3

      r1data head out/web --rejected --where "reason = 'gopher_short_doc'"

      r1data head out/web --where "lang_score < 0.6 AND url LIKE '%python.org%'" --jsonl
    """
    from r1data.stats.browse import head as read_head
    from r1data.stats.sources import resolve_target

    with user_errors():
        t = resolve_target(target)
        try:
            df = read_head(t, n=n, where=where, rejected=rejected)
        finally:
            for e in t.errors:
                typer.echo(f"warning: skipped {e.path}: {e.error}", err=True)
    if jsonl:
        for row in df.iter_rows(named=True):
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    from rich.console import Console

    con = Console(width=None if sys.stdout.isatty() else 120)
    if not df.height:
        con.print("no matching documents" if where else "no documents")
        return
    for row in df.iter_rows(named=True):
        _print_doc(con, row, chars=chars)
    con.print(f"[dim]{df.height} document(s){' matching ' + where if where else ''}[/]", highlight=False)


def show(
    doc_id: Annotated[str, typer.Argument(metavar="ID", help="The document id (or a unique prefix of it).", show_default=False)],
    out_dir: Annotated[
        Optional[list[str]], typer.Argument(help="Output directories to search (default: every run under ./out).", show_default=False)
    ] = None,
    chars: Annotated[int, typer.Option("--chars", help="Characters of text shown (0: all).")] = 2000,
    json_: Annotated[bool, typer.Option("--json", help="Print the document and where it was found as JSON.")] = False,
) -> None:
    """Show one document: kept or rejected, by which stage and why, its scores and its duplicate cluster.

    Examples:

      r1data show '<urn:uuid:0c4e0d5a-...>' out/web

      r1data show urn:uuid:0c4e
    """
    from r1data.stats.browse import find_document

    errors: list = []
    with user_errors():
        found, exact = find_document(doc_id, out_dir, errors=errors)
    for e in errors:
        typer.echo(f"warning: skipped {e.path}: {e.error}", err=True)
    if not found:
        where = ", ".join(out_dir) if out_dir else "the runs under ./out"
        unread = f"; {len(errors)} file(s) could not be read (above), it may be in one of them" if errors else ""
        raise fail(f"no document with id {doc_id!r} (or starting with it) in {where}{unread}", 1)
    if not exact and len(found) > 1:
        typer.echo(f"{len(found)}{'+' if len(found) >= 10 else ''} documents have an id starting with {doc_id!r}; give more of it:", err=True)
        for d in found:
            typer.echo(f"  {d.row['id']}  ({'rejected' if d.rejected else 'kept'}, {d.path})", err=True)
        raise typer.Exit(1)
    if json_:
        typer.echo(json.dumps([_found_json(d) for d in found], indent=1, ensure_ascii=False, default=str))
        return
    from rich.console import Console

    con = Console(width=None if sys.stdout.isatty() else 120)
    for d in found:
        extra = [("found in", d.path)]
        if d.rejected:
            verdict = f"[red]rejected[/] by stage [bold]{d.row.get('stage')}[/], reason [bold]{d.row.get('reason')}[/]"
        else:
            verdict = "[green]kept[/]"
        con.print(verdict)
        if d.passed_stages:
            extra.append(("passed", " → ".join(d.passed_stages)))
        if d.stage_config:
            cfg = ", ".join(f"{k}={json.dumps(v)}" for k, v in d.stage_config.items() if k != "stage")
            extra.append((f"{d.row.get('stage')} config", f"{d.stage_config.get('stage')}: {cfg}"))
        if d.kept_copy:
            state = "rejected too" if d.kept_copy["rejected"] else "kept"
            extra.append(("duplicate of", f"{d.kept_copy['id']} ({state}; {d.kept_copy.get('url') or ''} in {d.kept_copy['path']})"))
        elif d.row.get("duplicate_of"):
            extra.append(("duplicate of", f"{d.row['duplicate_of']} (not found in this run's files)"))
        if d.duplicates:
            extra.append(("duplicates", f"{d.duplicates:,} rejected document(s) name this one as duplicate_of"))
        _print_doc(con, d.row, chars=chars, extra=extra)


def _found_json(d) -> dict:
    return {
        "path": d.path,
        "status": "rejected" if d.rejected else "kept",
        "stage": d.row.get("stage"),
        "reason": d.row.get("reason"),
        "stage_config": d.stage_config,
        "passed_stages": d.passed_stages,
        "duplicate_of": d.kept_copy,
        "duplicates": d.duplicates,
        "document": d.row,
    }


def register(app: typer.Typer) -> None:
    app.command("head")(head)
    app.command("show")(show)
