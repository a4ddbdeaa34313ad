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
        raise


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
