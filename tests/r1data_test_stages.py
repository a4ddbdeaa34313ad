"""Stages that exist for tests only, registered for the length of a test by ``registered()``.

Cluster tests put ``tests/`` on the PYTHONPATH of their jobs so that a worker can unpickle them.
"""

from __future__ import annotations

import contextlib

from datatrove.data import Document
from pydantic import Field

from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages import registry


class FailOnInputConfig(StageConfig):
    input_index: int = Field(..., ge=0, description="raise on the first live document read from this input file")


class FailOnInput(TaggerStage):
    """Test only: raise ValueError on a document of one input file, so that exactly one task fails."""

    name = "test_fail_on_input"
    Config = FailOnInputConfig
    example = """\
- stage: test_fail_on_input
  input_index: 1
"""

    def tag(self, doc: Document) -> str | None:
        if doc.metadata["input_index"] == self.config.input_index:
            raise ValueError(f"test_fail_on_input refuses {doc.id} (input {self.config.input_index})")
        return None


@contextlib.contextmanager
def registered():
    """``with registered():`` recipes may name the test stages; afterwards the registry is as before."""
    registry.register(FailOnInput)
    try:
        yield
    finally:
        registry._REGISTRY.pop(FailOnInput.name, None)
