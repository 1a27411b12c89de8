"""R, run by Rscript; a warm fork server pays R's start-up once per worker."""

from multiplt.execution.results import RunOutcome, Status
from multiplt.languages.base import Language, WarmRuntime, classify_exit

_ERRORS = (
    ("Error: unexpected", Status.SYNTAX_ERROR),
    ("Error in parse(", Status.SYNTAX_ERROR),
    ("is not TRUE", Status.ASSERTION_ERROR),
    ("are not all TRUE", Status.ASSERTION_ERROR),
)


def classify(outcome: RunOutcome) -> Status:
    return classify_exit(outcome, _ERRORS)


LANGUAGE = Language(
    name="r",
    display_name="R",
    file_suffix=".r",
    run_command=("Rscript", "{file}"),
    classify=classify,
    stop_tokens=("\n#", "\n```"),
    warm_runtime=WarmRuntime(script="r_server.R", command=("Rscript", "--vanilla", "{script}")),
)
