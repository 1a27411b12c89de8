"""OCaml, run by the toplevel (``ocaml f.ml``) as in MultiPL-E."""

import re

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, Problem, classify_exit

_ERRORS = (
    ("Assert_failure", Status.ASSERTION_ERROR),
    ("Syntax error", Status.SYNTAX_ERROR),
)


# MultiPL-E's OCaml translator writes negative literals as (~1), a syntax error in OCaml,
# so 32 of its 155 HumanEval problems cannot be solved; (-1) is what it meant.
_TILDE_NEGATIVE = re.compile(r"\(~(\d+(?:\.\d+)?)\)")


def write_negative_literals(problem: Problem) -> Problem:
    return {
        **problem,
        "prompt": _TILDE_NEGATIVE.sub(r"(-\1)", problem["prompt"]),
        "tests": _TILDE_NEGATIVE.sub(r"(-\1)", problem["tests"]),
    }


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
    repairs=(write_negative_literals,),
)
