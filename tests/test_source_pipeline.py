"""A shard end to end on a local tree with malformed files: counted, never fatal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from multiplt.source.decontaminate import BenchmarkIndex, DecontaminationSettings
from multiplt.source.local import list_local_files, resolve_root
from multiplt.source.pipeline import run_shard
from multiplt.source.plan import make_plan, shard_files
from multiplt.source.settings import SourceSettings
from multiplt.source.typecheck import TypeChecker, TypecheckSettings

DATA = Path(__file__).parent / "data" / "source"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    for fixture in DATA.glob("*.py.txt"):
        shutil.copy(fixture, root / "pkg" / fixture.name.removesuffix(".txt"))
    (root / "pkg" / "blob.py").write_bytes(bytes(range(256)) * 16)
    (root / "pkg" / "table.py").write_bytes(b"TABLE = [" + b"0, " * 1_700_000 + b"]\n")
    (root / "site-packages").mkdir()
    (root / "site-packages" / "vendored.py").write_text('def v():\n    """V."""\n    return 1\n')
    return root


def test_a_shard_counts_every_bad_file_and_keeps_going(tree: Path) -> None:
    settings = SourceSettings(
        kind="local", shards=1, local_roots=(str(tree),), exclude_dirs=("site-packages",)
    )
    plan = make_plan(settings)
    assert len(plan.units[0]) == 6  # site-packages/ is excluded
    result = run_shard(
        shard_files(plan, 0),
        max_file_bytes=1_000_000,
        checker=TypeChecker(TypecheckSettings(batch_size=2, workers=2)),
        index=BenchmarkIndex([], DecontaminationSettings()),
    )
    funnel = result.funnel
    assert dict(funnel.files) == {
        "read": 6, "python3": 2, "undecodable": 1, "syntax_error": 1, "binary": 1, "too_large": 1,
    }  # fmt: skip
    assert funnel.functions["extracted"] == 11
    assert funnel.functions["with_docstring"] == 9
    # not_ascii and café_price are not ASCII; three of functions.py pass pyright too.
    assert funnel.functions["ascii_only"] == 4
    assert funnel.functions["typechecks"] == 3
    assert sorted(f.name for f in result.functions) == [
        "decorated",
        "kept",
        "lone_return_large_enough",
    ]
    assert {f.provenance.repository for f in result.functions} == {"project"}
    assert {f.provenance.path for f in result.functions} == {"pkg/functions.py"}


def test_max_functions_caps_a_shard(tree: Path) -> None:
    settings = SourceSettings(kind="local", shards=1, local_roots=(str(tree),), max_functions=1)
    plan = make_plan(settings)
    result = run_shard(
        shard_files(plan, 0),
        max_file_bytes=1_000_000,
        checker=TypeChecker(TypecheckSettings()),
        index=BenchmarkIndex([], DecontaminationSettings()),
        max_functions=plan.max_functions_per_shard,
    )
    # It stops after the file that reached the cap: at most one file of functions.
    assert 1 <= result.funnel.functions["with_docstring"] <= 8


def test_the_stdlib_root_is_this_pythons_without_site_packages() -> None:
    root = resolve_root("stdlib")
    assert (root.path / "os.py").is_file()
    assert root.licenses == ("PSF-2.0",)
    files = list_local_files(["stdlib"], ["site-packages", "dist-packages"], max_files=None)
    assert all("site-packages" not in file.relative_path for file in files)
    assert any(file.relative_path == "json/decoder.py" for file in files)


def test_max_files_is_a_stable_spread_sample() -> None:
    first = list_local_files(["stdlib"], ["site-packages"], max_files=50)
    again = list_local_files(["stdlib"], ["site-packages"], max_files=50)
    assert first == again and len(first) == 50
    # A sample of the whole tree, not its alphabetical beginning.
    assert len({file.relative_path.split("/")[0] for file in first}) > 10


def test_shards_are_balanced_and_disjoint() -> None:
    plan = make_plan(SourceSettings(kind="local", shards=4, max_files=103))
    sizes = [len(units) for units in plan.units]
    assert sum(sizes) == 103 and max(sizes) - min(sizes) <= 1
    paths = [unit["path"] for units in plan.units for unit in units]
    assert len(set(paths)) == 103


def test_a_bad_root_is_named() -> None:
    with pytest.raises(ValueError, match="source.local_roots: '/no/such/tree' is not a directory"):
        list_local_files(["/no/such/tree"], [], None)
