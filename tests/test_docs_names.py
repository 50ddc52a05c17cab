"""Every ``qprim_grad`` name the documentation mentions exists.

Each page of ``docs/*.rst`` (new pages included) and README.md is scanned for dotted names
(``qprim_grad.optimizers.SPSA``, ``:class:`~qprim_grad.QGTEstimator```) and for import
statements (``from qprim_grad.plotting import plot_gradient, plot_qgt``), in the text and in
code blocks alike; each must resolve to a module or an attribute of the installed package.
Entry-point group names (``qprim_grad.gradient_methods``) are checked against pyproject.toml.
The code blocks themselves run in ``test_docs_examples.py``. Pages, CHANGELOG.md and the code
(``src``, ``tests``, ``benchmarks``, ``examples``) describe behaviour: no tracker numbers,
branch names or history phrases.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.rst")) + [ROOT / "README.md"]

_DOTTED = re.compile(r"(?<![\w./-])qprim_grad(?:\.[A-Za-z_]\w*)+")
_FROM_IMPORT = re.compile(
    r"from\s+(qprim_grad(?:\.\w+)*)\s+import\s+(\([^)]*\)|[\w ,]+(?:\\\n[\w ,]+)*)"
)

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def entry_point_groups() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return set(project.get("entry-points", {}))


def resolves(dotted: str) -> bool:
    """Whether ``a.b.c`` is a module, or an attribute path from the longest importable
    module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def dotted_names(text: str) -> set[str]:
    """The ``qprim_grad.…`` names of a text (a trailing file suffix such as ``.py`` or
    ``.rst`` is a file, not a name)."""
    names = set()
    for match in _DOTTED.finditer(text):
        name = match.group(0)
        if text[match.end() : match.end() + 1] == "/" or name.endswith((".py", ".rst")):
            continue  # a path (``qprim_grad/methods``, ``qprim_grad.egg-info``)
        names.add(name)
    return names


def imported_names(text: str) -> set[str]:
    """``module.name`` for each name of each ``from qprim_grad… import …`` of a text."""
    names = set()
    for module, imported in _FROM_IMPORT.findall(text):
        for item in re.split(r"[,\s()\\]+", imported):
            if item and item != "as" and re.fullmatch(r"[A-Za-z_]\w*", item):
                names.add(f"{module}.{item}")
    return names


def _without_aliases(text: str) -> str:
    """Drop ``as alias`` from import lines, so that the alias is not read as a name."""
    return re.sub(r"\s+as\s+\w+", "", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_qprim_grad_name_on_the_page_exists(page):
    text = _without_aliases(page.read_text(encoding="utf-8"))
    groups = entry_point_groups()
    missing = sorted(
        name
        for name in dotted_names(text) | imported_names(text)
        if name not in groups and not resolves(name)
    )
    assert not missing, f"{page.name} names what qprim_grad does not have: {missing}"


def test_the_check_finds_names_and_misses():
    text = (
        "Use :class:`~qprim_grad.optimizers.SPSA` or ``qprim_grad.NoSuchThing``.\n"
        "from qprim_grad.plotting import (plot_gradient,\n    plot_qgt)\n"
        "from qprim_grad import GradientEstimator as GE, Missing\n"
        "See src/qprim_grad/methods and ``qprim_grad.gradient_methods``."
    )
    text = _without_aliases(text)
    assert dotted_names(text) == {
        "qprim_grad.optimizers.SPSA",
        "qprim_grad.NoSuchThing",
        "qprim_grad.plotting",
        "qprim_grad.gradient_methods",
    }
    assert imported_names(text) == {
        "qprim_grad.plotting.plot_gradient",
        "qprim_grad.plotting.plot_qgt",
        "qprim_grad.GradientEstimator",
        "qprim_grad.Missing",
    }
    assert resolves("qprim_grad.optimizers.SPSA") and resolves("qprim_grad.methods.adjoint")
    assert not resolves("qprim_grad.NoSuchThing") and not resolves("qprim_grad.Missing")
    assert not resolves("qprim_grad.optimizers.SPSA.no_such_method")
    assert "qprim_grad.gradient_methods" in entry_point_groups()


_HISTORY = re.compile(
    r"\bissue #?\d+|\brv_[a-z]+|\bone house\b|\bfour rooms\b|\(#\d+\)|\breview\b", re.I
)
#: phrases that tell what the code was rather than what it does
_PAST = re.compile(
    r"\bissue #?\d+|\brv_[a-z]+|\bone house\b|\bfour rooms\b|\(#\d+\)|\bno longer\b"
    r"|\bused to\b|\bformerly\b|\bpreviously\b|\bfor compatibility\b"
    r"|\bold (?:import|module)\b|\bstay importable\b",
    re.I,
)


@pytest.mark.parametrize("page", PAGES + [ROOT / "CHANGELOG.md"], ids=lambda p: p.name)
def test_pages_speak_to_users_not_to_the_tracker(page):
    """No tracker numbers, branch names or development jargon on a page a user reads."""
    hits = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if _HISTORY.search(line)
    ]
    assert not hits, f"{page.name}: {hits}"


_CODE = sorted(
    path
    for folder in ("src", "tests", "benchmarks", "examples")
    for path in (ROOT / folder).rglob("*.py")
    if path.name != "test_docs_names.py"  # holds the pattern itself
)


def test_code_describes_behaviour_not_history():
    """No tracker numbers, branch names or development jargon in code, tests, benchmarks and
    examples either."""
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _CODE
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _PAST.search(line)
    ]
    assert not hits, hits


def _guides() -> list[str]:
    """Every page of docs/ except the landing page and getting started itself."""
    return sorted(
        p.stem for p in (ROOT / "docs").glob("*.rst") if p.stem not in {"index", "getting_started"}
    )


def test_getting_started_and_readme_list_every_guide():
    """A new page appears in getting started's "Next steps" and in the README's list."""
    text = (ROOT / "docs" / "getting_started.rst").read_text(encoding="utf-8")
    next_steps = text[text.index("Next steps\n----------") :]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme_pages = readme[readme.index("## Documentation") :]
    for guide in _guides():
        assert f":doc:`{guide}`" in next_steps or f"<{guide}.html>`_" in next_steps, guide
        assert f"(docs/{guide}.rst)" in readme_pages, guide
