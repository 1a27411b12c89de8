"""Python: the source language of the pipeline and of MultiPL-E's ``py`` problems."""

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, classify_exit

_ERRORS = (
    ("SyntaxError", Status.SYNTAX_ERROR),
    ("IndentationError", Status.SYNTAX_ERROR),
    ("AssertionError", Status.ASSERTION_ERROR),
)


def classify(outcome: RunOutcome) -> Status:
    return classify_exit(outcome, _ERRORS)


LANGUAGE = Language(
    name="py",
    display_name="Python",
    aliases=("python",),
    file_suffix=".py",
    # -I: isolated mode, so nothing from the environment or user site-packages leaks in.
    run_command=("python3", "-I", "{file}"),
    classify=classify,
    stop_tokens=("\ndef", "\n#", "\nif", "\nclass"),
)
