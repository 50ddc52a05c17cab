"""docs/architecture.rst matches the code: the files it names exist, and its newcomer's path
(the traced ``GradientEstimator(...).run(...).result()`` call) states the number of
functions and modules the call visits and names only modules and functions it visits."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.rst"
PACKAGE = ROOT / "src" / "qprim_grad"


def _trace_module():
    spec = importlib.util.spec_from_file_location(
        "trace_bench", ROOT / "benchmarks" / "trace_bench.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def visited() -> list[tuple[str, str]]:
    return _trace_module().traced_call()


def _path_block(text: str) -> str:
    """The code block of the section "A newcomer's path"."""
    section = text[text.index("A newcomer's path\n") : text.index("Extending the package\n")]
    return section[section.index(".. code-block:: text") :]


def test_every_file_the_page_names_exists():
    text = PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"``([\w/]+\.py)``", text))
    named |= {f"{path}.py" for path in re.findall(r"``([a-z_]+/[\w/]+)\.py``", text)}
    assert named, "the check found no file names"
    missing = sorted(
        name
        for name in named
        if not (PACKAGE / name).exists()
        and not (ROOT / name).exists()
        and not list(PACKAGE.rglob(name))
    )
    assert not missing, f"docs/architecture.rst names files that do not exist: {missing}"


def test_the_traced_call_counts_are_the_measured_ones(visited):
    text = PAGE.read_text(encoding="utf-8")
    stated = re.search(r"visits (\d+) functions in (\d+) modules", text)
    assert stated, "the page states no count for the traced call"
    modules = {module for module, _ in visited}
    assert (int(stated.group(1)), int(stated.group(2))) == (len(visited), len(modules)), (
        f"the traced call visits {len(visited)} functions in {len(modules)} modules; "
        "update docs/architecture.rst (python benchmarks/trace_bench.py --list)"
    )


def test_the_path_names_only_what_the_call_visits(visited):
    block = _path_block(PAGE.read_text(encoding="utf-8"))
    modules = {module for module, _ in visited}
    names = {module.rsplit("/", 1)[-1] for module in modules}
    for _, qualname in visited:
        parts = qualname.split(".")
        names.update(parts)
        names.add(qualname)
    outside = {"StatevectorEstimator.run", "result"}  # the inner primitive; GradientJob's
    tokens = re.findall(r"[A-Za-z_][\w]*(?:[./][A-Za-z_]\w*)*", block)
    identifiers = [t for t in tokens if "_" in t or "." in t or "/" in t or t[0].isupper()]
    unknown = sorted(
        {
            token
            for token in identifiers
            if token not in modules
            and token not in names
            and token not in outside
            and not ("." in token and all(part in names for part in token.split(".")))
            and token != "code-block"
        }
    )
    assert not unknown, f"the newcomer's path names what the call does not visit: {unknown}"


def test_the_path_names_every_module_the_call_visits(visited):
    block = _path_block(PAGE.read_text(encoding="utf-8"))
    modules = {module for module, _ in visited}
    missing = sorted(
        m for m in modules if not re.search(rf"(?<![\w/]){re.escape(m)}(?![\w/])", block)
    )
    assert not missing, f"the newcomer's path leaves out modules the call visits: {missing}"


def _modules_by_name() -> dict[str, list[str]]:
    """Module basename (and package-relative path) -> the dotted modules of that name."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        dotted = ".".join(relative.parts).removesuffix(".__init__")
        inside = path.relative_to(PACKAGE).with_suffix("").as_posix().removesuffix("/__init__")
        for key in {path.stem, inside, relative.parent.name if path.stem == "__init__" else ""}:
            if key:
                found.setdefault(key, []).append(dotted)
    return found


#: dotted names on the page that are qiskit's, not the package's
_NOT_OURS = {"circuit.parameters"}


def test_every_module_attribute_the_page_names_exists():
    """``phases.coerce_pubs``, ``circuit/chain_rule.affine_jacobian``,
    ``GradientPrimitive._submit``: the module (or class) part names one of the package's, and
    the rest is an attribute of it."""
    import importlib

    import qprim_grad

    text = PAGE.read_text(encoding="utf-8")
    modules = _modules_by_name()
    checked, missing = 0, []
    for name in sorted(set(re.findall(r"``([\w/]+(?:\.\w+)+)``", text))):
        if name.endswith(".py") or name.startswith("qprim_grad.") or name in _NOT_OURS:
            continue  # files (checked above); dotted names (test_docs_names.py)
        head, *rest = name.split(".")
        if head in modules:
            owners = [importlib.import_module(m) for m in modules[head]]
        elif hasattr(qprim_grad, head) or head in {"GradientPrimitive", "BaseFace", "Face"}:
            owners = [
                getattr(importlib.import_module(m), head)
                for m in (
                    "qprim_grad",
                    "qprim_grad.pipeline.primitive",
                    "qprim_grad.pipeline.phases",
                )
                if hasattr(importlib.import_module(m), head)
            ]
        else:
            continue
        checked += 1
        if not any(_has_path(owner, rest) for owner in owners):
            missing.append(name)
    assert checked > 10, "the check found too few names"
    assert not missing, f"docs/architecture.rst names what the code does not have: {missing}"


def _has_path(owner: object, attributes: list[str]) -> bool:
    for attribute in attributes:
        if not hasattr(owner, attribute):
            return False
        owner = getattr(owner, attribute)
    return True


def test_the_page_lists_every_question_a_face_answers():
    import inspect

    from qprim_grad.pipeline.phases import Face

    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    questions = [
        name
        for name, member in vars(Face).items()
        if inspect.isfunction(member) and not name.startswith("_")
    ]
    numbers = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    sentence = text[text.index("A face answers") :][:600]
    assert sentence.startswith(f"A face answers {numbers[len(questions)]} questions"), sentence
    missing = [name for name in questions if f"``{name}``" not in sentence]
    assert not missing, f"docs/architecture.rst leaves out what a face answers: {missing}"
