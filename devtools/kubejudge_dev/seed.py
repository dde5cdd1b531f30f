"""Classic problems for `kubejudge dev` to start with, so the page has something to solve.

Seeded only into a database with no problems at all (a judge someone already filled is theirs),
through the api's own write path (kubejudge_api.problem_store: cache floors included), and by slug,
so a second start or a concurrent one adds nothing twice. Each problem has one visible example
and hidden tests whose expected outputs come from the reference solution beside its inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kubejudge_api import problem_store
from kubejudge_api.problem_store import ProblemIn, TestCaseIn
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge.db.models import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classic:
    slug: str
    title: str
    statement: str
    solve: Callable[[str], str]  # the reference solution: input -> expected output
    inputs: tuple[str, ...]  # the first is the visible example, the rest are hidden

    def problem(self) -> ProblemIn:
        tests = [
            TestCaseIn(input=given, expected_output=self.solve(given), hidden=position > 0)
            for position, given in enumerate(self.inputs)
        ]
        return ProblemIn(slug=self.slug, title=self.title, statement=self.statement, tests=tests)


def _numbers(text: str) -> list[int]:
    return [int(word) for word in text.split()]


def _a_plus_b(text: str) -> str:
    a, b = _numbers(text)
    return f"{a + b}\n"


def _fizzbuzz(text: str) -> str:
    (n,) = _numbers(text)
    words = [
        "FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i)
        for i in range(1, n + 1)
    ]
    return "".join(f"{word}\n" for word in words)


def _palindrome(text: str) -> str:
    kept = [ch.lower() for ch in text.strip() if ch.isalnum()]
    return "yes\n" if kept == kept[::-1] else "no\n"


def _max_subarray(text: str) -> str:
    _, *values = _numbers(text)
    best = current = values[0]
    for value in values[1:]:
        current = max(value, current + value)
        best = max(best, current)
    return f"{best}\n"


def _balanced(text: str) -> str:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for ch in text.strip():
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return "no\n"
    return "no\n" if stack else "yes\n"


CLASSICS = (
    Classic(
        slug="a-plus-b",
        title="A + B",
        statement="Read two integers a and b (|a|, |b| ≤ 10^18) on one line and print a + b.",
        solve=_a_plus_b,
        inputs=("2 3\n", "-7 7\n", "1000000000000000000 1000000000000000000\n", "0 -5\n"),
    ),
    Classic(
        slug="fizzbuzz",
        title="FizzBuzz",
        statement="Read n (1 ≤ n ≤ 10^4). For each i from 1 to n print FizzBuzz if 15 divides i,"
        " Fizz if 3 does, Buzz if 5 does, else i itself; one per line.",
        solve=_fizzbuzz,
        inputs=("5\n", "1\n", "15\n", "100\n", "10000\n"),
    ),
    Classic(
        slug="palindrome",
        title="Palindrome",
        statement="Read one line. Ignoring case and every character that is not a letter or a"
        " digit, print yes if it reads the same backwards, else no.",
        solve=_palindrome,
        inputs=("Never odd or even\n", "abc\n", "A man, a plan, a canal: Panama\n", "ab\n", "x\n"),
    ),
    Classic(
        slug="max-subarray",
        title="Maximum subarray",
        statement="Read n (1 ≤ n ≤ 10^5), then n integers. Print the largest sum of a non-empty"
        " run of consecutive numbers.",
        solve=_max_subarray,
        inputs=(
            "9\n-2 1 -3 4 -1 2 1 -5 4\n",
            "1\n-3\n",
            "5\n-5 -1 -8 -2 -9\n",
            "6\n3 -1 3 -1 3 -10\n",
            "4\n1000000000 1000000000 -1 1000000000\n",
        ),
    ),
    Classic(
        slug="balanced-brackets",
        title="Balanced brackets",
        statement="Read one line of brackets ()[]{}. Print yes if every bracket is closed by the"
        " matching kind in the right order, else no.",
        solve=_balanced,
        inputs=("([]{})\n", "(]\n", "((\n", "{[()()]}\n", "())(\n", "\n"),
    ),
)


async def seed_if_empty(engine: AsyncEngine, redis: Redis, *, ttl_s: int) -> list[str]:
    """Add the classics when the judge has no problems; the slugs added (none if it had any)."""
    async with engine.connect() as connection:
        count = (await connection.execute(select(func.count()).select_from(Problem))).scalar_one()
    if count:
        return []
    added = []
    for classic in CLASSICS:
        try:
            await problem_store.create(engine, redis, problem=classic.problem(), ttl_s=ttl_s)
        except problem_store.SlugTaken:
            continue  # another start seeded it first
        added.append(classic.slug)
    log.info("seeded %d problems: %s", len(added), ", ".join(added))
    return added
