"""A real Prometheus (Debian's, 2.42) on loopback scraping the judge's pods the way the chart's
monitors describe them, with the chart's alert rules loaded.

Why file_sd and not a Prometheus built from its Go module with Kubernetes discovery: the build
needs Prometheus's source and its web UI assets fetched and compiled on every fresh machine (a
long, large build for CI's 90 minutes), while what the chart claims is in the monitors' selectors,
ports, paths and labels, which tests/e2e/scrape.py reproduces from the rendered objects. A thread
rewrites the target files from the live pod list every half second, so worker pods that come
and go with scaling are scraped within about a second of getting an address.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubejudge_dev.dashboard.prometheus import Prometheus
from kubejudge_dev.localservices import free_port
from kubernetes import client
from support.polling import wait_until

from tests.e2e.scrape import ScrapeJob, prometheus_config, scrape_jobs, targets

PROMETHEUS = "/usr/bin/prometheus"  # Debian's package (scripts/install-system-deps.sh)
INTERVAL = "1s"
INTERVAL_S = 1.0
REFRESH_S = 0.5


class Scraper:
    """The running Prometheus: its URL, its API, and the rules it evaluates."""

    def __init__(self, url: str, rule_groups: list[dict[str, Any]]) -> None:
        self.url = url
        self.api = Prometheus(url)
        self.rule_groups = rule_groups
        self.interval_s = INTERVAL_S

    def ready(self) -> bool:
        """Prometheus answers 503 until its storage is open, then 200 on /-/ready."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == httpx.codes.OK
        except httpx.TransportError:
            return False

    def up_targets(self) -> list[dict[str, Any]]:
        return [t for t in self.api.get("/api/v1/targets")["activeTargets"] if t["health"] == "up"]


def _listing(api_client: client.ApiClient) -> dict[str, list[dict[str, Any]]]:
    core = client.CoreV1Api(api_client)
    serialize = api_client.sanitize_for_serialization
    return {
        "pods": serialize(core.list_pod_for_all_namespaces().items),
        "services": serialize(core.list_service_for_all_namespaces().items),
        "endpoints": serialize(core.list_endpoints_for_all_namespaces().items),
    }


def _write_if_changed(path: Path, content: str) -> None:
    if path.exists() and path.read_text() == content:
        return
    staged = path.with_suffix(".tmp")  # file_sd reads only *.json: the rename is atomic
    staged.write_text(content)
    staged.replace(path)


def _refresh(jobs: list[ScrapeJob], sd_dir: Path, api_client: client.ApiClient) -> None:
    listing = _listing(api_client)
    for job in jobs:
        groups = targets(job, **listing)
        _write_if_changed(sd_dir / job.sd_file, json.dumps(groups, indent=1, sort_keys=True))


@contextlib.contextmanager
def scraping(
    rendered: list[dict[str, Any]], api_client: client.ApiClient, *, log: Path
) -> Iterator[Scraper]:
    """Prometheus scraping what the rendered monitors select, until the context ends."""
    jobs = scrape_jobs(rendered)
    assert jobs, "the rendered chart has no PodMonitor or ServiceMonitor"
    (rule,) = [o for o in rendered if o["kind"] == "PrometheusRule"]
    with tempfile.TemporaryDirectory(prefix="kubejudge-prometheus-") as tmp:
        home = Path(tmp)
        sd_dir = home / "sd"
        sd_dir.mkdir()
        (home / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        config = prometheus_config(
            jobs, sd_dir=str(sd_dir), rule_files=[str(home / "rules.yaml")], interval=INTERVAL
        )
        (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        _refresh(jobs, sd_dir, api_client)
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    PROMETHEUS, f"--config.file={home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d",
                ],
                stdout=out, stderr=subprocess.STDOUT, env={"PATH": os.environ["PATH"]},
            )  # fmt: skip
        stop = threading.Event()

        def refresh_forever() -> None:
            while not stop.wait(REFRESH_S):
                with contextlib.suppress(Exception):  # the next round tries again
                    _refresh(jobs, sd_dir, api_client)

        refresher = threading.Thread(target=refresh_forever, name="file-sd", daemon=True)
        refresher.start()
        scraper = Scraper(f"http://127.0.0.1:{port}", rule["spec"]["groups"])
        try:
            wait_until(
                lambda: process.poll() is None and scraper.ready(),
                timeout=30, interval=0.2, what="Prometheus answering",
            )  # fmt: skip
            yield scraper
        finally:
            stop.set()
            refresher.join()
            scraper.api.close()
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
