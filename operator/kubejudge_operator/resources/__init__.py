"""Pure builders of a JudgeCluster's children, as plain manifest dicts, one module per kind.

No I/O here: `reconcile` applies what `children.build_children` returns. Callers import each
name from the module that owns it: `meta` (names, labels, owner references), `config` (the
ConfigMap and the env every app pod reads), `pods` (the pod template the apps share),
`frontends` (api and gateway), `workers`, `stores` (the managed Redis and PostgreSQL),
`services`, `budgets`, `network` (the worker NetworkPolicy) and `children` (all of them).
"""
