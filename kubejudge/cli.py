"""`kubejudge ROLE [options]`: one console script, a subcommand per role.

Only the chosen role's module is imported, so `kubejudge worker` never loads kopf and
`kubejudge api` never loads matplotlib. Each role module offers `add_arguments(parser)` and
`run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NamedTuple


class Role(NamedTuple):
    module: str
    help: str


ROLES: dict[str, Role] = {
    "api": Role("kubejudge_api.main", "the Judge0-compatible HTTP API (port 2358)"),
    "worker": Role("kubejudge_worker.main", "judge submissions from a pool's queue"),
    "gateway": Role("kubejudge_gateway.main", "push verdicts over WebSocket (port 2359)"),
    "operator": Role("kubejudge_operator.main", "reconcile JudgeClusters and autoscale workers"),
    "dev": Role("kubejudge.dev", "run the whole judge on this machine"),
    "loadtest": Role("kubejudge.loadtest", "drive submissions and report latency and scaling"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubejudge", description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    for name, role in ROLES.items():
        roles.add_parser(name, help=role.help, add_help=False)
    chosen, rest = parser.parse_known_args(argv)

    role = ROLES[chosen.role]
    module = importlib.import_module(role.module)
    role_parser = argparse.ArgumentParser(prog=f"kubejudge {chosen.role}", description=role.help)
    module.add_arguments(role_parser)
    args = role_parser.parse_args(rest)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
