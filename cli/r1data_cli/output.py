"""Error mapping and small output helpers shared by commands."""

from __future__ import annotations

import sys

import typer


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print ``error: message`` (one line per problem) on stderr and return an Exit to raise."""
    for line in str(message).splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(code)


def run_app(app) -> int:
    """Run the app; errors r1data raises are printed as one line each (see ``user_errors``)."""
    try:
        with user_errors():
            rc = app(standalone_mode=False)  # click returns the code of a typer.Exit in this mode
        return rc if isinstance(rc, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume", err=True)
        return 130
    except Exception as e:
        if isinstance(e, _click_exceptions()):  # usage errors carry their own formatting
            e.show()
            return e.exit_code
        if debug_enabled():
            raise
        typer.echo(f"error: {describe_exception(e)}", err=True)
        if not isinstance(e, OSError):
            typer.echo("error: this is a bug in r1data; rerun with --debug (or R1DATA_DEBUG=1) for the traceback", err=True)
        return 1


def debug_enabled() -> bool:
    """``--debug`` on the command line (``main`` turns it into ``R1DATA_DEBUG=1``): show tracebacks."""
    import os

    return os.environ.get("R1DATA_DEBUG", "") not in ("", "0")


def describe_exception(e: BaseException) -> str:
    """One line for an unexpected failure: the file and the system's reason for OS errors."""
    import errno

    if isinstance(e, OSError):
        where = e.filename if e.filename is not None else ""
        reason = e.strerror or str(e)
        hint = ""
        if e.errno == errno.ENOSPC:
            hint = "; free some space and rerun the same command to resume"
        elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "; choose another --output or fix the permissions"
        return f"{where}: {reason}{hint}" if where else f"{reason}{hint}"
    if isinstance(e, RecursionError):
        return "input nested too deeply to process (RecursionError)"
    if isinstance(e, MemoryError):
        return "out of memory"
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:500]}" if msg else type(e).__name__


def _click_exceptions() -> tuple[type, ...]:
    """click's usage-error class, and typer's vendored copy of it (typer >= 0.26 ships ``typer._click``)."""
    import click

    classes: tuple[type, ...] = (click.ClickException,)
    try:
        from typer._click.exceptions import ClickException as VendoredClickException

        classes += (VendoredClickException,)
    except ImportError:
        pass
    return classes


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


class user_errors:
    """``with user_errors():`` turns r1data's errors into ``error: ...`` lines and their exit code."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        from r1data.errors import R1DataError

        if isinstance(exc, R1DataError):
            for line in str(exc).splitlines() or [type(exc).__name__]:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        return False
