"""R, run by Rscript; a warm fork server pays R's start-up once per worker."""

import re

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, Problem, WarmRuntime, classify_exit

_ERRORS = (
    ("Error: unexpected", Status.SYNTAX_ERROR),
    ("Error in parse(", Status.SYNTAX_ERROR),
    ("is not TRUE", Status.ASSERTION_ERROR),
    ("are not all TRUE", Status.ASSERTION_ERROR),
)


# Older MultiPL-E R tests compared with identical(), which fails 2L against 2 and
# c(1, 2) against list(1, 2); later versions use isTRUE(all.equal(...)).
_IDENTICAL_CHECK = re.compile(r"^(\s*)stopifnot\(identical\((.*)\)\)\s*$", re.MULTILINE)


def compare_with_all_equal(problem: Problem) -> Problem:
    tests = _IDENTICAL_CHECK.sub(r"\1stopifnot(isTRUE(all.equal(\2)))", problem["tests"])
    return {**problem, "tests": tests}


def classify(outcome: RunOutcome) -> Status:
    return classify_exit(outcome, _ERRORS)


LANGUAGE = Language(
    name="r",
    display_name="R",
    file_suffix=".r",
    run_command=("Rscript", "{file}"),
    classify=classify,
    stop_tokens=("\n#", "\n```"),
    repairs=(compare_with_all_equal,),
    warm_runtime=WarmRuntime(script="r_server.R", command=("Rscript", "--vanilla", "{script}")),
)
