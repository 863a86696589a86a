"""What the lost-write guards' check of the count indexes costs on SurrealDB (2.x runs it).

  surreal_index_check.py URL [--count 100000] [--dims 384] [--samples 2]

URL is a dev server of scripts/services (http://127.0.0.1:PORT). Fills a fresh database with
COUNT repos, nine in ten holding a DIMS-dimension vector of one model, with the index `stats`
counts from, then times each way of counting them SAMPLES times: from the index alone (what
`stats` reads), and record by record without the index (what the check adds: its cost decides
how often the fleet runs the check, at most a fiftieth of the time).
"""
import argparse
import base64
import random
import time
import urllib.request
import uuid

import cbor2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args()
    database = "ixcheck" + uuid.uuid4().hex[:8]

    def query(sql, variables=None):
        request = urllib.request.Request(args.url + "/rpc", data=cbor2.dumps({"id": 1, "method": "query", "params": [sql, variables or {}]}), headers={
            "Content-Type": "application/cbor", "Accept": "application/cbor", "surreal-ns": "bench", "surreal-db": database,
            "Authorization": "Basic " + base64.b64encode(b"root:root").decode()})
        reply = cbor2.loads(urllib.request.urlopen(request, timeout=600).read())
        if "error" in reply:
            raise SystemExit(f"surreal_index_check: {reply['error']}")
        for result in reply["result"]:
            if result.get("status") != "OK":
                raise SystemExit(f"surreal_index_check: {result}")
        return reply["result"][-1]["result"]

    query("DEFINE INDEX embed_star_model ON repo FIELDS embedding_model")
    for start in range(0, args.count, 1000):
        rows = [{"id": cbor2.CBORTag(8, ["repo", i]), "full_name": f"o/p{i}", "description": "a library for things " * 5}
                for i in range(start, min(args.count, start + 1000))]
        for row in rows:  # nine in ten hold a vector; the others have no such fields (NONE)
            if row["id"].value[1] % 10:
                row["embedding_model"], row["embedding"] = "m@384", [random.random() for _ in range(args.dims)]
        query("INSERT INTO repo $rows RETURN NONE", {"rows": rows})
    ways = [("from the index (stats)", "RETURN (SELECT count() FROM repo WHERE embedding_model = 'm@384' GROUP ALL)[0].count"),
            ("record by record, grouped by model (the check)",
             "RETURN (SELECT embedding_model, count() AS n FROM repo WITH NOINDEX WHERE embedding_model != NONE GROUP BY embedding_model)")]
    for label, sql in ways:
        times, counted = [], None
        for _ in range(args.samples):
            started = time.monotonic()
            counted = query(sql)
            times.append((time.monotonic() - started) * 1000)
        print(f"{args.count} repos, {args.dims} dims, {label}: {min(times):.0f}-{max(times):.0f} ms, counted {counted}")
    query(f"REMOVE DATABASE {database}")


if __name__ == "__main__":
    main()
