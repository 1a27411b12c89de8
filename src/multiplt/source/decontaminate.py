"""Benchmark decontamination: drop functions that contain or closely copy a benchmark problem.

Two tests, both against every text of :mod:`.benchmarks` (descriptions, prompts, solutions):

* exact substring, after collapsing whitespace (so re-indenting a HumanEval solution or
  re-wrapping its docstring does not hide it), of any benchmark text of at least
  ``min_substring_chars`` characters — shorter texts (``return a + b``) occur everywhere;
* word n-gram containment: the share of a benchmark text's word ``ngram_size``-grams that
  also occur in the function. This catches a copied problem with a renamed function, a
  reworded docstring or different doctest values, which no substring test sees.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ahocorasick

from multiplt.source.benchmarks import BenchmarkText
from multiplt.source.records import PythonFunction

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DecontaminationSettings:
    min_substring_chars: int = 40
    ngram_size: int = 10
    # Remove a function sharing at least this fraction of some benchmark text's n-grams.
    ngram_overlap: float = 0.5


@dataclass(frozen=True)
class Match:
    benchmark: str
    item: str
    field: str
    method: str  # "substring" or "ngram"


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def word_ngrams(text: str, size: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[start : start + size]) for start in range(len(words) - size + 1)}


class BenchmarkIndex:
    """Both tests' indexes over one benchmark corpus, built once per shard."""

    def __init__(self, texts: Sequence[BenchmarkText], settings: DecontaminationSettings) -> None:
        self.settings = settings
        self.texts = list(texts)
        self.benchmarks = sorted({text.benchmark for text in self.texts})
        self._substrings = self._build_substring_automaton()
        self._ngram_owners, self._ngram_counts = self._build_ngram_index()

    def _build_substring_automaton(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton()
        owners: defaultdict[str, list[int]] = defaultdict(list)
        for index, text in enumerate(self.texts):
            needle = collapse_whitespace(text.text)
            if len(needle) >= self.settings.min_substring_chars:
                owners[needle].append(index)
        for needle, indexes in owners.items():
            automaton.add_word(needle, indexes)
        if owners:
            automaton.make_automaton()
        return automaton

    def _build_ngram_index(self) -> tuple[dict[tuple[str, ...], list[int]], list[int]]:
        owners: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
        counts = []
        for index, text in enumerate(self.texts):
            ngrams = word_ngrams(text.text, self.settings.ngram_size)
            counts.append(len(ngrams))
            for ngram in ngrams:
                owners[ngram].append(index)
        return dict(owners), counts

    def matches(self, function: PythonFunction) -> list[Match]:
        """Every benchmark text ``function`` contaminates-matches, by either test."""
        found = [self._match(index, "substring") for index in self._substring_hits(function)]
        found += [self._match(index, "ngram") for index in self._ngram_hits(function)]
        return found

    def _substring_hits(self, function: PythonFunction) -> set[int]:
        if self._substrings.kind != ahocorasick.AHOCORASICK:
            return set()
        # The parsed docstring too: in the code it may carry escapes the benchmark lacks.
        haystack = (
            collapse_whitespace(function.code) + "\n" + collapse_whitespace(function.docstring)
        )
        return {index for _, indexes in self._substrings.iter(haystack) for index in indexes}

    def _ngram_hits(self, function: PythonFunction) -> set[int]:
        shared: Counter[int] = Counter()
        for ngram in word_ngrams(function.code, self.settings.ngram_size):
            shared.update(self._ngram_owners.get(ngram, ()))
        threshold = self.settings.ngram_overlap
        return {
            index
            for index, count in shared.items()
            if count / self._ngram_counts[index] >= threshold
        }

    def _match(self, index: int, method: str) -> Match:
        text = self.texts[index]
        return Match(text.benchmark, text.item, text.field, method)


@dataclass
class DecontaminationReport:
    """How many functions each benchmark (and each test) removed; a function that matches
    several benchmarks counts once for each, and once in ``removed``."""

    benchmarks: list[str] = field(default_factory=list)
    removed: int = 0
    by_benchmark: Counter[str] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)

    def record(self, matches: Iterable[Match]) -> None:
        matches = list(matches)
        if not matches:
            return
        self.removed += 1
        self.by_benchmark.update({match.benchmark for match in matches})
        self.by_method.update({match.method for match in matches})
