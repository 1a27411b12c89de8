"""Racket with rackunit; a warm server runs each program in a fresh namespace and custodian."""

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, WarmRuntime, classify_exit

_ERRORS = (
    ("read-syntax", Status.SYNTAX_ERROR),
    ("FAILURE\nname:", Status.ASSERTION_ERROR),
)


def classify(outcome: RunOutcome) -> Status:
    # rackunit prints failed checks to stderr and still exits 0, so any stderr is a failure.
    return classify_exit(outcome, _ERRORS, fail_on_stderr=True)


LANGUAGE = Language(
    name="rkt",
    display_name="Racket",
    aliases=("racket",),
    file_suffix=".rkt",
    run_command=("racket", "{file}"),
    classify=classify,
    stop_tokens=("\n(define ", "\n#|", "\n;", "\n("),
    warm_runtime=WarmRuntime(script="racket_server.rkt", command=("racket", "{script}")),
)
