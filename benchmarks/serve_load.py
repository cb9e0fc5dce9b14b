"""Load test for ``propscan serve``: N concurrent clients against a real server for T seconds.

    python benchmarks/serve_load.py [--clients 50] [--duration 60] [--workers 2] [--queue 16]
                                    [--text examples/city-council-op-ed.txt] [--port 0] [--max-backoff 2]
                                    [--scenario analyze|slow-headers|large-bodies]

Scenarios besides the default (analyze): ``slow-headers`` opens --clients connections that send a
request line and then one header byte a second, never finishing (a "slowloris"), and
``large-bodies`` has --clients clients post 1.7 MB JSON bodies of 150,000 unknown keys in a loop.
Both measure what an ordinary client sees meanwhile: /healthz latency (p50, p95) polled every 50 ms,
and, for slow headers, how long the server kept those connections open.

Starts ``python -m propscan serve`` on 127.0.0.1 (a free port unless --port), waits for /healthz, then
runs the clients: each posts the article to /v1/analyze in a loop until the deadline, and on a 503
waits for Retry-After (at most --max-backoff seconds), as a well-behaved client does. Prints latency
percentiles of the 200s, throughput, and the count of every status code (expected: 200s and the
deliberate 503s of a full queue, nothing else), then stops the server. Loopback only; every loop is
bounded by the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, queue: int, timeout: float, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "propscan", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--queue", str(queue), "--timeout", str(timeout)]
    env = {k: v for k, v in os.environ.items() if k != "PROPSCAN_API_KEY"}
    # the log goes to a file, not a pipe nobody reads (a full pipe would stall the server)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(base: str, proc: subprocess.Popen, log, limit: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited with code {proc.returncode}:\n{log.read().decode(errors='replace')[-4000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /healthz within {limit:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def client(c: httpx.AsyncClient, body: dict, deadline: float, max_backoff: float,
                 latencies: list[float], statuses: collections.Counter) -> None:
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            r = await c.post("/v1/analyze", json=body, timeout=max(1.0, deadline - t0 + 30))
        except httpx.HTTPError as e:
            statuses[f"error {type(e).__name__}"] += 1
            await asyncio.sleep(0.1)
            continue
        statuses[r.status_code] += 1
        if r.status_code == 200:
            latencies.append(time.monotonic() - t0)
        elif r.status_code == 503:
            wait = min(float(r.headers.get("retry-after", "1") or 1), max_backoff, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(wait)


async def load(base: str, text: str, clients: int, duration: float, max_backoff: float):
    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits) as c:
        t0 = time.monotonic()
        deadline = t0 + duration
        await asyncio.gather(*(client(c, {"text": text}, deadline, max_backoff, latencies, statuses) for _ in range(clients)))
        elapsed = time.monotonic() - t0
    return latencies, statuses, elapsed


async def healthz_poll(c: httpx.AsyncClient, deadline: float, latencies: list[float], statuses: collections.Counter) -> None:
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            r = await c.get("/healthz", timeout=10)
            statuses[f"healthz {r.status_code}"] += 1
            latencies.append(time.monotonic() - t0)
        except httpx.HTTPError as e:
            statuses[f"healthz error {type(e).__name__}"] += 1
        await asyncio.sleep(0.05)


async def slow_headers(port: int, clients: int, duration: float) -> tuple[list[float], list[float], collections.Counter]:
    """Connections that never finish their headers; returns how long each stayed open, and /healthz."""
    closed_after: list[float] = []
    deadline = time.monotonic() + duration

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        t0 = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            while time.monotonic() < deadline:
                writer.write(b"X")  # one byte of a header that never ends
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        break  # the server closed it
                except asyncio.TimeoutError:
                    continue
        except (ConnectionError, OSError):
            pass
        closed_after.append(time.monotonic() - t0)
        writer.close()

    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        await asyncio.gather(*(one() for _ in range(clients)), healthz_poll(c, deadline, latencies, statuses))
    return closed_after, latencies, statuses


async def large_bodies(base: str, clients: int, duration: float) -> tuple[list[float], collections.Counter]:
    body = {"text": "A short text."} | {f"{i:x}": 0 for i in range(150_000)}  # 1.7 MB
    import json as _json

    raw = _json.dumps(body).encode()
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()

    async def poster(c: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            try:
                r = await c.post("/v1/analyze", content=raw, headers={"content-type": "application/json"}, timeout=30)
                statuses[f"large body {r.status_code}"] += 1
            except httpx.HTTPError as e:
                statuses[f"large body error {type(e).__name__}"] += 1

    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=clients + 1)) as c:
        await asyncio.gather(*(poster(c) for _ in range(clients)), healthz_poll(c, deadline, latencies, statuses))
    return latencies, statuses


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=16, help="server --queue (per worker)")
    ap.add_argument("--timeout", type=float, default=30.0, help="server --timeout")
    ap.add_argument("--text", type=Path, default=ROOT / "examples" / "city-council-op-ed.txt")
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--max-backoff", type=float, default=2.0, help="longest wait after a 503 (seconds)")
    ap.add_argument("--scenario", choices=("analyze", "slow-headers", "large-bodies"), default="analyze")
    args = ap.parse_args()
    if not (1 <= args.clients <= 1000 and 0 < args.duration <= 3600):
        raise SystemExit("--clients must be 1..1000 and --duration 0..3600 s")
    text = args.text.read_text(encoding="utf-8")
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"starting propscan serve on {base}: {args.workers} workers, queue {args.queue} per worker", flush=True)
    t0 = time.monotonic()
    log = tempfile.TemporaryFile()
    proc = start_server(port, args.workers, args.queue, args.timeout, log)
    try:
        wait_ready(base, proc, log)
        if args.scenario != "analyze":
            print(f"ready in {time.monotonic() - t0:.1f} s; {args.scenario}: {args.clients} clients for {args.duration:g} s", flush=True)
            if args.scenario == "slow-headers":
                closed, health, statuses = asyncio.run(slow_headers(port, args.clients, args.duration))
                if closed:
                    print(f"slow-header connections: {len(closed)}, closed by the server after "
                          f"p50 {pct(closed, 50):.1f} s, max {max(closed):.1f} s")
            else:
                health, statuses = asyncio.run(large_bodies(base, args.clients, args.duration))
            print("status codes: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
            print(f"/healthz meanwhile: p50 {1000 * pct(health, 50):.0f} ms, p95 {1000 * pct(health, 95):.0f} ms, "
                  f"max {1000 * max(health):.0f} ms ({len(health)} polls)")
            return
        print(f"ready in {time.monotonic() - t0:.1f} s; {args.clients} clients for {args.duration:g} s, "
              f"{len(text):,}-character article ({args.text.name})", flush=True)
        latencies, statuses, elapsed = asyncio.run(load(base, text, args.clients, args.duration, args.max_backoff))
    finally:
        stop_server(proc)
        log.close()
    ok = statuses.get(200, 0)
    print(f"\nrequests: {sum(statuses.values())} in {elapsed:.1f} s")
    print("status codes: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    print(f"throughput: {ok / elapsed:.2f} analyses/s (200s)")
    if latencies:
        print(f"latency of 200s: p50 {pct(latencies, 50):.2f} s, p95 {pct(latencies, 95):.2f} s, max {max(latencies):.2f} s")
    unexpected = {k: v for k, v in statuses.items() if k not in (200, 503)}
    if unexpected:
        print(f"UNEXPECTED: {unexpected}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
