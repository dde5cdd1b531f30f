"""`kubejudge ROLE [options]`: one console script, a subcommand per installed role.

The core names no role: each role's distribution registers its module under the
`kubejudge.roles` entry-point group (an api image offers only `kubejudge api`), and the role's
one-line help is its distribution's summary. Only the chosen role's module is imported, so
`kubejudge worker` never loads kopf. Each role module offers `add_arguments(parser)` and
`run(args) -> int`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import EntryPoint, entry_points

ROLES_GROUP = "kubejudge.roles"


def installed_roles() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in sorted(entry_points(group=ROLES_GROUP))}


def _help(entry: EntryPoint) -> str:
    return entry.dist.metadata["Summary"] if entry.dist is not None else ""


def main(argv: list[str] | None = None) -> int:
    roles = installed_roles()
    parser = argparse.ArgumentParser(prog="kubejudge", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    for name, entry in roles.items():
        subparsers.add_parser(name, help=_help(entry), add_help=False)
    chosen, rest = parser.parse_known_args(argv)

    entry = roles[chosen.role]
    module = entry.load()
    role_parser = argparse.ArgumentParser(prog=f"kubejudge {chosen.role}", description=_help(entry))
    module.add_arguments(role_parser)
    args = role_parser.parse_args(rest)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
