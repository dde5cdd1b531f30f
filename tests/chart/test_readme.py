"""The chart README's values table lists every documented key of values.yaml."""

from __future__ import annotations

import re

from tests.chart.paths import CHART


def documented_keys() -> list[str]:
    """Dotted keys that carry a `# --` comment in values.yaml (the helm-docs convention)."""
    keys, stack, documented = [], [], False
    for line in (CHART / "values.yaml").read_text().splitlines():
        if re.match(r"^\s*# -- ", line):
            documented = True
            continue
        match = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, match.group(2))]
        if documented:
            keys.append(".".join(k for _, k in stack))
        documented = False
    return keys


def test_values_table_lists_every_documented_key() -> None:
    readme = (CHART / "README.md").read_text()
    keys = documented_keys()
    assert len(keys) > 40
    missing = [key for key in keys if f"| `{key}` |" not in readme]
    assert not missing, f"add to charts/kubejudge/README.md's values table: {missing}"
