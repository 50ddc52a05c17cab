"""Run the ``>>>`` examples in the docstrings of the package's modules."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import qprim_grad


def _modules() -> list[str]:
    names = ["qprim_grad"]
    for info in pkgutil.walk_packages(qprim_grad.__path__, "qprim_grad."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


MODULES = _modules()


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


def test_public_modules_have_examples():
    with_examples = []
    for name in MODULES:
        module = importlib.import_module(name)
        if any(t.examples for t in doctest.DocTestFinder().find(module)):
            with_examples.append(name)
    for name in ("qprim_grad", "qprim_grad.estimator", "qprim_grad.optimizers", "qprim_grad.rules"):
        assert name in with_examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "qprim_grad.plotting":
        pytest.importorskip("matplotlib")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # no deprecated API in examples
        for test in finder.find(module, name, globs=dict(vars(module))):
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"
