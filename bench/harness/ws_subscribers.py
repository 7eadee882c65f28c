"""Websocket subscribers to the ``stock`` topic, in a process of their own
(``bench/run.py _ws URL KEY N``), time-stamping each event on arrival."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from typing import Any

from harness.common import PYTHON, ROOT, BenchError
from harness.events import event_time
from harness.servers import Server
from harness.stats import percentile


def ws_subscribers_main(argv: list[str]) -> int:
    """``bench/run.py _ws URL KEY N``: N websocket subscribers to the ``stock`` topic in one
    asyncio process. Prints READY once all are subscribed; each ``window START END`` line
    on stdin is answered with the latencies of the events created in [START, END) as one
    BENCH_JSON line; ``stop`` ends it."""
    import asyncio

    from websockets.asyncio.client import connect

    url, key, count = argv[0], argv[1], int(argv[2])
    arrivals: list[tuple[float, float]] = []

    async def subscriber(ready: asyncio.Event, counter: list[int]) -> None:
        async with connect(
            url, additional_headers={"Authorization": f"Api-Key {key}"}, max_queue=None
        ) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": ["stock"]}))
            while json.loads(await ws.recv()).get("type") != "subscribed":
                pass
            counter[0] += 1
            if counter[0] == count:
                ready.set()
            async for message in ws:
                received = time.time()
                envelope = json.loads(message)
                if envelope.get("type") == "stock.updated":
                    created = event_time(envelope)
                    if created is not None:
                        arrivals.append((created, received))

    async def main() -> None:
        ready, counter = asyncio.Event(), [0]
        tasks = []
        for _ in range(count):
            tasks.append(asyncio.ensure_future(subscriber(ready, counter)))
            await asyncio.sleep(0.005)
        await asyncio.wait_for(ready.wait(), 60)
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        cpu = time.process_time()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "stop":
                break
            start, end = float(line[1]), float(line[2])
            lat = sorted((r - c) * 1000 for c, r in arrivals if start <= c < end)
            # p99 per 5 s of event creation: a steady climb is a backlog, spikes are stalls.
            timeline = []
            for t in range(int(start), int(end) + 1, 5):
                part = sorted((r - c) * 1000 for c, r in arrivals if t <= c < t + 5)
                if part:
                    timeline.append(round(percentile(part, 99)))
            print(
                "BENCH_JSON "
                + json.dumps(
                    {
                        "count": len(lat),
                        "p50_ms": percentile(lat, 50),
                        "p99_ms": percentile(lat, 99),
                        "max_ms": lat[-1] if lat else float("nan"),
                        "cpu_s": time.process_time() - cpu,
                        "closed": sum(t.done() for t in tasks),
                        "p99_ms_per_5s": timeline,
                    }
                ),
                flush=True,
            )
        for task in tasks:
            task.cancel()

    # The subscribers share the machine with the server they measure: uvloop keeps the
    # instrument's own CPU (10,000 frames a second to parse) from crowding the server.
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
    return 0


class WsSubscribers:
    def __init__(self, server: Server, key: str, count: int) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                PYTHON,
                str(ROOT / "bench" / "run.py"),
                "_ws",
                server.base.replace("http", "ws") + "/ws/v1/events/",
                key,
                str(count),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if line.strip() != "READY":
            self.process.kill()
            raise BenchError(f"the websocket subscribers did not start: {line!r}")

    def window(self, start: float, end: float) -> dict[str, Any]:
        self.process.stdin.write(f"window {start} {end}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line.startswith("BENCH_JSON "):
            raise BenchError(f"the websocket subscribers answered {line!r}")
        return json.loads(line.split(" ", 1)[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.stdin.write("stop\n")
                self.process.stdin.flush()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
