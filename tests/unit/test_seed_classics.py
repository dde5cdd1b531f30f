"""The demo's classic problems are well formed: a statement, one visible example, hidden tests
whose expected outputs come from the reference solution, and the api's own validation."""

from __future__ import annotations

from kubejudge_dev.seed import CLASSICS


def test_each_classic_has_a_statement_an_example_and_hidden_tests() -> None:
    assert len(CLASSICS) >= 5
    assert len({classic.slug for classic in CLASSICS}) == len(CLASSICS)
    for classic in CLASSICS:
        problem = classic.problem()  # the api's ProblemIn: slug, sizes and text validated
        assert problem.statement
        assert [test.hidden for test in problem.tests][:1] == [False]
        assert sum(test.hidden for test in problem.tests) >= 3
        assert all(test.expected_output.endswith("\n") for test in problem.tests)
