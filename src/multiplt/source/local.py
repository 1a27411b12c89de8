"""Local source trees: the embedded default is the installed Python standard library."""

from __future__ import annotations

import hashlib
import os
import platform
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from multiplt.source.records import Provenance, SourceFile

STDLIB = "stdlib"


@dataclass(frozen=True)
class LocalRoot:
    path: Path
    repository: str
    licenses: tuple[str, ...] = ()
    # Directories under ``path`` that belong to something else (site-packages in the stdlib).
    excluded: tuple[Path, ...] = ()


@dataclass(frozen=True)
class LocalFile:
    path: Path
    repository: str
    relative_path: str
    licenses: tuple[str, ...]

    @property
    def order_key(self) -> str:
        """A hash that spreads files evenly over shards and samples, stable across machines."""
        return hashlib.sha1(f"{self.repository}/{self.relative_path}".encode()).hexdigest()


def resolve_root(root: str) -> LocalRoot:
    """``stdlib`` means this interpreter's standard library (resolved at run time, so the
    same config works on every machine); anything else is a directory."""
    if root == STDLIB:
        paths = sysconfig.get_paths()
        packages = {Path(paths["purelib"]), Path(paths["platlib"])}
        return LocalRoot(
            path=Path(paths["stdlib"]),
            repository=f"cpython-{platform.python_version()}/Lib",
            licenses=("PSF-2.0",),
            excluded=tuple(sorted(packages)),
        )
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"source.local_roots: {root!r} is not a directory")
    return LocalRoot(path=path, repository=path.name)


def walk_python_files(root: LocalRoot, exclude_dirs: Iterable[str]) -> Iterator[LocalFile]:
    skipped_names = set(exclude_dirs)
    for directory, subdirectories, files in os.walk(root.path):
        here = Path(directory)
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if name not in skipped_names and here / name not in root.excluded
        )
        for name in sorted(files):
            if name.endswith(".py"):
                path = here / name
                yield LocalFile(
                    path=path,
                    repository=root.repository,
                    relative_path=path.relative_to(root.path).as_posix(),
                    licenses=root.licenses,
                )


def list_local_files(
    roots: Iterable[str], exclude_dirs: Iterable[str], max_files: int | None
) -> list[LocalFile]:
    """Every ``.py`` file under ``roots`` in hash order; the first ``max_files`` of that order
    are an even sample of the whole tree, not its alphabetical beginning."""
    exclude = list(exclude_dirs)
    files = [file for root in roots for file in walk_python_files(resolve_root(root), exclude)]
    files.sort(key=lambda file: file.order_key)
    return files if max_files is None else files[:max_files]


def read_local_file(file: LocalFile) -> SourceFile:
    """The file's bytes: decoding is the extractor's job, so bad encodings are counted there."""
    provenance = Provenance(
        source="local",
        repository=file.repository,
        path=file.relative_path,
        licenses=file.licenses,
    )
    return SourceFile(content=file.path.read_bytes(), provenance=provenance)
