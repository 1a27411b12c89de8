"""Each language's outcomes, classified, with the real runtimes in the real sandbox."""

from __future__ import annotations

import pytest

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.results import Program, Status
from tests.conftest import ALL_LANGUAGES, require_runtime

# Per language: a program that passes, fails an assertion, raises, has a syntax error and
# loops forever; with the status we give it. MultiPL-E's own pass/fail verdict is the same
# for all of them (only OK passes); where MultiPL-E lumps failures together as "Exception"
# we name the assertion failure or syntax error (see README, "Statuses").
CASES: dict[str, dict[str, tuple[str, Status]]] = {
    "py": {
        "pass": ("assert 1 + 1 == 2\nprint('ok')\n", Status.OK),
        "assertion": ("assert 1 + 1 == 3\n", Status.ASSERTION_ERROR),
        "raise": ("raise ValueError('boom')\n", Status.EXCEPTION),
        "syntax": ("def f(:\n    pass\n", Status.SYNTAX_ERROR),
        "loop": ("while True:\n    pass\n", Status.TIMEOUT),
    },
    "lua": {
        "pass": ("assert(1 + 1 == 2)\nprint('ok')\n", Status.OK),
        "assertion": (
            "local lu = require('luaunit')\nfunction test_x() lu.assertEquals(1 + 1, 3) end\n"
            "os.exit(lu.LuaUnit.run())\n",
            Status.ASSERTION_ERROR,
        ),
        "raise": ("error('boom')\n", Status.EXCEPTION),
        "syntax": ("local x = = 1\n", Status.SYNTAX_ERROR),
        "loop": ("while true do end\n", Status.TIMEOUT),
    },
    "r": {
        "pass": ("stopifnot(1 + 1 == 2)\ncat('ok\\n')\n", Status.OK),
        "assertion": ("stopifnot(isTRUE(all.equal(1 + 1, 3)))\n", Status.ASSERTION_ERROR),
        "raise": ("stop('boom')\n", Status.EXCEPTION),
        "syntax": ("f <- function( {\n", Status.SYNTAX_ERROR),
        "loop": ("while (TRUE) {}\n", Status.TIMEOUT),
    },
    "ml": {
        "pass": ('let () = assert (1 + 1 = 2)\nlet () = print_endline "ok"\n', Status.OK),
        "assertion": ("let () = assert (1 + 1 = 3)\n", Status.ASSERTION_ERROR),
        "raise": ('let () = failwith "boom"\n', Status.EXCEPTION),
        "syntax": ("let f x = = 1\n", Status.SYNTAX_ERROR),
        "loop": ("let rec loop () = loop ()\nlet () = loop ()\n", Status.TIMEOUT),
    },
    "rkt": {
        "pass": ("#lang racket\n(require rackunit)\n(check-equal? (+ 1 1) 2)\n", Status.OK),
        "assertion": (
            "#lang racket\n(require rackunit)\n(check-equal? (+ 1 1) 3)\n",
            Status.ASSERTION_ERROR,
        ),
        "raise": ('#lang racket\n(error \'f "boom")\n', Status.EXCEPTION),
        "syntax": ("#lang racket\n(define (f x) x\n", Status.SYNTAX_ERROR),
        "loop": ("#lang racket\n(let loop () (loop))\n", Status.TIMEOUT),
    },
    "jl": {
        "pass": ('using Test\n@test 1 + 1 == 2\nprintln("ok")\n', Status.OK),
        "assertion": (
            "using Test\n@testset begin\n@test 1 + 1 == 3\nend\n",
            Status.ASSERTION_ERROR,
        ),
        "raise": ('error("boom")\n', Status.EXCEPTION),
        "syntax": ("function f(x\n", Status.SYNTAX_ERROR),
        "loop": ("while true end\n", Status.TIMEOUT),
    },
}


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize("language_name", ALL_LANGUAGES)
def test_outcomes_are_classified(language_name: str, warm: bool, engine: ExecutionEngine) -> None:
    language = require_runtime(language_name)
    if not warm and language.warm_runtime is None:
        pytest.skip(f"{language.display_name} has no warm runtime; the cold run is the only one")
    engine.warm = warm
    cases = CASES[language_name]
    results = engine.run(language, [Program(case, source) for case, (source, _) in cases.items()])
    for case, (_, expected) in cases.items():
        result = results[case]
        assert result.status is expected, f"{case}: {result}"
        assert result.passed == (expected is Status.OK)
    assert "ok" in results["pass"].stdout or language_name == "rkt"
    assert results["loop"].exit_code == -1


def test_every_language_has_cases() -> None:
    assert set(CASES) == set(ALL_LANGUAGES)
