"""SurrealDB's HNSW search against the exact scan, on the same vectors and queries.

Over one WebSocket session, into a fresh database: COUNT random unit vectors of DIMS
dimensions (normally distributed components: no clusters, so neighbours score close together,
the hard case for an approximate index), then the index embed-star defines
(`HNSW DIMENSION d DIST COSINE`, the engine's defaults otherwise), built in one statement and
timed. Then QUERIES random unit vectors, each asked
  exact   ORDER BY vector::similarity::cosine(...) DESC LIMIT 10 (every vector scored)
  knn ef  WHERE embedding <|10,EF|> $q, as embed-star's search asks (EF 40 is what it asks
          for ten hits)
and each knn answer's recall@10 against the exact one. Prints the medians.

Usage: surreal_hnsw.py HOST:PORT [--count 100000] [--dims 384] [--queries 30] [--ef 40,100,200]
"""
import argparse
import asyncio
import math
import random
import statistics
import time

from write_statements import Session, record


def unit(dims, rng):
    v = [rng.gauss(0, 1) for _ in range(dims)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--ef", default="40,100,200")
    args = parser.parse_args()
    rng = random.Random(7)
    session = await Session().open(args.host, "bench", "hnsw%d" % random.randint(0, 10**9))
    version = await session.call("version", [])
    await session.query("DEFINE TABLE repo SCHEMALESS")
    started = time.perf_counter()
    for start in range(0, args.count, 500):
        rows = [{"id": record("repo", i), "embedding": unit(args.dims, rng)} for i in range(start, min(args.count, start + 500))]
        await session.query("INSERT INTO repo $r RETURN NONE", {"r": rows})
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    await session.query("DEFINE INDEX embedding_hnsw ON repo FIELDS embedding HNSW DIMENSION %d DIST COSINE" % args.dims)
    built = time.perf_counter() - started
    print("%s: %d vectors of %d dims loaded in %.0f s, HNSW index built in %.0f s" % (version, args.count, args.dims, loaded, built), flush=True)

    efs = [int(e) for e in args.ef.split(",")]
    exact_ms, knn_ms, recalls = [], {ef: [] for ef in efs}, {ef: [] for ef in efs}
    for _ in range(args.queries):
        q = unit(args.dims, rng)
        started = time.perf_counter()
        exact = (await session.query(
            "SELECT VALUE id FROM (SELECT id, vector::similarity::cosine(embedding, $q) AS s FROM repo ORDER BY s DESC LIMIT 10)",
            {"q": q}))[-1]["result"]
        exact_ms.append((time.perf_counter() - started) * 1000)
        truth = {tuple(r.value) for r in exact}
        if len(truth) != 10:
            raise SystemExit("the exact scan answered %d ids, not 10" % len(truth))
        for ef in efs:
            started = time.perf_counter()
            found = (await session.query(
                "SELECT id, vector::distance::knn() AS d FROM repo WHERE embedding <|10,%d|> $q ORDER BY d" % ef, {"q": q}))[-1]["result"]
            knn_ms[ef].append((time.perf_counter() - started) * 1000)
            recalls[ef].append(len(truth & {tuple(r["id"].value) for r in found}) / 10)
    print("%d queries, top 10: exact scan %.0f ms (median)" % (args.queries, statistics.median(exact_ms)))
    for ef in efs:
        print("  knn ef %-4d recall@10 %.3f (min %.1f)  %.1f ms (median)" % (
            ef, statistics.mean(recalls[ef]), min(recalls[ef]), statistics.median(knn_ms[ef])))
    await session.query("REMOVE DATABASE %s" % session.database)
    await session.close()


if __name__ == "__main__":
    asyncio.run(main())
