"""``r1data stats``: what a run produced, how the filters cut it, and how two runs differ."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from r1data_cli.output import fail, user_errors


class By(str, enum.Enum):
    source = "source"
    lang = "lang"
    domain = "domain"
    stage = "stage"


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _console():
    from rich.console import Console

    # a pipe or a file gets plain text wide enough for the funnel table
    return Console(width=None if sys.stdout.isatty() else 132, soft_wrap=False)


def _warn_unreadable(stats: dict) -> None:
    for e in stats["files"]["errors"]:
        typer.echo(f"warning: skipped {e['path']}: {e['error']}", err=True)


def stats(
    targets: Annotated[
        Optional[list[str]],
        typer.Argument(help="An output directory (out/web), Parquet files, or a quoted glob ('out/*/shards/*.parquet').", show_default=False),
    ] = None,
    by: Annotated[
        Optional[By], typer.Option("--by", help="Break kept documents down by this column (stage: the funnel with every reason).", show_default=False)
    ] = None,
    format_: Annotated[Format, typer.Option("--format", "-f", help="table (terminal), json (full, stable schema) or csv (one breakdown).")] = Format.table,
    tokenizer: Annotated[
        Optional[Path],
        typer.Option("--tokenizer", help="A tokenizers JSON file (tokenizer.json) for exact token counts; default: bytes / 4.", show_default=False),
    ] = None,
    compare: Annotated[
        Optional[tuple[str, str]],
        typer.Option("--compare", metavar="A B", help="Compare two runs (output directories): counts, funnel, score distributions.", show_default=False),
    ] = None,
    report: Annotated[
        Optional[Path], typer.Option("--report", help="Also write a self-contained HTML report with plots to this file.", show_default=False)
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the URL-domain and breakdown tables.")] = 10,
) -> None:
    """Documents, bytes, tokens, breakdowns, length and score distributions, the filter funnel and dedup rates.

    Examples:

      r1data stats out/web

      r1data stats out/web --by lang --format csv > by_lang.csv

      r1data stats 'out/*/shards/*.parquet' --format json

      r1data stats --compare out/web-t0.6 out/web-t0.7 --report diff.html
    """
    if compare is not None and targets:
        raise fail("give either an output directory / files, or --compare A B, not both")
    if compare is None and not targets:
        raise fail("give an output directory (e.g. out/web), Parquet files, or --compare A B")
    with user_errors():
        if report is not None:
            from r1data.stats.report import check_available

            check_available()  # before minutes of scanning, not after
        if compare is not None:
            _run_compare(compare, format_, tokenizer, report, top)
            return
        from r1data.stats.profile import collect_stats

        s = collect_stats(targets, tokenizer=str(tokenizer) if tokenizer else None, top_hosts=max(top, 20))
        _warn_unreadable(s)
        if format_ is Format.json:
            typer.echo(json.dumps(s, indent=1, ensure_ascii=False))
        elif format_ is Format.csv:
            from r1data.stats.render import stats_csv

            sys.stdout.write(stats_csv(s, by.value if by else None))
        else:
            from r1data.stats.render import print_stats

            print_stats(s, _console(), by=by.value if by else None, top=top)
        if report is not None:
            from r1data.stats.report import write_report

            path = write_report(s, report)
            typer.echo(f"report: {path}", err=format_ is not Format.table)


def _run_compare(pair: tuple[str, str], format_: Format, tokenizer: Path | None, report: Path | None, top: int) -> None:
    from r1data.stats.compare import compare_stats

    c = compare_stats(pair[0], pair[1], tokenizer=str(tokenizer) if tokenizer else None)
    for side in ("a", "b"):
        _warn_unreadable(c[side])
    if format_ is Format.json:
        typer.echo(json.dumps(c, indent=1, ensure_ascii=False))
    elif format_ is Format.csv:
        from r1data.stats.compare import compare_csv

        sys.stdout.write(compare_csv(c))
    else:
        from r1data.stats.compare import print_compare

        print_compare(c, _console(), top=top)
    if report is not None:
        from r1data.stats.report import write_compare_report

        path = write_compare_report(c, report)
        typer.echo(f"report: {path}", err=format_ is not Format.table)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
