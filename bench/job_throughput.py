#!/usr/bin/python3
"""Async job throughput, the memory job store against the Redis one (issue 16).

  job_throughput.py --binary build/actorserve --repository models/repository
                    [--jobs 2000] [--threads 8] [--nodes 1]

Starts a redis-server of its own (loopback, free port, no persistence), then
for each store an actorserve (digits; with --nodes 2 and Redis, two nodes
sharing the store, submissions spread over both), submits JOBS one-digit jobs
from THREADS threads (a keep-alive session each), then polls every job until
it finished. Prints one row per store: jobs/s submitted (202s over the
submission time) and jobs/s completed (jobs over the time from the first
submission to the last job seen finished), and the failures. Debian's
/usr/bin/python3 (requests).
"""
import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, args):
    process = subprocess.Popen([binary, "--port", "0", "--log-level", "warn", *args],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # "actorserve ready on http://HOST:PORT"
    if "ready on" not in line:
        process.kill()
        sys.exit(f"actorserve did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[-1]


def digit_body(repository):
    holdout = Path(repository).parent / "digits-holdout.jsonl"
    png = json.loads(holdout.read_text().splitlines()[0])["png"]
    return json.dumps({"instances": [{"image": png}]})


def run(urls, body, jobs, threads):
    ids, failures = [], []
    lock = threading.Lock()

    def submit(worker):
        session = requests.Session()
        url = urls[worker % len(urls)]
        for _ in range(worker, jobs, threads):
            answer = session.post(f"{url}/api/v1/models/digits/jobs", data=body,
                                  headers={"Content-Type": "application/json"})
            with lock:
                (ids if answer.status_code == 202 else failures).append(
                    answer.json().get("job_id", answer.status_code))

    started = time.monotonic()
    workers = [threading.Thread(target=submit, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    submitted = time.monotonic() - started

    def poll(worker):
        session = requests.Session()
        url = urls[(worker + 1) % len(urls)]  # read through the other node, if any
        for i in range(worker, len(ids), threads):
            while True:
                answer = session.get(f"{url}/api/v1/jobs/{ids[i]}")
                if answer.status_code != 202:
                    break
                time.sleep(0.005)
            if answer.json().get("status") != "succeeded":
                with lock:
                    failures.append(answer.text[:200])

    pollers = [threading.Thread(target=poll, args=(w,)) for w in range(threads)]
    for p in pollers:
        p.start()
    for p in pollers:
        p.join()
    completed = time.monotonic() - started
    return {"submitted_per_s": round(len(ids) / submitted),
            "completed_per_s": round(len(ids) / completed), "failures": len(failures)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=1)
    options = parser.parse_args()
    body = digit_body(options.repository)
    common = ["--model-repository", options.repository, "--max-jobs", "1000000"]
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", folder],
                                 stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            stores = {"memory": ([common], 1),
                      "redis": ([common + ["--job-store", "redis", "--redis-url",
                                           f"redis://127.0.0.1:{port}/0"]], options.nodes)}
            for name, (args, nodes) in stores.items():
                servers = [start_server(options.binary, args[0]) for _ in range(nodes)]
                try:
                    row = run([url for _, url in servers], body, options.jobs,
                              options.threads)
                    print(json.dumps({"store": name, "nodes": nodes, "jobs": options.jobs,
                                      "threads": options.threads, **row}), flush=True)
                finally:
                    for process, _ in servers:
                        process.terminate()
                        process.wait()
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
