"""How fast a burst gets real worker pods, on the real node (tests/node): the judge as the README
installs it (chart + examples/judgecluster.yaml), submissions through the api Service.

    make cluster-up && make images
    helm install kubejudge charts/kubejudge -n kubejudge --create-namespace \\
        --set images.operator.tag=dev --wait
    kubectl apply -n kubejudge -f examples/judgecluster.yaml
    .venv/bin/python bench/pod_scaling.py [--runs 3] [--burst 8]

Each run waits for the general pool to sleep at zero pods, sends a burst of Python submissions
that each hold a worker for --work-s seconds, and times from the first POST:
- first judging: a worker pod of the pool reports a submission in its heartbeat (it judges);
- all ready: as many pool pods Ready as the operator asked for at its peak;
- verdicts: every submission final.
Prints a table (median, min, max) and one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

from kubejudge_operator.resources.stores import REDIS_PORT
from kubernetes import client, config

from kubejudge.wellknown import API_PORT, GATEWAY_PORT

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kubejudge.languages import LANGUAGES  # noqa: E402
from tests.e2e.judge import Judge, busy_pods, service_ip  # noqa: E402
from tests.support.polling import wait_until  # noqa: E402

POLL_S = 0.05


def connect(args: argparse.Namespace) -> Judge:
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    secret = client.CoreV1Api(api_client).read_namespaced_secret("kubejudge-jwt", args.namespace)

    def address(component: str) -> str:
        return service_ip(api_client, args.namespace, f"{args.name}-{component}")

    return Judge(
        namespace=args.namespace,
        name=args.name,
        kubeconfig=args.kubeconfig,
        kubectl_bin="kubectl",
        api_client=api_client,
        api_url=f"http://{address('api')}:{API_PORT}",
        gateway_url=f"ws://{address('gateway')}:{GATEWAY_PORT}",
        redis_url=f"redis://{address('redis')}:{REDIS_PORT}/0",
        jwt_secret=base64.b64decode(secret.data["key"]).decode(),
    )


def one_run(judge: Judge, *, pool: str, burst: int, work_s: float) -> dict[str, float]:
    wait_until(
        lambda: judge.replicas(pool) == 0 and not judge.pods("worker", pool),
        timeout=600, interval=POLL_S, what="the pool asleep at zero pods",
    )  # fmt: skip
    python = next(i for i, language in LANGUAGES.items() if language.family == "python")
    body = {"source_code": f"import time\ntime.sleep({work_s})\nprint('ok')\n",
            "language_id": python}  # fmt: skip
    with judge.http("bench") as http:
        start = time.monotonic()
        tokens = [judge.submit(http, body) for _ in range(burst)]
        first_judging = all_ready = None
        peak_desired = 0
        while first_judging is None or all_ready is None:
            now = time.monotonic() - start
            if first_judging is None and busy_pods(judge.redis_url, pool):
                first_judging = now
            peak_desired = max(peak_desired, judge.status()["pools"][pool]["desired"])
            if (
                all_ready is None
                and peak_desired
                and (len(judge.ready_pods("worker", pool)) >= peak_desired)
            ):
                all_ready = now
            if now > 300:
                raise TimeoutError("no pods in 300 s")
            time.sleep(POLL_S)
        judge.wait_final(http, tokens, timeout_s=300)
        verdicts = time.monotonic() - start
    return {
        "first_judging_s": first_judging,
        "all_ready_s": all_ready,
        "verdicts_s": verdicts,
        "workers": peak_desired,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=str(ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--namespace", default="kubejudge")
    parser.add_argument("--name", default="judge", help="the JudgeCluster")
    parser.add_argument("--pool", default="general")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--work-s", type=float, default=3.0)
    args = parser.parse_args()
    judge = connect(args)
    runs = []
    for i in range(args.runs):
        run = one_run(judge, pool=args.pool, burst=args.burst, work_s=args.work_s)
        print(f"run {i + 1}: {run}", file=sys.stderr)
        runs.append(run)
    print(f"{'measure':<16}{'median':>10}{'min':>10}{'max':>10}")
    summary: dict[str, object] = {"bench": "pod_scaling", "runs": args.runs, "burst": args.burst}
    for key in ("first_judging_s", "all_ready_s", "verdicts_s", "workers"):
        values = [run[key] for run in runs]
        print(
            f"{key:<16}{statistics.median(values):>10.2f}{min(values):>10.2f}{max(values):>10.2f}"
        )
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
