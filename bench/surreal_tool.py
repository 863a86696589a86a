"""Direct SurrealDB work for bench/surreal-store, over the dev server's HTTP /rpc.

  seed URL DB FILE PENDING MODEL   insert the repos of FILE (JSON) into DB; all but PENDING of
                                   them look embedded by MODEL (vector, hash, no queue entry)
  raw-writes URL DB COUNT DIMS     the engine's own write rate: batched UPDATEs of COUNT repos'
                                   vectors, 100 per request over one WebSocket session, no
                                   embed-star involved
  hnsw-verified URL DB             whether the store's vector index was built and checked
  knn-ms URL DB                    milliseconds of one query through the vector index (a stored
                                   vector's 10 nearest): SurrealDB 3.x scans the vectors its
                                   background task has not yet put in the index's graph
"""
import base64
import json
import random
import sys
import time
import urllib.request

import cbor2

BATCH = 500


def rpc(url, db, method, params):
    request = urllib.request.Request(url + "/rpc", data=cbor2.dumps({"id": 1, "method": method, "params": params}), headers={
        "Content-Type": "application/cbor", "Accept": "application/cbor", "surreal-ns": "bench", "surreal-db": db,
        "Authorization": "Basic " + base64.b64encode(b"root:root").decode()})
    reply = cbor2.loads(urllib.request.urlopen(request, timeout=600).read())
    if "error" in reply:
        raise SystemExit("rpc error: %s" % reply["error"])
    for statement in reply["result"]:
        if statement["status"] != "OK":
            raise SystemExit("statement error: %s" % statement["result"])
    return reply["result"]


def record_id(text):
    table, _, key = text.partition(":")
    return cbor2.CBORTag(8, [table, key])


def seed(url, db, path, pending, model):
    repos = json.load(open(path))
    for start in range(0, len(repos), BATCH):
        chunk = []
        for repo in repos[start:start + BATCH]:
            repo = dict(repo)
            repo["id"] = record_id(repo["id"])
            chunk.append(repo)
        rpc(url, db, "query", ["INSERT INTO repo $r RETURN NONE", {"r": chunk}])
    done = [record_id(repo["id"]) for repo in repos[pending:]]
    vector = [random.random() for _ in range(16)]
    for start in range(0, len(done), BATCH):
        ids = done[start:start + BATCH]
        rpc(url, db, "query", [
            "UPDATE $ids SET embedding = $v, embedding_model = $m, embedding_hash = 'bench' RETURN NONE;"
            "DELETE (SELECT VALUE id FROM embed_queue WHERE repo INSIDE $ids) RETURN NONE;",
            {"ids": ids, "v": vector, "m": model}])


def raw_writes(url, db, count, dims, quiet=False):
    """The engine's rate for per-row UPDATEs of COUNT vectors, 100 per request, over one
    WebSocket session as embed-star holds one (write_statements.py)."""
    import asyncio
    import write_statements
    seconds_per_write = 1 / asyncio.run(write_statements.writes_per_second(url.split("://", 1)[1], "raw", count, dims, database=db))
    result = {"writes": count, "seconds": count * seconds_per_write, "writes_per_second": 1 / seconds_per_write}
    if not quiet:
        print(json.dumps(result))
    return result


def hnsw_verified(url, db):
    """Whether the store's vector index was built and checked (embed_star_meta:hnsw)."""
    answer = rpc(url, db, "query", ["SELECT VALUE verified FROM ONLY embed_star_meta:hnsw"])
    print("true" if answer and answer[-1].get("result") is True else "false")


def knn_ms(url, db):
    vector = rpc(url, db, "query", ["SELECT VALUE embedding FROM repo WHERE embedding != NONE LIMIT 1"])[-1]["result"][0]
    started = time.time()
    rpc(url, db, "query", ["SELECT id, vector::distance::knn() AS distance FROM repo WHERE embedding <|10,100|> $q ORDER BY distance",
                           {"q": vector}])
    print("%.0f" % ((time.time() - started) * 1000))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "seed":
        seed(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif command == "raw-writes":
        raw_writes(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif command == "hnsw-verified":
        hnsw_verified(sys.argv[2], sys.argv[3])
    elif command == "knn-ms":
        knn_ms(sys.argv[2], sys.argv[3])
