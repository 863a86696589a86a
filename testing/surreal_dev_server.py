#!/usr/bin/env python3
"""A small SurrealDB server for tests and the quick start, on the real engine.

PyPI's surrealdb-embedded holds the real SurrealDB engine but no network server. This puts it
on SurrealDB's endpoints, like `surreal start`:
  /rpc      WebSocket (subprotocol "cbor") and HTTP POST (application/cbor)
  /health   200 while the engine answers
  /version  the engine's version string
Every WebSocket connection and every HTTP request gets its own engine session, so
authentication and `use` are per connection, as on a real server. Usage:
  surreal_dev_server.py --bind 127.0.0.1:8000 --user root --pass root [mem:// | surrealkv://PATH]
"""
import argparse
import asyncio
import base64
import re
import uuid

import cbor2
from aiohttp import WSMsgType, web
from surrealdb_embedded import AsyncEmbeddedDB


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
        return cbor2.loads(await self.db.execute(cbor2.dumps(request)))

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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1:8000")
    parser.add_argument("--user", default="root")
    parser.add_argument("--pass", dest="password", default="root")
    parser.add_argument("path", nargs="?", default="mem://")
    args = parser.parse_args()
    host, _, port = args.bind.rpartition(":")
    engine = Engine(args.path)

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
        print("surreal dev server on %s (%s)" % (args.bind, args.path), flush=True)

    app = web.Application(client_max_size=128 * 1024 * 1024)
    app.router.add_get("/rpc", rpc_ws)
    app.router.add_post("/rpc", rpc_http)
    app.router.add_get("/health", health)
    app.router.add_get("/version", version)
    app.on_startup.append(startup)
    app.on_shutdown.append(close_sockets)
    web.run_app(app, host=host or "127.0.0.1", port=int(port), print=None, shutdown_timeout=2)


if __name__ == "__main__":
    main()
