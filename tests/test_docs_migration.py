"""Run the Python examples of docs/migration.rst, in order, in one namespace."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

MIGRATION = Path(__file__).resolve().parents[1] / "docs" / "migration.rst"


def code_blocks(text: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives of an rst text."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if re.match(r"\s*\.\. code-block:: python\s*$", lines[i]):
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                body.append(lines[i])
                i += 1
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
        else:
            i += 1
    return blocks


@pytest.mark.filterwarnings("error::DeprecationWarning")  # as every docs page
def test_migration_examples_run(capsys):
    blocks = code_blocks(MIGRATION.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict = {"__name__": "migration_doc"}
    for number, block in enumerate(blocks):
        exec(compile(block, f"{MIGRATION.name}[block {number}]", "exec"), namespace)
