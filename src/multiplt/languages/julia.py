"""Julia 1.8+. Its timeout starts after start-up: a prelude signals readiness on a pipe."""

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, classify_exit

_ERRORS = (
    ("syntax:", Status.SYNTAX_ERROR),
    ("ParseError", Status.SYNTAX_ERROR),
    ("Test Failed", Status.ASSERTION_ERROR),
    ("Some tests did not pass", Status.ASSERTION_ERROR),
    ("AssertionError", Status.ASSERTION_ERROR),
)


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
    limit_address_space=False,
)
