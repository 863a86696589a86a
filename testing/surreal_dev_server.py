#!/usr/bin/env python3
"""A small SurrealDB server for tests and the quick start, on the real engine.

PyPI's surrealdb-embedded holds the real SurrealDB 3 engine and PyPI's surrealdb 1.0.8 the real
SurrealDB 2.3 engine, neither with a network server. This puts whichever is installed in the
running Python on SurrealDB's endpoints, like `surreal start`:
  /rpc      WebSocket (subprotocol "cbor") and HTTP POST (application/cbor)
  /health   200 while the engine answers
  /version  the engine's version string
With --tls-cert and --tls-key it serves TLS only (wss://, https://), as a server behind a
certificate does. Every WebSocket connection and every HTTP request gets its own session, so authentication and
`use` are per connection, as on a real server. The 3.x engine keeps sessions itself (`attach`);
the 2.x binding has one session per engine handle, so for it the front keeps each client's
sign-in and `use` and switches the one handle between namespaces/databases (see SharedEngine). Usage:
  surreal_dev_server.py --bind 127.0.0.1:8000 --user root --pass root [mem:// | surrealkv://PATH]
"""
import argparse
import asyncio
import base64
import itertools
import os
import re
import time
import uuid

import cbor2
from aiohttp import WSMsgType, web

try:
    from surrealdb_embedded import AsyncEmbeddedDB
    ENGINE_MAJOR = 3
except ImportError:  # PyPI surrealdb 1.0.8: the SurrealDB 2.3 engine
    from surrealdb._surrealdb_ext import AsyncEmbeddedDB
    ENGINE_MAJOR = 2


def engine_version():
    """The engine's own version. The 2.x binding's `version` answers the binding's package
    version (surrealdb-1.0.7); the engine crate it was built from is named in the library."""
    if ENGINE_MAJOR == 3:
        return None
    import surrealdb._surrealdb_ext as ext
    with open(ext.__file__, "rb") as library:
        found = re.search(rb"surrealdb-core-(2\.\d+\.\d+)", library.read())
    if not found:
        raise SystemExit("cannot tell the SurrealDB engine version of %s" % ext.__file__)
    return "surrealdb-" + found.group(1).decode()


# EMBED_STAR_DEV_SERVER_TRACE=FILE: each query's start and end in FILE, with the server's pid
# (to find what was in flight when the 2.x engine panicked: started, never ended). Only the
# query text is written, not its parameters.
TRACE = open(os.environ["EMBED_STAR_DEV_SERVER_TRACE"], "a", buffering=1) if os.environ.get("EMBED_STAR_DEV_SERVER_TRACE") else None
TRACE_COUNT = itertools.count(1)


def trace_start(sql):
    if TRACE is None:
        return 0
    number = next(TRACE_COUNT)
    TRACE.write("%.3f %d start %d %s\n" % (time.time(), os.getpid(), number, " ".join(sql.split())[:400]))
    return number


def trace_end(number):
    if TRACE is not None:
        TRACE.write("%.3f %d end %d\n" % (time.time(), os.getpid(), number))


def error_reply(request_id, message, code=-32000):
    return cbor2.dumps({"id": request_id, "error": {"code": code, "message": message}})


class Engine:
    def __init__(self, url):
        self.db = AsyncEmbeddedDB(url)

    async def start(self, user, password):
        await self.db.connect()
        # The default session is the server's own: it defines the root user, nothing else.
        # DEFINE USER takes no parameters, so the name is checked and the password quoted.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", user):
            raise SystemExit("--user must be letters, digits and underscores")
        quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
        reply = await self.raw({"id": 0, "method": "query", "params": [
            "DEFINE USER OVERWRITE %s ON ROOT PASSWORD %s ROLES OWNER" % (user, quoted), {}]})
        if "error" in reply or reply["result"][0]["status"] != "OK":
            raise SystemExit("could not define the root user: %s" % reply)

    async def raw(self, request):
        # Shielded: a client that hangs up must not cancel a request the engine is running
        # (a dropped future aborts the 2.x engine mid-transaction; a real server finishes it).
        return cbor2.loads(await asyncio.shield(self.db.execute(cbor2.dumps(request))))

    async def call(self, session, method, params):
        return await self.raw({"id": 0, "method": method, "params": params, "session": session})

    async def attach(self):
        session = uuid.uuid4()
        await self.call(session, "attach", [])
        return session

    async def detach(self, session):
        try:
            await self.call(session, "detach", [])
        except Exception:
            pass

    async def forward(self, session, payload):
        """Runs one client request (CBOR bytes) in `session`; returns the CBOR reply."""
        try:
            request = cbor2.loads(payload)
        except Exception as error:
            return cbor2.dumps({"id": None, "error": {"code": -32700, "message": "Parse error: %s" % error}})
        if not isinstance(request, dict):
            return cbor2.dumps({"id": None, "error": {"code": -32600, "message": "Invalid request"}})
        if request.get("method") in ("attach", "detach"):
            return cbor2.dumps({"id": request.get("id"), "error": {"code": -32601, "message": "Method not found"}})
        request["session"] = session
        reply = await self.raw(request)
        reply.pop("session", None)
        return cbor2.dumps(reply)


class SharedEngine(Engine):
    """The 2.x engine: one session for all clients. Each client's sign-in, `use` and variables
    are kept here, and each query runs as `USE NS .. DB ..; <query>` with the first result
    dropped (a USE statement lasts for its query only), so clients on different databases run
    side by side. Of the data methods only `query` is served (all embed-star sends)."""

    class Session:
        def __init__(self):
            self.ns = self.db = None
            self.authenticated = False
            self.variables = {}

    def __init__(self, url):
        super().__init__(url)
        self.tokens = set()
        self.version = engine_version()

    async def start(self, user, password):
        await super().start(user, password)
        self.user, self.password = user, password

    async def attach(self):
        return SharedEngine.Session()

    async def detach(self, session):
        pass

    async def raw(self, request):
        if request.get("method") == "version":
            return {"id": request.get("id"), "result": self.version}
        return await super().raw(request)

    async def call(self, session, method, params):
        return cbor2.loads(await self.run(session, {"id": 0, "method": method, "params": params}))

    async def forward(self, session, payload):
        try:
            request = cbor2.loads(payload)
        except Exception as error:
            return error_reply(None, "Parse error: %s" % error, -32700)
        if not isinstance(request, dict):
            return error_reply(None, "Invalid request", -32600)
        return await self.run(session, request)

    async def run(self, session, request):
        request_id, method, params = request.get("id"), request.get("method"), list(request.get("params") or [])

        def ok(result=None):
            return cbor2.dumps({"id": request_id, "result": result})

        if method == "signin":
            credentials = params[0] if params and isinstance(params[0], dict) else {}
            if credentials.get("user") != self.user or credentials.get("pass") != self.password:
                return error_reply(request_id, "There was a problem with authentication")
            session.authenticated = True
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return ok(token)
        if method == "authenticate":
            if not params or params[0] not in self.tokens:
                return error_reply(request_id, "There was a problem with authentication")
            session.authenticated = True
            return ok()
        if method == "invalidate":
            session.authenticated = False
            return ok()
        if method == "use":
            for index, name in enumerate(params[:2]):
                if name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
                    return error_reply(request_id, "the dev server takes namespace and database names of letters, digits, _ and -")
            session.ns = params[0] if len(params) > 0 and params[0] is not None else session.ns
            session.db = params[1] if len(params) > 1 and params[1] is not None else session.db
            return ok()
        if method == "let" and len(params) == 2:
            session.variables[params[0]] = params[1]
            return ok()
        if method == "unset" and params:
            session.variables.pop(params[0], None)
            return ok()
        if method in ("ping", "version"):
            return cbor2.dumps(await self.raw(request))
        if method != "query":
            return error_reply(request_id, "Method not found", -32601)
        if not session.authenticated:
            return error_reply(request_id, "IAM error: Not enough permissions to perform this action")
        if session.ns is None or session.db is None:
            return error_reply(request_id, "Specify a namespace and database to use")
        sql = "USE NS `%s` DB `%s`; %s" % (session.ns, session.db, params[0] if params else "")
        variables = {**session.variables, **(params[1] if len(params) > 1 and params[1] else {})}
        number = trace_start(sql)
        try:
            reply = await super().raw({"id": request_id, "method": "query", "params": [sql, variables]})
        except Exception as error:  # the 2.x binding raises what a server answers as an error
            return error_reply(request_id, str(error))
        finally:
            trace_end(number)
        if isinstance(reply.get("result"), list) and reply["result"]:
            reply["result"] = reply["result"][1:]
        return cbor2.dumps(reply)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1:8000")
    parser.add_argument("--user", default="root")
    parser.add_argument("--pass", dest="password", default="root")
    parser.add_argument("--tls-cert", help="serve TLS (wss://, https://) with this PEM certificate chain")
    parser.add_argument("--tls-key", help="the certificate's PEM private key")
    parser.add_argument("path", nargs="?", default="mem://")
    args = parser.parse_args()
    tls = None
    if args.tls_cert:
        import ssl
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    host, _, port = args.bind.rpartition(":")
    engine = (Engine if ENGINE_MAJOR == 3 else SharedEngine)(args.path)

    sockets = set()

    async def rpc_ws(request):
        ws = web.WebSocketResponse(protocols=("cbor",), heartbeat=None, max_msg_size=128 * 1024 * 1024)
        await ws.prepare(request)
        sockets.add(ws)
        session = await engine.attach()
        tasks = set()

        async def handle(payload):
            reply = await engine.forward(session, payload)
            if not ws.closed:
                await ws.send_bytes(reply)

        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    task = asyncio.ensure_future(handle(message.data))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif message.type == WSMsgType.TEXT:
                    await ws.close(code=1003, message=b"this server speaks cbor only")
        finally:
            sockets.discard(ws)
            for task in tasks:
                task.cancel()
            await engine.detach(session)
        return ws

    async def close_sockets(_):
        # On SIGTERM, drop WebSocket clients at once, as a stopping server does.
        for ws in list(sockets):
            await ws.close(code=1001, message=b"server shutting down")

    async def rpc_http(request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await rpc_ws(request)
        body = await request.read()
        if len(body) > 4 * 1024 * 1024:
            return web.Response(status=413, text="request body over 4 MiB")
        session = await engine.attach()
        try:
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                reply = await engine.call(session, "signin", [{"user": user, "pass": password}])
                if "error" in reply:
                    return web.Response(status=401, text="There was a problem with authentication")
            elif auth.startswith("Bearer "):
                reply = await engine.call(session, "authenticate", [auth[7:]])
                if "error" in reply:
                    return web.Response(status=401, text="There was a problem with authentication")
            ns = request.headers.get("surreal-ns") or request.headers.get("NS")
            db = request.headers.get("surreal-db") or request.headers.get("DB")
            if ns or db:
                await engine.call(session, "use", [ns, db])
            reply = await engine.forward(session, body)
            return web.Response(body=reply, content_type="application/cbor")
        finally:
            await engine.detach(session)

    async def health(_):
        reply = await engine.raw({"id": 0, "method": "ping", "params": []})
        return web.Response(status=200 if "error" not in reply else 500)

    async def version(_):
        reply = await engine.raw({"id": 0, "method": "version", "params": []})
        return web.Response(text=str(reply.get("result")))

    async def startup(_):
        await engine.start(args.user, args.password)
        version = (await engine.raw({"id": 0, "method": "version", "params": []})).get("result")
        print("surreal dev server on %s (%s, %s)" % (args.bind, args.path, version), flush=True)

    app = web.Application(client_max_size=128 * 1024 * 1024)
    app.router.add_get("/rpc", rpc_ws)
    app.router.add_post("/rpc", rpc_http)
    app.router.add_get("/health", health)
    app.router.add_get("/version", version)
    app.on_startup.append(startup)
    app.on_shutdown.append(close_sockets)
    web.run_app(app, host=host or "127.0.0.1", port=int(port), print=None, shutdown_timeout=2, ssl_context=tls)


if __name__ == "__main__":
    main()
