"""OCaml, run by the toplevel (``ocaml f.ml``) as in MultiPL-E."""

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, classify_exit

_ERRORS = (
    ("Assert_failure", Status.ASSERTION_ERROR),
    ("Syntax error", Status.SYNTAX_ERROR),
)


def classify(outcome: RunOutcome) -> Status:
    return classify_exit(outcome, _ERRORS)


LANGUAGE = Language(
    name="ml",
    display_name="OCaml",
    aliases=("ocaml",),
    file_suffix=".ml",
    run_command=("ocaml", "{file}"),
    classify=classify,
    stop_tokens=("\n\n", "\n(*", "\ntype", "\nlet"),
)
