"""Lua 5.3 with luaunit, as in MultiPL-E's evaluation image."""

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, Problem, classify_exit

# luaunit reports failed assertions on stdout and exits with the number of failures.
_ERRORS = (
    ("assertion failed!", Status.ASSERTION_ERROR),
    ("Failed tests:", Status.ASSERTION_ERROR),
)


def drop_blank_line_stop(problem: Problem) -> Problem:
    """MultiPL-E before v3.3 stops Lua at "\\n\\n", cutting multi-paragraph functions short."""
    return {**problem, "stop_tokens": [t for t in problem["stop_tokens"] if t != "\n\n"]}


def classify(outcome: RunOutcome) -> Status:
    status = classify_exit(outcome)
    if status is not Status.EXCEPTION:
        return status
    # A chunk that fails to load is reported without a traceback, "file:line: ... near ...".
    if "stack traceback" not in outcome.stderr and " near " in outcome.stderr:
        return Status.SYNTAX_ERROR
    for needle, found in _ERRORS:
        if needle in outcome.stderr or needle in outcome.stdout:
            return found
    return Status.EXCEPTION


LANGUAGE = Language(
    name="lua",
    display_name="Lua",
    file_suffix=".lua",
    run_command=("lua5.3", "{file}"),
    classify=classify,
    # MultiPL-E's snapshots also stop at "\n\n", which cuts multi-paragraph functions short
    # (fixed in the dataset's v3.3); we never add it.
    stop_tokens=("\nlocal", "\nfunction", "\n--"),
    repairs=(drop_blank_line_stop,),
)
