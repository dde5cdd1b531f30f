"""What the operator sets up once, before any handler runs."""

from __future__ import annotations

import logging

import kopf
import prometheus_client

from kubejudge_operator.kube import Kube
from kubejudge_operator.spec import GROUP


def configure(settings: kopf.OperatorSettings, memo: kopf.Memo) -> None:
    """kopf's storage and timeouts, our API client, and the /metrics server."""
    # Progress in annotations only: status belongs to the autoscaler's report.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.posting.level = logging.INFO
    # Notice a dead watch within a minute rather than hang (kopf#1276).
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 90
    memo.kube = Kube.connect()
    if memo.settings.operator_metrics_port:
        prometheus_client.start_http_server(memo.settings.operator_metrics_port)
