"""What a database embedded long before costs embed-star's read side on SurrealDB.

  surreal_counts.py --bin BIN [--count 100000] [--samples 5]

Needs the dev server of scripts/services (EMBED_STAR_SURREAL). Fills a fresh database with COUNT
repos that already hold a 384-dimension vector of the mock model (inserted directly, as a
restored backup or an earlier embed-star left them), then times, on that database:
  1. `embed-star status --json` end to end (the counts and the vectors per model), SAMPLES times;
  2. the first claim, which sweeps every repo (nothing to queue) before it answers empty, and
     then the claim and `stats` medians (`embed-star-bench claims`).
Prints one line per figure; exits 1 when a count disagrees with the stored records.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import surreal_tool  # noqa: E402

MODEL = "mock/mock-embed@384"


def retried(call, attempts=10):
    """`call`, again after a transaction conflict (on 2.x the index the first claim defined is
    still being built in the background)."""
    for attempt in range(attempts):
        try:
            return call()
        except SystemExit as error:
            if "conflict" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="embed-star-counts-")
    address = os.environ["EMBED_STAR_SURREAL"]
    url, db = "http://" + address, "counts%d" % os.getpid()
    config = os.path.join(work, "plugins.yaml")
    with open(config, "w") as f:
        f.write("provider: mock\nstore: surreal\nmonitoring: {enabled: false}\n")
        f.write("providers:\n  mock: {dimensions: 384}\n")
        f.write("stores:\n  surreal: {url: \"ws://%s\", namespace: bench, database: \"%s\", pool_size: 4}\n" % (address, db))

    def run(*arguments, program=args.bin):
        started = time.perf_counter()
        out = subprocess.run([program, *arguments, "--config", config], capture_output=True, text=True,
                             env={**os.environ, "LOG_LEVEL": "error"})
        if out.returncode != 0:
            raise SystemExit("embed-star %s failed (%d): %s" % (" ".join(arguments), out.returncode, out.stderr[-2000:]))
        return out.stdout, (time.perf_counter() - started) * 1000

    run("migrate")  # the schema
    seed = os.path.join(work, "repos.json")
    subprocess.run([args.bin, "seed", "--count", str(args.count), "--out", seed], check=True, stderr=subprocess.DEVNULL)
    repos = json.load(open(seed))
    started = time.perf_counter()
    for start in range(0, len(repos), 500):
        chunk = []
        for repo in repos[start:start + 500]:
            repo = dict(repo, embedding=[random.random() for _ in range(384)], embedding_model=MODEL, embedding_hash="bench")
            repo["id"] = surreal_tool.record_id(repo["id"])
            chunk.append(repo)
        surreal_tool.rpc(url, db, "query", ["INSERT INTO repo $r RETURN NONE", {"r": chunk}])
    # As embed-star left them: no queue entries for repos that hold the model's vector.
    surreal_tool.rpc(url, db, "query", ["DELETE embed_queue RETURN NONE", {}])
    print("filled %d repos with vectors in %.0f s" % (args.count, time.perf_counter() - started), flush=True)

    times, report = [], None
    for _ in range(args.samples):
        out, ms = run("status", "--json")
        times.append(ms)
        report = json.loads(out)
    print("status --json: median %.0f ms (%.0f-%.0f), %d runs" % (statistics.median(times), min(times), max(times), len(times)))
    bench = os.path.join(os.path.dirname(args.bin), "embed-star-bench")
    if os.path.exists(bench):
        out, ms = run("claims", "--samples", str(args.samples), program=bench)
    else:  # a binary built before embed-star-bench: its hidden command
        out, ms = run("bench-claims", "--samples", str(args.samples))
    claims = json.loads(out)
    print("first claim (sweeps %d embedded repos, queues none): %.1f s" % (args.count, claims["claim_ms_max"] / 1000))
    print("claim median %.1f ms, stats median %.0f ms (%.0f-%.0f)" % (
        claims["claim_ms_median"], claims["stats_ms_median"], claims["stats_ms_min"], claims["stats_ms_max"]))
    stored = retried(lambda: surreal_tool.rpc(url, db, "query", [
        "RETURN (SELECT count() FROM repo WHERE embedding != NONE AND embedding_model = $m GROUP ALL)[0].count ?? 0", {"m": MODEL}])[-1]["result"])
    retried(lambda: surreal_tool.rpc(url, db, "query", ["REMOVE DATABASE IF EXISTS %s" % db, {}]))
    expected = {"total": args.count, "embedded": stored, "pending": args.count - stored, "coverage": {MODEL: stored}}
    found = {key: report[key] for key in expected}
    if found != expected:
        raise SystemExit("status said %s; the records say %s" % (found, expected))
    print("status matches the records: %d repos, %d vectors of %s" % (args.count, stored, MODEL))


if __name__ == "__main__":
    main()
