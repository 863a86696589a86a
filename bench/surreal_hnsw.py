"""SurrealDB's HNSW search against the exact scan, on the same vectors and queries.

Over one WebSocket session, into a fresh database: COUNT unit vectors of DIMS dimensions, either
random (normally distributed components: no clusters, so neighbours score close together, the
hard case for an approximate index) or, with --model-url, the real model's vectors of seeded
repos' texts (`embed-star seed`; queries are texts of other seeded repos), then the index
embed-star defines
(`HNSW DIMENSION d DIST COSINE`, the engine's defaults otherwise), built in one statement and
timed. Then QUERIES random unit vectors, each asked
  exact   ORDER BY vector::similarity::cosine(...) DESC LIMIT 10 (every vector scored)
  knn ef  WHERE embedding <|10,EF|> $q, as embed-star's search asks (EF 40 is what it asks
          for ten hits)
and each knn answer's recall@10 against the exact one. Prints the medians.

Usage: surreal_hnsw.py HOST:PORT [--count 100000] [--dims 384] [--queries 30] [--ef 40,100,200]
                        [--model-url http://127.0.0.1:PORT --bin .build/release/embed-star]
"""
import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import tempfile
import time
import urllib.request

from write_statements import Session, record


def unit(dims, rng):
    v = [rng.gauss(0, 1) for _ in range(dims)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


class ModelVectors:
    """The real model's vectors (an OpenAI-compatible /v1/embeddings) of seeded repos' texts."""

    def __init__(self, url, binary, count):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "stars.json")
            subprocess.run([binary, "seed", "--count", str(count), "--format", "github", "--seed", "9", "--out", path],
                           check=True, stderr=subprocess.DEVNULL)
            with open(path) as file:
                repos = json.load(file)
        self.texts = ["passage: %s\n%s\nLanguage: %s\nTopics: %s" % (
            r["full_name"], r.get("description") or "", r.get("language") or "", ", ".join(r.get("topics") or [])) for r in repos]
        self.url = url
        self.next = 0

    def take(self, n, prefix=None):
        texts = self.texts[self.next:self.next + n]
        self.next += n
        if prefix:
            texts = [prefix + t.split("\n", 1)[1] for t in texts]
        body = json.dumps({"model": "multilingual-e5-small-q4", "input": texts}).encode()
        request = urllib.request.Request(self.url + "/v1/embeddings", data=body, headers={"Content-Type": "application/json"})
        return [d["embedding"] for d in json.loads(urllib.request.urlopen(request, timeout=600).read())["data"]]


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--ef", default="40,100,200")
    parser.add_argument("--model-url")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "embed-star"))
    args = parser.parse_args()
    rng = random.Random(7)
    model = ModelVectors(args.model_url, args.bin, args.count + args.queries) if args.model_url else None
    vectors = (lambda n: model.take(n)) if model else (lambda n: [unit(args.dims, rng) for _ in range(n)])
    session = await Session().open(args.host, "bench", "hnsw%d" % random.randint(0, 10**9))
    version = await session.call("version", [])
    await session.query("DEFINE TABLE repo SCHEMALESS")
    started = time.perf_counter()
    for start in range(0, args.count, 500):
        ids = range(start, min(args.count, start + 500))
        rows = [{"id": record("repo", i), "embedding": v} for i, v in zip(ids, vectors(len(ids)))]
        await session.query("INSERT INTO repo $r RETURN NONE", {"r": rows})
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    await session.query("DEFINE INDEX embedding_hnsw ON repo FIELDS embedding HNSW DIMENSION %d DIST COSINE" % args.dims)
    built = time.perf_counter() - started
    print("%s: %d %s vectors of %d dims loaded in %.0f s, HNSW index built in %.0f s" % (
        version, args.count, "model" if model else "random", args.dims, loaded, built), flush=True)

    efs = [int(e) for e in args.ef.split(",")]
    exact_ms, knn_ms, recalls = [], {ef: [] for ef in efs}, {ef: [] for ef in efs}
    queries = model.take(args.queries, prefix="query: ") if model else [unit(args.dims, rng) for _ in range(args.queries)]
    for q in queries:
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
