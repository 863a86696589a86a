"""A database filled before embed-star's first start, and that start killed half-way.

  preexisting.py --bin BIN --store surreal|sqlite [--count 100000] [--instances 1]

1. A collector fills the store with COUNT repos before embed-star ever ran (SurrealDB: plain
   INSERTs into `repo`, no embed-star schema; SQLite: `embed-star import`).
2. `embed-star backfill` (mock provider, 384 dimensions) starts, INSTANCES of them at once, and
   all are killed (SIGKILL) once half the repos hold a vector.
3. `status` is compared with a direct count of stored vectors of the model.
4. `backfill` again, to the end; then every repo must hold a vector of the model, and `status`
   must equal the direct count.
Prints each step with its figures; exits 1 when a check fails.
"""
import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import surreal_tool  # noqa: E402

MODEL = "mock/mock-embed@384"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--store", choices=["surreal", "sqlite"], required=True)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=1)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="embed-star-preexisting-")
    surreal = "http://" + os.environ.get("EMBED_STAR_SURREAL", "")
    db = "pre%d" % os.getpid()
    seed = os.path.join(work, "repos.json")
    subprocess.run([args.bin, "seed", "--count", str(args.count), "--out", seed], check=True, stderr=subprocess.DEVNULL)

    config = os.path.join(work, "plugins.yaml")
    with open(config, "w") as f:
        f.write("provider: mock\nstore: %s\nmonitoring: {enabled: false}\n" % args.store)
        f.write("pipeline: {batch_size: 100, parallel_workers: 4, poll_interval_ms: 1000, lease_seconds: 20}\n")
        f.write("providers:\n  mock: {dimensions: 384}\nstores:\n")
        if args.store == "surreal":
            f.write("  surreal: {url: \"ws://%s\", namespace: bench, database: \"%s\", pool_size: 4}\n" % (os.environ["EMBED_STAR_SURREAL"], db))
        else:
            f.write("  sqlite: {path: %s}\n" % os.path.join(work, "stars.sqlite"))

    def run(*arguments):
        out = subprocess.run([args.bin, *arguments, "--config", config], capture_output=True, text=True, cwd=work,
                             env={**os.environ, "LOG_LEVEL": "error"})
        if out.returncode != 0:
            raise SystemExit("embed-star %s failed (%d): %s" % (" ".join(arguments), out.returncode, out.stderr[-2000:]))
        return out.stdout

    def progress():
        """Repos whose model field names the model (an index lookup, cheap enough to poll)."""
        if args.store == "surreal":
            result = surreal_tool.rpc(surreal, db, "query", [
                "RETURN (SELECT count() FROM repo WHERE embedding_model = $m GROUP ALL)[0].count ?? 0", {"m": MODEL}])
            return result[-1]["result"]
        return direct()[1]

    def direct():
        """(repos, repos holding a vector of the model), read from the store itself."""
        if args.store == "surreal":
            result = surreal_tool.rpc(surreal, db, "query", [
                "RETURN [(SELECT count() FROM repo GROUP ALL)[0].count ?? 0, "
                "(SELECT count() FROM repo WHERE embedding_model = $m AND array::len(embedding) = 384 GROUP ALL)[0].count ?? 0]",
                {"m": MODEL}])
            return tuple(result[-1]["result"])
        with sqlite3.connect(os.path.join(work, "stars.sqlite"), timeout=30) as connection:
            return connection.execute(
                "SELECT count(*), (SELECT count(*) FROM repo r JOIN repo_vector v ON v.repo = r.seq "
                "WHERE r.embedding_model = ? AND length(v.vector) = 384 * 4) FROM repo", (MODEL,)).fetchone()

    def status():
        return json.loads(run("status", "--json"))

    failures = []

    def check(what, ok):
        print("  %s: %s" % ("ok" if ok else "FAILED", what))
        if not ok:
            failures.append(what)

    started = time.perf_counter()
    if args.store == "surreal":
        repos = json.load(open(seed))
        for start in range(0, len(repos), 1000):
            chunk = [dict(repo, id=surreal_tool.record_id(repo["id"])) for repo in repos[start:start + 1000]]
            surreal_tool.rpc(surreal, db, "query", ["INSERT INTO repo $r RETURN NONE", {"r": chunk}])
    else:
        # SQLite's collector is `embed-star import` of GitHub's starred-repositories JSON.
        starred = os.path.join(work, "starred.json")
        with open(starred, "w") as f:
            json.dump([{"id": repo["github_id"], "name": repo["name"], "full_name": repo["full_name"],
                        "description": repo.get("description"), "html_url": repo["url"], "stargazers_count": repo["stars"],
                        "language": repo.get("language"), "owner": repo["owner"], "private": repo["is_private"],
                        "topics": repo.get("topics", []), "created_at": repo["created_at"], "updated_at": repo["updated_at"]}
                       for repo in json.load(open(seed))], f)
        run("import", starred)
    total, embedded = direct()
    print("1. the collector stored %d repos before the first start (%.0f s); %d hold a vector" % (total, time.perf_counter() - started, embedded))

    started = time.perf_counter()
    processes = [subprocess.Popen([args.bin, "backfill", "--config", config], cwd=work, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(work, "first-%d.log" % i), "w"), env={**os.environ, "LOG_LEVEL": "notice"})
                 for i in range(args.instances)]
    while True:
        time.sleep(0.5)
        embedded = progress()
        if embedded >= total // 2 or any(p.poll() is not None for p in processes):
            break
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
    _, embedded = direct()
    print("2. %d first start(s) killed after %.0f s, with %d of %d repos holding a vector" % (
        args.instances, time.perf_counter() - started, embedded, total))
    check("the first start was killed before it finished", any(p.returncode == -signal.SIGKILL for p in processes) and embedded < total)

    report = status()
    _, embedded = direct()
    print("3. status: total %d, embedded %d, pending %d, failed %d; direct count: %d vectors of %s" % (
        report["total"], report["embedded"], report["pending"], report["failed"], embedded, MODEL))
    check("status embedded equals the direct count", report["embedded"] == embedded)
    check("status total equals the repos stored", report["total"] == total)
    check("status pending + embedded + failed = total", report["pending"] + report["embedded"] + report["failed"] == total)

    started = time.perf_counter()
    summary = run("backfill", "--json")
    seconds = time.perf_counter() - started
    print("4. second backfill: %s repos embedded in %.0f s" % (json.loads(summary)["summary"]["embedded"], seconds))
    total, embedded = direct()
    report = status()
    print("   status: total %d, embedded %d, pending %d, failed %d; direct count: %d of %d repos hold a vector of the model" % (
        report["total"], report["embedded"], report["pending"], report["failed"], embedded, total))
    check("every repo holds a vector of the model", embedded == total)
    check("status embedded equals the direct count", report["embedded"] == embedded)
    check("status pending is 0", report["pending"] == 0)
    if args.store == "surreal":
        surreal_tool.rpc(surreal, db, "query", ["REMOVE DATABASE IF EXISTS %s" % db, {}])
    if failures:
        print("FAILED: %s (logs in %s)" % ("; ".join(failures), work))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
