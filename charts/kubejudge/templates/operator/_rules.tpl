{{/*
The operator's namespaced permissions, one rule per reason, exactly the calls that
operator/kubejudge_operator/ makes (kube.py, reconcile.py, autoscaler.py, and kopf's watches of
the resource and of the children it restores). tests/cluster/test_chart.py runs the operator
under this identity and fails on any 403.
*/}}
{{- define "kubejudge.operatorRules" -}}
# kopf watches JudgeClusters and patches them (finalizer, progress annotations); the restorer
# reads a deleted child's owner.
- apiGroups: [kubejudge.dev]
  resources: [judgeclusters]
  verbs: [get, list, watch, patch]
# The autoscaler's report: per-pool backlog, busy, desired, current, conditions.
- apiGroups: [kubejudge.dev]
  resources: [judgeclusters/status]
  verbs: [patch]
# Children, applied server-side (create + patch), pruned when the spec drops them (delete) and
# watched (list + watch) so a hand-deleted one comes back. `get` on Deployments: readiness.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
# The autoscaler resizes worker pools through /scale only.
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [get, patch]
# The managed PostgreSQL's password is created once; external Redis/PostgreSQL URLs are read
# from the Secrets the spec names (urlSecretRef).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create]
# Busy worker pods get a high controller.kubernetes.io/pod-deletion-cost before a scale-down.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, patch]
# kopf's handler events and the autoscaler's ScaledUp/ScaledDown events.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
