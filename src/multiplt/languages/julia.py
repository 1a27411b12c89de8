"""Julia 1.8+. Its timeout starts after start-up: a prelude signals readiness on a pipe."""

import re

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, Problem, classify_exit

_ERRORS = (
    ("syntax:", Status.SYNTAX_ERROR),
    ("ParseError", Status.SYNTAX_ERROR),
    ("Test Failed", Status.ASSERTION_ERROR),
    ("Some tests did not pass", Status.ASSERTION_ERROR),
    ("AssertionError", Status.ASSERTION_ERROR),
)


# Some of MultiPL-E's Julia prompts carry a stray ">" after a parametric type
# (`Dict{String, Int64}>`), which makes the signature itself a syntax error.
_STRAY_ANGLE = re.compile(r"(\{[^{}\n]*\})>")


def drop_stray_angle_brackets(problem: Problem) -> Problem:
    return {**problem, "prompt": _STRAY_ANGLE.sub(r"\1", problem["prompt"])}


def classify(outcome: RunOutcome) -> Status:
    return classify_exit(outcome, _ERRORS)


# The prelude tells the runner that start-up is over, then runs the program as `julia f.jl` would.
_PRELUDE = (
    'let io = fdio(parse(Int, ENV["MULTIPLT_READY_FD"]), true); write(io, 0x01); close(io); end;'
    " include(popfirst!(ARGS))"
)

LANGUAGE = Language(
    name="jl",
    display_name="Julia",
    aliases=("julia",),
    file_suffix=".jl",
    run_command=("julia", "--startup-file=no", "--history-file=no", "-e", _PRELUDE, "{file}"),
    classify=classify,
    stop_tokens=("\nfunction", "\nmacro", "\n\n"),
    signals_ready=True,
    repairs=(drop_stray_angle_brackets,),
    limit_address_space=False,
)
