"""The SurrealDB engine's cost for the statements a vector write can be made of, side by side.

Over one WebSocket session (what embed-star uses), each variant writes COUNT vectors, 100 per
request, into a fresh database:
  raw        per-row UPDATEs on a plain table: the engine's own limit
  schema     the same UPDATEs on embed-star's schema (its event and indexes on the repo table)
  loop       embed-star's write before 2026-12-02: one FOR over an array of objects, reading
             each queue entry, then UPDATE and DELETE
  generated  embed-star's write (SurrealStore.writeSQL) with quiet_writes off: per-row
             statements, each repo updated only if its queue entry was deleted as leased to
             the writer at the claimed revision
  schema-quiet     `schema` with the UPDATEs in the engine's import mode (no events for them)
  generated-quiet  embed-star's write as it runs by default (quiet writes)
  generated-quiet-if  the same with each UPDATE in an `IF $dN { ... }` block (before 2026-12-05)
  queue-floor      the least a separate queue table can cost: the quiet UPDATEs and an
                   unconditional DELETE of each entry (no lease or revision check)
  repo-lease       a design with no queue table: the lease kept on the repo record. Each
                   request leases its 100 repos (one UPDATE) and writes each vector only while
                   the lease and revision hold, all in import mode; finding the pending repos is
                   not measured (it would need an index on the repo table)
The variants with a queue must leave it empty and every repo with a vector, repo-lease every
repo with a vector, or the script fails.

Usage: write_statements.py HOST:PORT [--count 2000] [--dims 384,1536] [--rounds 2] [--bin PATH]
"""
import argparse
import asyncio
import os
import random
import subprocess
import sys
import time

import aiohttp
import cbor2

EPOCH = "d'1970-01-01T00:00:00Z'"
PER_REQUEST = 100


def record(table, key):
    return cbor2.CBORTag(8, [table, key])


class Session:
    """One signed-in WebSocket RPC session on one database."""

    async def open(self, host, namespace, database):
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect("ws://%s/rpc" % host, protocols=["cbor"], max_msg_size=0)
        self.id = 0
        await self.call("signin", [{"user": "root", "pass": "root"}])
        await self.call("use", [namespace, database])
        self.database = database
        return self

    async def call(self, method, params):
        self.id += 1
        await self.ws.send_bytes(cbor2.dumps({"id": self.id, "method": method, "params": params}))
        reply = cbor2.loads((await self.ws.receive()).data)
        if "error" in reply:
            raise SystemExit("%s failed: %s" % (method, reply["error"]))
        return reply["result"]

    async def query(self, sql, variables=None):
        results = await self.call("query", [sql, variables or {}])
        for result in results:
            if result["status"] != "OK":
                raise SystemExit("statement failed: %s\n%s" % (result["result"], sql[:300]))
        return results

    async def close(self):
        await self.ws.close()
        await self.http.close()


def per_row_updates(batch):
    lines, variables = ["BEGIN TRANSACTION"], {}
    for i, (repo, _, vector) in enumerate(batch):
        variables["r%d" % i], variables["v%d" % i] = repo, vector
        lines.append("UPDATE $r%d SET embedding = $v%d, embedding_model = 'raw', embedding_hash = 'h' RETURN NONE" % (i, i))
    return ";\n".join(lines + ["COMMIT TRANSACTION"]), variables


LOOP = """BEGIN TRANSACTION;
LET $now = time::now();
LET $before = (SELECT id, lease_owner, revision FROM $ws.q);
FOR $w IN $ws {
    LET $e = (SELECT lease_owner, revision FROM ONLY $w.q);
    IF $e != NONE AND $e.lease_owner = $owner {
        IF $e.revision = $w.rev {
            UPDATE $w.r SET embedding = $w.v, embedding_model = $w.m, embedding_hash = $w.h, embedding_generated_at = $now,
                embedding_attempts = 0, embedding_error = NONE RETURN NONE;
            DELETE $w.q;
        } ELSE {
            UPDATE $w.q SET lease_owner = NONE, lease_until = %s RETURN NONE;
        };
    };
};
RETURN $before;
COMMIT TRANSACTION""" % EPOCH


def loop(batch):
    return LOOP, {"owner": "o", "ws": [{"q": q, "r": r, "rev": 1, "m": "mock/x", "v": v, "h": "h"} for (r, q, v) in batch]}


def generated(batch, blocks=False):
    """The statement SurrealStore.writeSQL makes (same text for the same shape); `blocks`: each
    UPDATE in an `IF $dN { ... }` block instead of its own `WHERE $dN` (the shape before
    2026-12-05)."""
    lines, variables = ["BEGIN TRANSACTION", "LET $now = time::now()"], {"owner": "o"}
    for i, (repo, queued, vector) in enumerate(batch):
        variables.update({"q%d" % i: queued, "r%d" % i: repo, "n%d" % i: 1, "m%d" % i: "mock/x", "v%d" % i: vector, "h%d" % i: "h"})
        lines.append("LET $d%d = (DELETE $q%d WHERE lease_owner = $owner AND revision = $n%d RETURN BEFORE)" % (i, i, i))
    for i in range(len(batch)):
        fields = ("embedding = $v%d, embedding_model = $m%d, embedding_hash = $h%d, embedding_generated_at = $now, "
                  "embedding_attempts = 0, embedding_error = NONE" % (i, i, i))
        lines.append("IF $d%d { UPDATE $r%d SET %s RETURN NONE }" % (i, i, fields) if blocks
                     else "UPDATE $r%d SET %s WHERE $d%d RETURN NONE" % (i, fields, i))
    variables["qs"] = [queued for (_, queued, _) in batch]
    lines += ["LET $ok = array::flatten([%s]).id" % ", ".join("$d%d" % i for i in range(len(batch))),
              "LET $left = (SELECT id, lease_owner, revision FROM array::complement($qs, $ok))",
              "LET $moved = (SELECT VALUE id FROM $left WHERE lease_owner = $owner)",
              "IF array::len($moved) > 0 { UPDATE $moved SET lease_owner = NONE, lease_until = %s RETURN NONE }" % EPOCH,
              "RETURN { ok: $ok, left: $left }", "COMMIT TRANSACTION"]
    return ";\n".join(lines), variables


def quiet(statement):
    """VARIANT with the repo UPDATEs run in the engine's import mode (`OPTION IMPORT`: no events,
    field processing, live queries or table views for them)."""
    def variant(batch):
        sql, variables = statement(batch)
        lines = sql.split(";\n")
        first = next(i for i, line in enumerate(lines) if line.startswith(("UPDATE $r", "IF $d")))
        last = max(i for i, line in enumerate(lines) if line.startswith(("UPDATE $r", "IF $d")))
        lines[last + 1:last + 1] = ["OPTION IMPORT = false"]
        lines[first:first] = ["OPTION IMPORT"]
        return ";\n".join(lines), variables
    return variant


def queue_floor(batch):
    lines, variables = ["BEGIN TRANSACTION", "LET $now = time::now()"], {}
    for i, (repo, queued, vector) in enumerate(batch):
        variables.update({"q%d" % i: queued, "r%d" % i: repo, "v%d" % i: vector})
        lines.append("DELETE $q%d RETURN NONE" % i)
    lines.append("OPTION IMPORT")
    for i in range(len(batch)):
        lines.append("UPDATE $r%d SET embedding = $v%d, embedding_model = 'mock/x', embedding_hash = 'h', embedding_generated_at = $now, "
                     "embedding_attempts = 0, embedding_error = NONE RETURN NONE" % (i, i))
    return ";\n".join(lines + ["OPTION IMPORT = false", "COMMIT TRANSACTION"]), variables


def repo_lease(batch):
    lines = ["OPTION IMPORT", "BEGIN TRANSACTION", "LET $now = time::now()",
             "UPDATE $ids SET embed_lease = $owner, embed_until = $now + 1h, embed_revision = 1 "
             "WHERE embed_until = NONE OR embed_until < $now RETURN NONE", "COMMIT TRANSACTION", "BEGIN TRANSACTION"]
    variables = {"owner": "o", "ids": [repo for (repo, _, _) in batch]}
    for i, (repo, _, vector) in enumerate(batch):
        variables.update({"r%d" % i: repo, "v%d" % i: vector})
        lines.append("UPDATE $r%d SET embedding = $v%d, embedding_model = 'mock/x', embedding_hash = 'h', embedding_generated_at = $now, "
                     "embedding_attempts = 0, embedding_error = NONE, embed_lease = NONE, embed_until = NONE "
                     "WHERE embed_lease = $owner AND embed_revision = 1 RETURN NONE" % (i, i))
    return ";\n".join(lines + ["COMMIT TRANSACTION"]), variables


VARIANTS = {"raw": per_row_updates, "schema": per_row_updates, "loop": loop, "generated": generated,
            "schema-quiet": quiet(per_row_updates), "generated-quiet": quiet(generated),
            "generated-quiet-if": quiet(lambda batch: generated(batch, blocks=True)), "queue-floor": queue_floor,
            "repo-lease": repo_lease}
QUEUED = ("loop", "generated", "generated-quiet", "generated-quiet-if", "queue-floor")


def embed_star_schema(binary, host, database, dims):
    """Runs embed-star's migrations on DATABASE (`status` applies them)."""
    config = "/tmp/embed-star-write-statements-%s.yaml" % database
    with open(config, "w") as f:
        f.write('provider: mock\nstore: surreal\nmonitoring: {enabled: false}\nproviders:\n  mock: {dimensions: %d}\n'
                'stores:\n  surreal: {url: "ws://%s", namespace: bench, database: "%s"}\n' % (dims, host, database))
    subprocess.run([binary, "migrate", "--config", config], check=True, stdout=subprocess.DEVNULL, env={**os.environ, "LOG_LEVEL": "error"})
    os.unlink(config)


async def writes_per_second(host, name, count, dims, binary=None, database=None):
    """Writes COUNT vectors with variant NAME into a new database (or DATABASE, as it is)."""
    session = await Session().open(host, "bench", database or "ws%s%d_%d" % (name, dims, random.randint(0, 10**9)))
    if database is None and name == "raw":
        await session.query("DEFINE TABLE repo SCHEMALESS")
    elif database is None:
        embed_star_schema(binary, host, session.database, dims)
    ids = [record("repo", "r%d" % i) for i in range(count)]
    for start in range(0, count, 500):
        await session.query("INSERT INTO repo $r RETURN NONE", {"r": [
            {"id": i, "full_name": "o/%s" % i.value[1], "description": "d" * 80, "topics": ["a", "b"]} for i in ids[start:start + 500]]})
    if name in QUEUED:
        await session.query("UPDATE embed_queue SET lease_owner = 'o', lease_until = time::now() + 1h, revision = 1 RETURN NONE")
    vectors = [[random.random() for _ in range(dims)] for _ in range(PER_REQUEST)]
    requests = [VARIANTS[name]([(r, record("embed_queue", r.value[1]), vectors[j]) for j, r in enumerate(ids[s:s + PER_REQUEST])])
                for s in range(0, count, PER_REQUEST)]
    started = time.perf_counter()
    for sql, variables in requests:
        await session.query(sql, variables)
    rate = count / (time.perf_counter() - started)
    if name in QUEUED or name == "repo-lease":
        left = (await session.query("RETURN [count(SELECT id FROM embed_queue), count(SELECT id FROM repo WHERE embedding != NONE)]"))[-1]["result"]
        if name == "repo-lease":
            left[0] = 0  # no queue in that design (the events still made one)
        if left != [0, count]:
            raise SystemExit("%s left %s (queue entries, vectors), not [0, %d]" % (name, left, count))
    await session.close()
    return rate


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--dims", default="384,1536")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="raw,schema,loop,generated")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "embed-star"))
    args = parser.parse_args()
    names = args.variants.split(",")
    print("writes/s over one WebSocket session, %d vectors per variant, %d per request" % (args.count, PER_REQUEST))
    for dims in map(int, args.dims.split(",")):
        for _ in range(args.rounds):
            rates = {name: await writes_per_second(args.host, name, args.count, dims, args.bin) for name in names}
            print("%5d dims  " % dims + "  ".join("%s %5.0f (%3.0f%%)" % (name, rate, 100 * rate / rates[names[0]]) for name, rate in rates.items()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
