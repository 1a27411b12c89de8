"""Registry of languages: one module per language, looked up by MultiPL-E name or alias.

Adding a language is one module here (defining ``LANGUAGE``), one line in ``_MODULES``,
one ``containers/<name>.def`` and one entry in ``config.yaml``.
"""

from __future__ import annotations

import importlib
from functools import cache

from multiplt.languages.base import Language, WarmRuntime

__all__ = ["Language", "WarmRuntime", "all_languages", "get_language"]

_MODULES = ("python", "julia", "lua", "ocaml", "r", "racket")


@cache
def all_languages() -> tuple[Language, ...]:
    return tuple(importlib.import_module(f"{__name__}.{module}").LANGUAGE for module in _MODULES)


def get_language(name: str) -> Language:
    """The language called ``name`` (``lua``, ``rkt`` or ``racket``, ...)."""
    for language in all_languages():
        if name == language.name or name in language.aliases:
            return language
    known = ", ".join(sorted(lang.name for lang in all_languages()))
    raise KeyError(f"unknown language {name!r}; known languages: {known}")
