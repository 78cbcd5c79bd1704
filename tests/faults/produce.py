"""Concurrent producers in one process: `python produce.py URL GO_FILE FIRST THREADS KEYS PLAIN`.

Producers FIRST .. FIRST+THREADS-1 each run on a thread with an App (and connections) of its
own. Each opens the store; the process prints `ready` and waits for GO_FILE to exist, so that
every producer of every process starts at once. Each producer then enqueues each of the KEYS
unique keys (`key-0` ...) twice and PLAIN jobs without a key, in a shuffled order: one by one
(odd producers) or with enqueue_many in batches of 10 (even ones; a key at most once per
batch). The process prints one JSON line: [job id, unique key, created] per enqueue.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

from conveyor.model.job import NewJob

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from faults.support import producer

Answer = tuple[str, str | None, bool]


def produce(
    url: str, go: str, index: int, keys: int, plain: int, opened: threading.Barrier,
    out: list[Answer],
) -> None:  # fmt: skip
    """One producer's enqueues, once GO_FILE exists."""
    app = producer(url)
    try:
        app.jobs.counts()  # open the store before the start
        opened.wait()
        rng = random.Random(index)
        wanted: list[str | None] = [f"key-{k}" for k in range(keys)] * 2 + [None] * plain
        rng.shuffle(wanted)
        batch = 1 if index % 2 else 10
        pending: list[NewJob] = []

        def send() -> None:
            for handle in app.enqueue_many(pending):
                out.append((handle.id, handle.job.unique_key, handle.created))
            pending.clear()

        deadline = time.monotonic() + 60
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                raise TimeoutError("the start signal never came")
            time.sleep(0.001)
        for n, key in enumerate(wanted):
            if key is not None and any(job.unique_key == key for job in pending):
                send()
            options = {"unique_key": key} if key else {}
            pending.append(app.request("record", {"n": index * 100_000 + n}, **options))
            if len(pending) >= batch:
                send()
        send()
    finally:
        app.close()


def main() -> None:
    url, go, first, threads, keys, plain = sys.argv[1:7]
    answers: list[Answer] = []
    errors: list[BaseException] = []
    opened = threading.Barrier(int(threads) + 1, timeout=60)

    def run(index: int) -> None:
        try:
            produce(url, go, index, int(keys), int(plain), opened, answers)
        except BaseException as exc:
            errors.append(exc)
            opened.abort()
            raise

    workers = [threading.Thread(target=run, args=(int(first) + t,)) for t in range(int(threads))]
    for thread in workers:
        thread.start()
    opened.wait()  # every producer has opened the store
    print("ready", flush=True)
    for thread in workers:
        thread.join()
    if errors:
        sys.exit(f"{len(errors)} producer(s) failed: {errors!r}")
    print(json.dumps(answers), flush=True)


if __name__ == "__main__":
    main()
