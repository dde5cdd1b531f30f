"""Gateway fan-out: one `kubejudge gateway` process, many sockets, a steady stream of events.

    .venv/bin/python bench/gateway_fanout.py [--sockets 5000] [--users 1000] [--rate 1000]
                                             [--seconds 10] [--clients 2] [--runs 3]

Each run starts a fresh local Redis and gateway, opens the sockets from `--clients` separate
client processes (so their CPU is not the gateway's), then publishes events through
`kubejudge.events.publish` on an open-loop schedule: every 10 ms the events due are sent,
each stamped with its *scheduled* time, so a stall is charged to latency rather than hidden
(coordinated omission). Users take events in turn, so every socket expects the same count.

Reported per run, and as the median of the runs: delivery latency p50/p99 from scheduled
publish to the client's receipt; the same for a probe process subscribed straight to Redis
(every 10th user's channel, no gateway), which shows how much of it is upstream of the
gateway (publisher, Redis, a busy machine); the gateway's own histogram (event creation to
socket write, as a bucket bound); the gateway's RSS per connection (RSS with all sockets open
minus idle RSS, over the socket count), the gateway's CPU share while publishing, and lost
and duplicate deliveries (both must be 0). Targets: p99 < 50 ms, < 30 KiB per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop
from kubejudge_dev import localservices
from redis.asyncio import BlockingConnectionPool, Redis
from websockets.asyncio.client import ClientConnection, connect

from kubejudge import auth, events, protocol

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.events import submission_state  # noqa: E402

SECRET = "bench-secret-0123456789abcdef-0123456789"
TICK_S = 0.01
CONNECT_CONCURRENCY = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="events published per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)  # internal: client index
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: Redis URL to probe
    args = parser.parse_args()
    _raise_fd_limit()
    if args.client is not None:
        return uvloop.run(client_process(args))
    if args.probe is not None:
        return uvloop.run(probe_process(args))
    results = [run_once(args, number) for number in range(1, args.runs + 1)]
    report(args, results)
    return 0 if all(r["lost"] == 0 and r["duplicates"] == 0 for r in results) else 1


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# The coordinating process: Redis, the gateway, the clients, the publisher.


def run_once(args: argparse.Namespace, number: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kubejudge-bench-") as state:
        redis_server = localservices.start_redis(Path(state) / "redis")
        gateway = _start_gateway(redis_server.url)
        clients: list[subprocess.Popen[str]] = []
        try:
            port = gateway[1]
            idle_rss = _rss(gateway[0].pid)
            clients = [_start_client(args, index, port) for index in range(args.clients)]
            clients.append(_start_probe(args, redis_server.url))
            for client in clients:  # each prints "ready" once all its sockets are open
                line = client.stdout.readline() if client.stdout else ""
                if line.strip() != "ready":
                    raise RuntimeError(f"a client failed to connect: {line!r}")
            time.sleep(1)  # let the gateway settle (late SUBSCRIBE replies, GC)
            open_rss = _rss(gateway[0].pid)
            cpu_before = _cpu_s(gateway[0].pid)
            started = time.monotonic()
            published = uvloop.run(publish(redis_server.url, args))
            cpu_share = (_cpu_s(gateway[0].pid) - cpu_before) / (time.monotonic() - started)
            outputs = [json.loads(c.communicate(timeout=120)[0].splitlines()[-1]) for c in clients]
            probe = outputs.pop()
            exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            for client in clients:
                if client.poll() is None:
                    client.kill()
            gateway[0].terminate()
            gateway[0].wait(timeout=30)
            redis_server.stop()
    latencies = sorted(ms for output in outputs for ms in output["latencies_ms"])
    expected = published * (args.sockets // args.users)
    result = {
        "run": number,
        "events_published": published,
        "deliveries": len(latencies),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "redis_p99_ms": _percentile(sorted(probe["latencies_ms"]), 0.99),
        "gateway_p99_le_ms": _histogram_bound(exposition, 0.99),
        "kib_per_connection": (open_rss - idle_rss) / 1024 / args.sockets,
        "gateway_cpu_share": cpu_share,
        "lost": expected - sum(o["received"] for o in outputs),
        "duplicates": sum(o["duplicates"] for o in outputs),
    }
    print(f"run {number}: " + json.dumps(result), file=sys.stderr, flush=True)
    return result


def _start_gateway(redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = localservices.free_port()
    env = {
        **os.environ,
        "KUBEJUDGE_REDIS_URL": redis_url,
        "KUBEJUDGE_JWT_SECRET": SECRET,
        "KUBEJUDGE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kubejudge.cli", "gateway", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                time.sleep(0.5)
                return process, port
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise TimeoutError("the gateway did not become ready within 30 s")


def _start_probe(args: argparse.Namespace, redis_url: str) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--probe", redis_url, "--users", str(args.users),
            "--rate", str(args.rate), "--seconds", str(args.seconds)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def _start_client(args: argparse.Namespace, index: int, port: int) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--client", str(index), "--port", str(port),
            "--clients", str(args.clients), "--sockets", str(args.sockets),
            "--users", str(args.users), "--rate", str(args.rate),
            "--seconds", str(args.seconds)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def scheduled_token(seq: int, scheduled_ns: int) -> str:
    """An event's token carries its sequence number and schedule, so receivers can time it."""
    return f"bench-{seq}-{scheduled_ns}"


def schedule_of(token: str) -> tuple[int, int]:
    _, seq, scheduled_ns = token.split("-")
    return int(seq), int(scheduled_ns)


async def publish(redis_url: str, args: argparse.Namespace) -> int:
    """Publish `rate` events a second for `seconds`, user after user, on a fixed schedule."""
    # Publishes due in one tick go out concurrently, over at most 32 connections.
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=32))
    total = int(args.rate * args.seconds)
    start_ns = time.time_ns()
    sent = 0
    try:
        while sent < total:
            due = min(total, int((time.time_ns() - start_ns) / 1e9 * args.rate) + 1)
            batch = []
            for seq in range(sent, due):
                scheduled_ns = start_ns + int(seq * 1e9 / args.rate)
                token = scheduled_token(seq, scheduled_ns)
                event = protocol.Event(type="verdict", token=token, data=submission_state(token))
                batch.append(
                    events.publish(
                        redis, user_id=f"user-{seq % args.users}", event=event, history_length=100
                    )
                )
            await asyncio.gather(*batch)
            sent = due
            next_tick = start_ns / 1e9 + sent / args.rate
            await asyncio.sleep(max(0.0, min(TICK_S, next_tick - time.time())))
    finally:
        await redis.aclose()
    return sent


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _histogram_bound(exposition: str, fraction: float) -> float:
    """The gateway's own view (event creation to socket write): the upper bound, in ms, of
    the histogram bucket holding the given quantile of live deliveries."""
    buckets = []
    for line in exposition.splitlines():
        if line.startswith("kubejudge_gateway_delivery_latency_seconds_bucket"):
            bound = line.partition('le="')[2].partition('"')[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= fraction * total:
            return bound * 1000
    return float("nan")


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def report(args: argparse.Namespace, results: list[dict[str, float]]) -> None:
    keys = ["p50_ms", "p99_ms", "max_ms", "redis_p99_ms", "gateway_p99_le_ms",
            "kib_per_connection", "gateway_cpu_share"]  # fmt: skip
    header = (
        f"{'run':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'redis p99':>9} {'gw p99≤':>8} "
        f"{'KiB/conn':>9} {'cpu':>6} "
    )
    print(f"gateway fan-out: {args.sockets} sockets, {args.users} users, {args.rate} events/s "
          f"for {args.seconds:g} s, {args.clients} client processes")  # fmt: skip
    print(header + f"{'lost':>6} {'dups':>6}")
    for r in results:
        print(f"{r['run']:>4} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.1f} "
              f"{r['redis_p99_ms']:>9.2f} {r['gateway_p99_le_ms']:>8g} "
              f"{r['kib_per_connection']:>9.1f} {r['gateway_cpu_share']:>6.0%} "
              f"{r['lost']:>6} {r['duplicates']:>6}")  # fmt: skip
    medians = {key: statistics.median(r[key] for r in results) for key in keys}
    print(f"{'med':>4} {medians['p50_ms']:>8.2f} {medians['p99_ms']:>8.2f} "
          f"{medians['max_ms']:>8.1f} {medians['redis_p99_ms']:>9.2f} "
          f"{medians['gateway_p99_le_ms']:>8g} {medians['kib_per_connection']:>9.1f} "
          f"{medians['gateway_cpu_share']:>6.0%}")  # fmt: skip
    summary = {
        "bench": "gateway_fanout",
        "sockets": args.sockets,
        "users": args.users,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "runs": len(results),
        **{f"median_{key}": round(value, 3) for key, value in medians.items()},
        "lost": sum(r["lost"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "targets_met": medians["p99_ms"] < 50 and medians["kib_per_connection"] < 30,
    }
    print(json.dumps(summary))


# The probe: straight from Redis pub/sub, no gateway in between.


async def probe_process(args: argparse.Namespace) -> int:
    redis = Redis.from_url(args.probe)
    pubsub = redis.pubsub()
    users = range(0, args.users, 10)
    await pubsub.subscribe(*(protocol.user_channel(f"user-{n}") for n in users))
    expected = int(args.rate * args.seconds) // args.users * len(users)
    latencies: list[float] = []
    gc.freeze()
    gc.disable()
    print("ready", flush=True)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.seconds + 30):
            while len(latencies) < expected:
                message = await pubsub.get_message(timeout=None)
                if message is None or message["type"] != "message":
                    continue
                _, event = events.parse_live(message["data"])
                _, scheduled_ns = schedule_of(event.token)
                latencies.append(time.time_ns() / 1e6 - scheduled_ns / 1e6)
    print(json.dumps({"latencies_ms": latencies}), flush=True)
    await pubsub.aclose()
    await redis.aclose()
    return 0


# A client process: its share of the sockets, and what they receive.


async def client_process(args: argparse.Namespace) -> int:
    mine = range(args.client, args.sockets, args.clients)
    expected = int(args.rate * args.seconds) // args.users
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    latencies: list[float] = []
    stats = {"received": 0, "duplicates": 0}

    async def open_socket(n: int) -> ClientConnection:
        user = f"user-{n % args.users}"
        token = auth.issue(secret=SECRET, user_id=user)
        async with limit:
            socket = await connect(
                f"ws://127.0.0.1:{args.port}/ws?token={token}", compression=None, open_timeout=60
            )
            await socket.recv()  # welcome: subscribed and live
        return socket

    async def consume(socket: ClientConnection) -> None:
        seen: set[int] = set()
        while len(seen) < expected:
            message = json.loads(await socket.recv())
            seq, scheduled_ns = schedule_of(message["data"]["token"])
            latencies.append(time.time_ns() / 1e6 - scheduled_ns / 1e6)
            if seq in seen:
                stats["duplicates"] += 1
            else:
                seen.add(seq)
                stats["received"] += 1

    sockets = await asyncio.gather(*(open_socket(n) for n in mine))
    # The clients are the measuring instrument: a collector pause over their thousands of
    # sockets would be charged to the gateway's latency, so they collect nothing meanwhile.
    gc.freeze()
    gc.disable()
    print("ready", flush=True)
    consumers = [asyncio.create_task(consume(socket)) for socket in sockets]
    await asyncio.wait(consumers, timeout=args.seconds + 30)
    for consumer in consumers:
        consumer.cancel()
    print(json.dumps({"latencies_ms": [round(v, 3) for v in latencies], **stats}), flush=True)
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
