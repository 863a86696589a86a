"""Claim latency on SurrealDB during a model change: 100,000 stale queue entries (repos another
model embedded) and a few new ones. Times embed-star's claim statement for new/changed repos
with the claim index (as shipped) and as the planner picks without the hint.

  claim-latency.py [--stale 100000] [--runs 20]      (EMBED_STAR_SURREAL from scripts/services)
"""
import argparse
import os
import re
import statistics
import sys
import time

import cbor2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import surreal_tool  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stale", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    url = "http://" + os.environ["EMBED_STAR_SURREAL"]
    db = "claims%d" % os.getpid()

    def q(sql, variables=None):
        return surreal_tool.rpc(url, db, "query", [sql, variables or {}])

    # The schema the store's migrations make for the queue (indexes as in Migrations.swift).
    migrations = open(os.path.join(HERE, "..", "Sources/Stores/Surreal/Store/Migrations.swift")).read()
    for index in re.findall(r'"(DEFINE INDEX IF NOT EXISTS embed_queue_\w+ ON \\\(Self.queue\) FIELDS [\w, ]+)"', migrations):
        q(index.replace("\\(Self.queue)", "embed_queue"))
    q("UPSERT embed_star_meta:queue SET model = 'B'")
    epoch = cbor2.CBORTag(12, [0, 0])
    for start in range(0, args.stale + 100, 2000):
        # The new entries sort after the stale ones (a model change queued the old repos first).
        rows = [{"id": cbor2.CBORTag(8, ["embed_queue", ("s%06d" if i < args.stale else "t%06d") % i]),
                 "repo": cbor2.CBORTag(8, ["repo", "r%d" % i]),
                 "stale": i < args.stale, "failed": False, "revision": 1, "attempts": 0, "had": "A",
                 "lease_until": epoch, "not_before": epoch} for i in range(start, min(start + 2000, args.stale + 100))]
        q("INSERT INTO embed_queue $rows RETURN NONE", {"rows": rows})

    store = open(os.path.join(HERE, "..", "Sources/Stores/Surreal/Store/SurrealStore.swift")).read()
    select = re.search(r"\(SELECT VALUE id FROM \\\(queue\) WITH INDEX embed_queue_claim WHERE stale = \\\(stale\) [^)]*\)", store).group(0)
    shipped = select.replace("\\(queue)", "embed_queue").replace("\\(stale)", "false")
    unhinted = shipped.replace(" WITH INDEX embed_queue_claim", "")
    for name, sql in (("claim index (shipped)", shipped), ("planner's choice (no hint)", unhinted)):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = q("LET $now = time::now(); RETURN " + sql, {"limit": 100})
            times.append((time.perf_counter() - started) * 1000)
        found = len(result[-1]["result"])
        print("%-28s p50 %6.0f ms  min %6.0f  max %6.0f  (%d of 100 new entries found, %d stale entries queued)" % (
            name, statistics.median(times), min(times), max(times), found, args.stale))
    baseline = []
    for _ in range(args.runs):
        started = time.perf_counter()
        q("RETURN 1")
        baseline.append((time.perf_counter() - started) * 1000)
    print("%-28s p50 %6.0f ms  (the dev server's cost of one request: HTTP, sign-in)" % ("RETURN 1", statistics.median(baseline)))
    q("REMOVE DATABASE IF EXISTS %s" % db)


if __name__ == "__main__":
    main()
