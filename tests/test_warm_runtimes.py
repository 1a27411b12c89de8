"""The warm R and Racket runtimes, with the real runtimes in the real sandbox.

A warm runtime must be invisible: every program gives the same status, exit code and output
as a cold ``Rscript``/``racket`` run, and no program sees anything an earlier program on the
same server did.
"""

from __future__ import annotations

import re

import pytest

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.limits import Limits
from multiplt.execution.results import ExecutionResult, Program, Status
from multiplt.languages import Language
from tests.conftest import handwritten_completions, multipl_e_problems, require_runtime

# Programs that cannot loop get a timeout no loaded machine reaches (cold racket takes ~1 s).
SLOW_ENOUGH = 60.0
SCRATCH = re.compile(r"/tmp/multiplt-scratch/p-[^/\s\"]+")

R_CASES = {
    "pass": "stopifnot(1 + 1 == 2)\ncat('ok\\n')\n",
    "autoprint": "x <- c(a = 1, b = 2)\nx\ninvisible(3)\nlist(1, 'a')\n",
    "assertion": (
        "test <- function() {\n  stopifnot(isTRUE(all.equal(1 + 1, 3)))\n}\ntest()\ncat('no')\n"
    ),
    "error_top": "cat('before\\n')\nstop('boom')\n",
    "error_nested": "f <- function(x) x + 'a'\ng <- function() f(1)\ng()\n",
    "undefined": "print(undefined_variable)\n",
    "syntax": "cat('ran\\n')\nf <- function(a) {\n  a +\n}\n",
    "syntax_eof": "f <- function(a) {\n  a + 1\n",
    "quit": "cat('a\\n')\nquit(save = 'no', status = 3)\ncat('b\\n')\n",
    "q_in_function": "f <- function() q(status = 4)\nf()\n",
    "warnings": (
        "as.integer('x')\nf <- function() { warning('careful'); 1 }\nf()\n"
        "g <- function() { warning('first'); stop('second') }\ng()\n"
    ),
    "large_output": "for (i in 1:100000) cat(i, '\\n')\n",
    "subprocess": "system('echo from-shell; echo to-stderr >&2')\ncat('after\\n')\n",
    "last": ".Last <- function() cat('bye\\n')\ncat('hi\\n')\n",
    "seeded": "set.seed(42)\nprint(runif(2))\nprint(sample(10))\n",
    "environment": (
        "print(search())\nprint(.libPaths())\nprint(getOption('repos'))\n"
        "print(ls(all.names = TRUE))\nprint(c(compiler::enableJIT(-1), interactive()))\n"
        "cat(getwd(), Sys.getenv('HOME'), Sys.getenv('R_LIBS_USER'), dirname(tempdir()), '\\n')\n"
    ),
}

RKT = "#lang racket\n"
RKT_CASES = {
    "pass": RKT + "(require rackunit)\n(check-equal? (+ 1 1) 2)\n(displayln 'ok)\n",
    "values": RKT + '(+ 1 2)\n(list 1 "a")\n(void)\n',
    "assertion": RKT + "(require rackunit)\n(check-equal? (+ 1 1) 3)\n(displayln 'after)\n",
    "error": RKT + '(define (f) (error \'f "boom ~a" 1))\n(f)\n',
    "contract": RKT + "(car 1)\n",
    "raise": RKT + "(raise 42)\n",
    "syntax": RKT + "(define (f x) x\n",
    "unbound": RKT + "(undefined-function 1)\n",
    "exit": RKT + "(display 'a)\n(exit 3)\n(display 'b)\n",
    "exit_other_thread": RKT + "(void (thread (lambda () (exit 5))))\n(sleep 10)\n",
    "exit_out_of_range": RKT + "(exit 256)\n",
    "main_submodule": RKT + "(module+ main (displayln 'main))\n(module+ test (displayln 'test))\n",
    "large_output": RKT + "(for ([i 100000]) (displayln i))\n",
    "subprocess": RKT + '(void (system "echo from-shell; echo to-stderr >&2"))\n',
    "seeded": RKT + "(random-seed 7)\n(random 1000)\n",
    "environment": RKT
    + "(list (getenv \"HOME\") (find-system-path 'home-dir) (find-system-path 'temp-dir))\n"
    + "(list (current-directory) (current-command-line-arguments) (error-print-width))\n",
}
PASSING = {"r": R_CASES["pass"], "rkt": RKT_CASES["pass"]}


def run(
    language: Language, sources: dict[str, str], warm: bool, timeout_s: float = 3.0
) -> dict[str, ExecutionResult]:
    engine = ExecutionEngine(workers=2, limits=Limits(timeout_s=timeout_s), warm=warm)
    return engine.run(language, [Program(key, source) for key, source in sources.items()])


def outcome(result: ExecutionResult) -> tuple[Status, int, str, str]:
    """What must not depend on warm or cold (scratch directories are named at random)."""
    return (
        result.status,
        result.exit_code,
        SCRATCH.sub("SCRATCH", result.stdout),
        SCRATCH.sub("SCRATCH", result.stderr),
    )


def multipl_e_programs(language: str) -> dict[str, str]:
    """HumanEval programs built as MultiPL-E builds them, from right and wrong completions."""
    problems = multipl_e_problems(language)
    programs = {}
    for name, completions in handwritten_completions()[language].items():
        problem = problems[name]
        for i, completion in enumerate(completions):
            programs[f"{name}/{i}"] = problem["prompt"] + completion + "\n" + problem["tests"]
    return programs


@pytest.mark.parametrize(
    ("language_name", "cases"), [("r", R_CASES), ("rkt", RKT_CASES)], ids=["r", "rkt"]
)
def test_warm_and_cold_runs_give_the_same_outcomes(
    language_name: str, cases: dict[str, str]
) -> None:
    language = require_runtime(language_name)
    programs = cases | multipl_e_programs(language_name)
    warm = run(language, programs, warm=True, timeout_s=SLOW_ENOUGH)
    cold = run(language, programs, warm=False, timeout_s=SLOW_ENOUGH)
    for key in programs:
        assert outcome(warm[key]) == outcome(cold[key]), key
    statuses = {result.status for result in warm.values()}
    assert {Status.OK, Status.ASSERTION_ERROR, Status.EXCEPTION, Status.SYNTAX_ERROR} <= statuses
    assert any(result.passed for result in warm.values())
    assert warm["quit" if language_name == "r" else "exit"].exit_code == 3


LOOPS = {
    "r": {
        "loop": "cat('out\\n')\nmessage('err')\nwhile (TRUE) {}\n",
        "flood": "repeat cat(strrep('x', 999), '\\n')\n",
    },
    "rkt": {
        "loop": RKT + '(displayln "out")\n(eprintf "err~n")\n(let loop () (loop))\n',
        "flood": RKT + "(let loop () (displayln (make-string 999 #\\x)) (loop))\n",
    },
}


@pytest.mark.parametrize("language_name", ["r", "rkt"])
def test_runaway_programs_are_stopped_as_in_cold_runs(language_name: str) -> None:
    language = require_runtime(language_name)
    passing = PASSING[language_name]
    warm = run(language, LOOPS[language_name] | {"after": passing}, warm=True)
    # Cold runs pay the runtime's start-up inside their timeout (racket's ~1 s).
    cold_timeout_s = 3.0 if language_name == "r" else 5.0
    cold = run(language, LOOPS[language_name], warm=False, timeout_s=cold_timeout_s)
    assert outcome(warm["loop"]) == outcome(cold["loop"])  # what it printed before is kept
    assert warm["loop"].status is Status.TIMEOUT and warm["loop"].exit_code == -1
    # Printing forever is stopped at the output limit, not by the clock, warm or cold.
    assert warm["flood"].status is cold["flood"].status is Status.EXCEPTION
    assert warm["flood"].exit_code == cold["flood"].exit_code == -9
    assert "stopped after printing" in warm["flood"].stderr
    assert warm["after"].passed


R_POLLUTER = """
leak_variable <- 42
options(multiplt.leak = TRUE, digits = 3, warn = 2)
Sys.setenv(MULTIPLT_LEAK = "yes")
suppressPackageStartupMessages(library(tools))
set.seed(1)
sum <- function(...) 42
unlockBinding("nchar", baseenv())
assign("nchar", function(x, ...) -1L, envir = baseenv())
writeLines("leak", file.path(tempdir(), "leak.txt"))
setwd("/")
cat("polluted", scan("/proc/self/stat", "", quiet = TRUE)[4], "\\n")
"""

R_CHECKER = """
leaks <- c(
  if (exists("leak_variable")) "global variable",
  if (!is.null(getOption("multiplt.leak")) || getOption("digits") != 7) "options",
  if (getOption("warn") != 0) "options",
  if (nzchar(Sys.getenv("MULTIPLT_LEAK"))) "environment variable",
  if ("package:tools" %in% search()) "attached package",
  if (exists(".Random.seed", envir = globalenv())) "random seed",
  if (sum(1, 2) != 3) "global function",
  if (base::nchar("abc") != 3L) "base function",
  if (length(list.files(tempdir()))) "temporary files",
  if (!file.exists("program.r")) "working directory",
  if (length(ls(all.names = TRUE))) "global environment not empty"
)
cat(if (length(leaks)) paste("LEAK:", leaks) else "CLEAN", sep = "\\n")
cat("server", scan("/proc/self/stat", "", quiet = TRUE)[4], "\\n")
"""

RKT_POLLUTER = (
    RKT
    + """(require racket/os rackunit)
(define counter 0)
(set! counter (add1 counter))
(putenv "MULTIPLT_LEAK" "yes")
(current-directory "/")
(error-print-width 5)
(print-as-expression #f)
(random-seed 1)
(current-check-handler (lambda (e) (displayln "LEAK: check handler")))
(namespace-set-variable-value! 'multiplt-leak #t #t (current-namespace))
(printf "polluted ~a\\n" (getpid))
"""
)

RKT_CHECKER = (
    RKT
    + """(require racket/os rackunit)
(define counter 0)
(set! counter (add1 counter))
(define-values (here _name _dir?)
  (split-path (variable-reference->module-source (#%variable-reference))))
(define seeded
  (parameterize ([current-pseudo-random-generator (make-pseudo-random-generator)])
    (random-seed 1)
    (random 1000000000)))
(define leaks
  (for/list ([leak (list (and (getenv "MULTIPLT_LEAK") "environment variable")
                         (and (not (equal? (path->directory-path (current-directory)) here))
                              "current-directory")
                         (and (not (= (error-print-width) 256)) "error-print-width")
                         (and (not (print-as-expression)) "print-as-expression")
                         (and (namespace-variable-value 'multiplt-leak #t (lambda () #f))
                              "namespace variable")
                         (and (not (= counter 1)) "module-level set!")
                         (and (= (random 1000000000) seeded) "random seed"))]
             #:when leak)
    leak))
(displayln (if (null? leaks) "CLEAN" (string-join leaks ", " #:before-first "LEAK: ")))
(printf "server ~a\\n" (getpid))
(check-equal? 1 2)
"""
)


@pytest.mark.parametrize(
    ("language_name", "polluter", "checker"),
    [("r", R_POLLUTER, R_CHECKER), ("rkt", RKT_POLLUTER, RKT_CHECKER)],
    ids=["r", "rkt"],
)
def test_programs_see_nothing_of_earlier_programs(
    language_name: str, polluter: str, checker: str
) -> None:
    language = require_runtime(language_name)
    # The polluters go first, so every checker that shares a server with one runs after it.
    programs = {"polluter-1": polluter, "polluter-2": polluter}
    programs |= {f"checker-{i}": checker for i in range(8)}
    results = run(language, programs, warm=True, timeout_s=SLOW_ENOUGH)
    polluted = {results[key].stdout.split()[-1] for key in programs if key.startswith("polluter")}
    servers = set()
    for key, result in results.items():
        if key.startswith("checker"):
            assert result.stdout.startswith("CLEAN\n"), f"{key}: {result}"
            servers.add(result.stdout.split()[-1])
            if language_name == "rkt":  # rackunit's own check handler, not the polluter's
                assert result.status is Status.ASSERTION_ERROR, result
    assert polluted & servers, "no checker ran on a server after a polluter"


CRASHERS = {
    "r": {
        # The server's pid in the program's own PID namespace: the last of its NSpid ids.
        "kill_server": "server <- scan('/proc/self/stat', '', quiet = TRUE)[4]\n"
        "ids <- grep('^NSpid:', readLines(sprintf('/proc/%s/status', server)), value = TRUE)\n"
        "ids <- strsplit(ids, '[[:space:]]+')[[1]]\n"
        "tools::pskill(as.integer(ids[length(ids)]), tools::SIGKILL)\nSys.sleep(5)\n",
        "quit": "quit(save = 'no', status = 3)\n",
        "memory": "x <- numeric(1e11)\n",
    },
    "rkt": {
        "kill_server": RKT + '(void (system "kill -9 $PPID"))\n(sleep 5)\n',
        "exit": RKT + "(exit 3)\n",
        "memory": RKT + "(define v (make-vector 1000000000 0))\n",
    },
}


@pytest.mark.parametrize("language_name", ["r", "rkt"])
def test_a_program_that_kills_or_crashes_its_server_harms_no_other(language_name: str) -> None:
    language = require_runtime(language_name)
    passing = PASSING[language_name]
    crashers = CRASHERS[language_name]
    programs = crashers | {f"after-{i}": passing for i in range(6)}
    results = run(language, programs, warm=True, timeout_s=SLOW_ENOUGH / 4)
    for key in programs:
        if key.startswith("after"):
            assert results[key].passed, f"{key}: {results[key]}"
    for key in crashers:
        assert results[key].status is Status.EXCEPTION or results[key].exit_code == 3
        assert results[key].exit_code != 0
    assert results["kill_server"].exit_code == -9  # the runner saw its server die
