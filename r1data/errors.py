"""The small error hierarchy every r1data entry point maps to exit codes and one-line messages.

- ``ConfigError`` (exit 2): the recipe, an override or a model path is wrong. Raised before any work.
- ``InputError`` (exit 2): an input path is missing or matches nothing. Raised before any work.
- ``ShardError``: one input file is corrupt or unreadable. Never fatal: the reader records it,
  the rest of the run goes on, and the file is named in the summary and the manifest.
- ``FatalError`` (exit 1): the run cannot go on (e.g. a task failed); the message says how to resume.
"""

from __future__ import annotations


class R1DataError(Exception):
    """Base class; ``str(err)`` is the one line shown to the user."""

    exit_code = 1


class ConfigError(R1DataError):
    """A recipe or override is invalid. ``problems`` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InputError(R1DataError):
    """An input path does not exist or a pattern matches no file."""

    exit_code = 2


class ShardError(R1DataError):
    """One input file could not be (fully) read; carries the path."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class FatalError(R1DataError):
    """The run stopped; the message says what failed and how to resume."""

    exit_code = 1
