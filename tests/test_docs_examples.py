"""Run every Python example of the documentation and of README.md.

Each page's ``.. code-block:: python`` blocks (also ``python3``, ``py``, ``pycon``) and the
``>>>`` lines of ``.. doctest::`` blocks run in order in one namespace per page, on local
primitives (Statevector, Aer, runtime local testing mode with fake backends), with
``DeprecationWarning`` as an error. A block that needs an IBM Quantum account says so with
``:class: hardware``: it is compiled, not run. Every page of ``docs/*.rst`` is included
(new pages too); ``docs/migration.rst`` is covered by ``test_docs_migration.py``.
"""

from __future__ import annotations

import doctest
import os
import re
import textwrap
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP = {"migration.rst"}

_DIRECTIVE = re.compile(
    r"^(\s*)\.\. (code-block|code|sourcecode):: (?:python3?|py|pycon)\s*$|^(\s*)\.\. doctest::"
)
#: the option that marks a block needing real hardware (an IBM Quantum account)
HARDWARE = re.compile(r"^\s*:class:.*\bhardware\b", re.M)


def rst_blocks(text: str) -> list[tuple[str, str]]:
    """``(kind, source)`` of the python code blocks of an rst text; ``kind`` is ``"code"``,
    ``"doctest"`` or ``"hardware"`` (compiled only)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            i += 1
            continue
        kind = "doctest" if match.group(3) is not None else "code"
        indent = len(match.group(1) if match.group(1) is not None else match.group(3))
        i += 1
        body = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
            i += 1
        # drop the directive's options (":caption: ..."), then dedent
        source = textwrap.dedent("\n".join(body)).strip("\n")
        if kind == "code" and HARDWARE.search(source.split("\n\n")[0]):
            kind = "hardware"
        source = "\n".join(
            line for line in source.splitlines() if not re.match(r"^:\w[\w-]*:", line)
        )
        blocks.append((kind, source.strip("\n")))
    return blocks


def markdown_blocks(text: str) -> list[tuple[str, str]]:
    """The ```` ```python ```` fenced blocks of a markdown text."""
    return [("code", m) for m in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)]


def run_blocks(name: str, blocks: list[tuple[str, str]], workdir: Path) -> None:
    namespace: dict = {"__name__": f"docs_{Path(name).stem}"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    cwd = os.getcwd()
    os.chdir(workdir)  # examples that write files (checkpoints) write them here
    try:
        with warnings.catch_warnings():
            # examples run without warnings: a deprecated API or a warning of the package in
            # an example fails here, before users copy it
            warnings.simplefilter("error")
            for number, (kind, source) in enumerate(blocks):
                label = f"{name}[block {number}]"
                if kind == "hardware":
                    compile(source, label, "exec")  # needs an account: checked, not run
                elif kind == "doctest" or source.lstrip().startswith(">>>"):
                    test = parser.get_doctest(source, namespace, label, name, 0)
                    result = runner.run(test, clear_globs=False)
                    assert result.failed == 0, f"doctest failures in {label}"
                else:
                    exec(compile(source, label, "exec"), namespace)
    finally:
        os.chdir(cwd)


PAGES = sorted(p for p in DOCS.glob("*.rst") if p.name not in SKIP)


@pytest.fixture(autouse=True)
def _agg_backend():
    try:
        import matplotlib
    except ImportError:
        yield
        return
    backend = matplotlib.get_backend()
    matplotlib.use("Agg")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    matplotlib.use(backend)


def test_pages_found():
    names = {p.name for p in PAGES}
    assert {"index.rst", "getting_started.rst", "session.rst", "choosing_a_method.rst"} <= names
    assert {"spsa_on_hardware.rst", "plugins.rst"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_docs_page_examples_run(page, tmp_path, capsys):
    blocks = rst_blocks(page.read_text(encoding="utf-8"))
    if page.name == "spsa_on_hardware.rst":
        pytest.importorskip("matplotlib")
    run_blocks(page.name, blocks, tmp_path)


def test_readme_example_runs(tmp_path, capsys):
    blocks = markdown_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md has no python example"
    run_blocks("README.md", blocks, tmp_path)


def test_block_extraction():
    text = textwrap.dedent(
        """
        Title
        =====

        .. code-block:: python
           :caption: example

           x = 1

           y = x + 1

        Some text.

        .. doctest::

           >>> y
           2
        """
    )
    assert rst_blocks(text) == [("code", "x = 1\n\ny = x + 1"), ("doctest", ">>> y\n2")]
    hardware = ".. code-block:: python3\n   :class: hardware\n\n   run_on_device()\n"
    assert rst_blocks(hardware) == [("hardware", "run_on_device()")]


#: languages a code block may declare; python blocks run (above), the others are shell
#: commands, configuration or plain text
LANGUAGES = {"python", "python3", "py", "pycon", "bash", "console", "text", "toml", "ini"}


@pytest.mark.parametrize("page", PAGES + [DOCS / "migration.rst"], ids=lambda p: p.stem)
def test_every_code_block_declares_a_known_language(page):
    """A python block under another name (``ipython``, ``python-console``) would silently
    escape the run above."""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(r"\s*\.\. (?:code-block|code|sourcecode)::\s*(\S*)", line)
        if match:
            assert match.group(1) in LANGUAGES, f"{page.name}:{number}: {line.strip()}"


PUBLIC_MODULES = [
    "qprim_grad",
    "qprim_grad.gradients",
    "qprim_grad.optimizers",
    "qprim_grad.methods",
    "qprim_grad.rules",
    "qprim_grad.plugins",
    "qprim_grad.plotting",
]


def test_api_reference_covers_public_names():
    """Every public module is in docs/api.rst; names autodoc cannot document by itself
    (constants without a docstring) have an explicit entry there."""
    import importlib
    import inspect

    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    for name in PUBLIC_MODULES:
        assert f".. automodule:: {name}\n" in api, name
        module = importlib.import_module(name)
        for public in module.__all__:
            obj = getattr(module, public)
            documented = (inspect.isclass(obj) or inspect.isroutine(obj)) and obj.__doc__
            # module data with a "#:" comment is documented by autodoc
            documented = documented or re.search(
                rf"^#:.*\n{re.escape(public)}\b", inspect.getsource(module), re.M
            )
            if not documented:
                assert re.search(rf"^\.\. py:\w+:: {re.escape(public)}$", api, re.M), (
                    f"{name}.{public} needs an entry in docs/api.rst"
                )


def test_one_finite_difference_step_range_everywhere():
    """The range ``SmallStepWarning`` recommends is the one docs/choosing_a_method.rst
    measures and README.md's method table gives."""
    from qiskit.circuit.library import real_amplitudes

    from qprim_grad import GradientEstimator, SmallStepWarning

    aer = pytest.importorskip("qiskit_aer.primitives")
    gradient = GradientEstimator(aer.EstimatorV2(), method="finite_diff")  # epsilon 1e-6
    job = gradient.run([(real_amplitudes(2, reps=1), "ZZ", [0.1] * 4)], precision=0.01)
    with pytest.warns(SmallStepWarning) as record:
        job.result()
    low, high = re.search(r"epsilon of about (\d\.\d+)-(\d\.\d+)", str(record[0].message)).groups()
    page = (DOCS / "choosing_a_method.rst").read_text(encoding="utf-8")
    assert f"``ε`` of ``{low}``–``{high}``" in page
    assert f"``ε`` between ``{low}`` and ``{high}``" in page
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`epsilon` of {low}–{high}" in readme
    assert f"about {low}-{high}" in SmallStepWarning.__doc__
