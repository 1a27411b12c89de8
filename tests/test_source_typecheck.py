"""The pyright filter with the real checker (basedpyright from PyPI), in batches."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from multiplt.source.records import Provenance, PythonFunction
from multiplt.source.typecheck import (
    CheckerMissingError,
    TypeChecker,
    TypecheckSettings,
)

PROVENANCE = Provenance(source="test", repository="owner/repo", path="module.py")
CHECKER = "basedpyright"

pytestmark = pytest.mark.skipif(
    shutil.which(CHECKER) is None, reason="basedpyright is not installed (pip install basedpyright)"
)


def function(name: str, body: str, signature: str = "(x: int) -> int") -> PythonFunction:
    code = f'def {name}{signature}:\n    """Doc."""\n' + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    return PythonFunction(name=name, code=code, docstring="Doc.", provenance=PROVENANCE, line=1)


GOOD = [
    function("typed", "return x * 2 + 1"),
    function("untyped", "return x", signature="(x)"),
    function("stdlib_import", "import math\nreturn math.floor(x / 2)"),
]
BAD = {
    "module_global": function("module_global", "return x + OFFSET"),
    "numpy": function("numpy", "import numpy\nreturn int(numpy.sum([x]))"),
    # yaml's stubs ship with pyright: only a warning by default, an error here.
    "yaml_stubs_only": function("yaml_stubs_only", "import yaml\nreturn len(yaml.dump(x))"),
    "type_error": function("type_error", 'return x + "a"'),
}


def test_good_functions_pass_and_each_error_drops_one() -> None:
    checker = TypeChecker(TypecheckSettings(checker=CHECKER, batch_size=3, workers=2))
    outcome = checker.check([*GOOD, *BAD.values()])
    assert outcome.passed == {item.id for item in GOOD}
    assert set(outcome.errors) == {item.id for item in BAD.values()}
    assert "reportUndefinedVariable" in outcome.errors[BAD["module_global"].id]
    assert "reportMissingImports" in outcome.errors[BAD["numpy"].id]
    assert "reportMissingModuleSource" in outcome.errors[BAD["yaml_stubs_only"].id]
    assert outcome.checker_failures == 0


def test_installed_packages_do_not_leak_into_the_check() -> None:
    """numpy (and yaml, via pytest's own deps) may be installed here; the check must not see
    them, or the function set would depend on the machine."""
    checker = TypeChecker(TypecheckSettings(checker=CHECKER))
    assert checker.check([BAD["numpy"]]).passed == set()


def crashing_checker(directory: Path) -> str:
    """A wrapper that makes the real checker crash on any batch holding a marked function."""
    script = directory / "crashy-pyright"
    real = shutil.which(CHECKER)
    script.write_text(
        "#!/bin/sh\n"
        'if grep -lq CRASH_ME ./*.py 2>/dev/null; then echo "boom" >&2; exit 3; fi\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_function_that_crashes_the_checker_costs_only_itself(tmp_path: Path) -> None:
    crasher = function("crasher", "return x  # CRASH_ME")
    batch = [*GOOD, crasher]
    checker = TypeChecker(TypecheckSettings(checker=crashing_checker(tmp_path), batch_size=10))
    outcome = checker.check(batch)
    assert outcome.passed == {item.id for item in GOOD}
    assert outcome.checker_failures == 1
    assert "boom" in outcome.errors[crasher.id]


def test_a_missing_checker_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.defpath)
    with pytest.raises(CheckerMissingError, match="pip install basedpyright"):
        TypeChecker(TypecheckSettings(checker="no-such-pyright"))
