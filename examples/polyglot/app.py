#!/usr/bin/env python3
"""A small app on Python's standard library only, served by shoal gateways.

It signs users in with its own session cookie and answers the gateways' questions over HTTP:
  POST /shoal/connect  the connect proxy: who holds this cookie?  -> {"user", "channels"} or {"error"}
  POST /shoal/rpc      the RPC proxy: a client's rpc(method, data) -> {"result"} or {"error"}
  POST /token          an HS256 connection token (JWT) for a client without the cookie
  POST /api/publish    publishes to the room through a gateway's server API (POST /publish)
See README.md for how to run it with `shoal gateway`.
"""

import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

COOKIE = "polyglot_session"
CHANNEL = os.environ.get("POLYGLOT_CHANNEL", "room:lobby")
GATEWAYS = [u.strip().rstrip("/") for u in os.environ.get("SHOAL_GATEWAY_URLS", "http://127.0.0.1:3100").split(",") if u.strip()]
PUBLISH_KEY = os.environ.get("SHOAL_PUBLISH_KEY", "")
TOKEN_SECRET = os.environ.get("SHOAL_TOKEN_SECRET", "")
TOKEN_AUDIENCE = os.environ.get("SHOAL_TOKEN_AUDIENCE", "")
# Where the page's SDK connects: "/ws" behind a front that sends /ws to the gateways (nginx), or a
# gateway's own URL (ws://127.0.0.1:3100/ws) with this app's origin in its SHOAL_ORIGINS.
WS_URL = os.environ.get("POLYGLOT_WS_URL", "/ws")
TOKEN_TTL = int(os.environ.get("POLYGLOT_TOKEN_TTL", "600"))
# The browser SDK built as one script (see README); served at /shoal-client.js.
SDK = os.environ.get("POLYGLOT_SDK", os.path.join(os.path.dirname(os.path.abspath(__file__)), "shoal-client.js"))
MAX_BODY = 64 * 1024

# session id -> user name. In memory: a real app keeps them in its own store.
sessions = {}
sessions_lock = threading.Lock()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_jwt(user):
    """HS256 by hand: header.payload signed with the secret the gateways have (SHOAL_TOKEN_SECRET)."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": user, "exp": int(time.time()) + TOKEN_TTL, "channels": [CHANNEL]}
    if TOKEN_AUDIENCE:
        claims["aud"] = TOKEN_AUDIENCE
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    signature = hmac.new(TOKEN_SECRET.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def publish(event, data):
    """POST /publish on the first gateway that takes the connection; the next one if it is down.

    Only a refused connection moves on: a gateway that answered (or timed out after the request
    was sent) may have published, and sending again would deliver the message twice.
    """
    body = json.dumps({"channel": CHANNEL, "event": event, "data": data}).encode()
    last = None
    for base in GATEWAYS:
        req = urllib.request.Request(
            base + "/publish",
            data=body,
            method="POST",
            headers={"content-type": "application/json", "authorization": "Bearer " + PUBLISH_KEY},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except urllib.error.URLError as err:
            if not isinstance(err.reason, ConnectionRefusedError):
                raise
            last = err
    return 503, {"error": "no gateway took the connection: %s" % last}


def rpc(method, data, user):
    """What a client's rpc(method, data) runs here. Raises LookupError/ValueError for the error answer."""
    if method == "whoami":
        return {"user": user}
    if method == "add":
        if not isinstance(data, list) or not all(isinstance(x, (int, float)) for x in data):
            raise ValueError("add takes a list of numbers")
        return sum(data)
    if method == "echo":
        return {"echo": data, "user": user}
    raise LookupError("no method %r: try whoami, add or echo" % method)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>polyglot</title></head>
<body>
%s
<ul id="log"></ul>
<script src="/shoal-client.js"></script>
<script>
// Signed in: connect to the gateways (the same origin's /ws; the cookie is the app's), follow the
// room, and send through the app: a chat line (the app publishes it) or an RPC.
const p = (globalThis.polyglot = { channel: %s, signedIn: %s, got: [] });
const log = (text) => document.getElementById("log").appendChild(document.createElement("li")).append(text);
if (p.signedIn) {
  p.client = shoal.connect(%s, { transport: "websocket" });
  p.client.on("state", (s) => log("state: " + s));
  p.client.subscribe(p.channel, (m) => { p.got.push(m.data); log(m.event + ": " + JSON.stringify(m.data)); });
  document.getElementById("say").onsubmit = async (e) => {
    e.preventDefault();
    const text = e.target.text.value;
    await fetch("/api/publish", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ event: "chat", data: { text } }) });
  };
  document.getElementById("rpc").onclick = async () => {
    try { log("whoami: " + JSON.stringify(await p.client.rpc("whoami", null))); }
    catch (err) { log("rpc failed: " + err.message); }
  };
}
</script>
</body></html>
"""

SIGNED_IN = """<p>Signed in as <b id="user">%s</b></p>
<form id="say"><input name="text" placeholder="say something"><button>Send</button></form>
<button id="rpc">Who am I? (RPC)</button>"""

LOGIN_FORM = """<form method="post" action="/login">
<label>Name <input name="user" required pattern="[A-Za-z0-9_.-]{1,40}"></label>
<button>Sign in</button></form>"""


class Handler(BaseHTTPRequestHandler):
    server_version = "polyglot/1"

    def log_message(self, fmt, *args):
        if os.environ.get("POLYGLOT_LOG"):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    # --- helpers ---
    def user(self):
        cookie = SimpleCookie(self.headers.get("cookie", ""))
        morsel = cookie.get(COOKIE)
        if not morsel:
            return None
        with sessions_lock:
            return sessions.get(morsel.value)

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            raise ValueError("body over %d bytes" % MAX_BODY)
        return self.rfile.read(length) if length else b""

    def json_body(self):
        try:
            value = json.loads(self.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ValueError("body must be JSON")
        if not isinstance(value, dict):
            raise ValueError("body must be a JSON object")
        return value

    def send(self, status, payload, headers=None, content_type="application/json"):
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    # --- routes ---
    def do_GET(self):
        if self.path == "/":
            user = self.user()
            top = SIGNED_IN % html.escape(user) if user else LOGIN_FORM
            page = PAGE % (top, json.dumps(CHANNEL), "true" if user else "false", json.dumps(WS_URL))
            return self.send(200, page.encode(), content_type="text/html; charset=utf-8")
        if self.path == "/shoal-client.js":
            try:
                with open(SDK, "rb") as f:
                    return self.send(200, f.read(), content_type="text/javascript")
            except OSError:
                return self.send(404, {"error": "no SDK bundle at %s: build it (see README)" % SDK})
        if self.path == "/healthz":
            return self.send(200, {"ok": True})
        self.send(404, {"error": "not found"})

    def do_POST(self):
        try:
            route = {
                "/login": self.login,
                "/logout": self.logout,
                "/shoal/connect": self.connect_proxy,
                "/shoal/rpc": self.rpc_proxy,
                "/token": self.token,
                "/api/publish": self.api_publish,
            }.get(self.path)
            if route is None:
                return self.send(404, {"error": "not found"})
            route()
        except ValueError as err:
            self.send(400, {"error": str(err)})

    def login(self):
        raw = self.body().decode("utf-8", "replace")
        if self.headers.get("content-type", "").startswith("application/json"):
            user = json.loads(raw or "{}").get("user")
        else:
            user = (parse_qs(raw).get("user") or [None])[0]
        if not isinstance(user, str) or not user or len(user) > 40:
            raise ValueError("user must be a name of 1 to 40 characters")
        sid = secrets.token_urlsafe(24)
        with sessions_lock:
            sessions[sid] = user
        cookie = "%s=%s; Path=/; HttpOnly; SameSite=Lax" % (COOKIE, sid)
        self.send(303, {"user": user}, {"set-cookie": cookie, "location": "/"})

    def logout(self):
        cookie = SimpleCookie(self.headers.get("cookie", ""))
        if COOKIE in cookie:
            with sessions_lock:
                sessions.pop(cookie[COOKIE].value, None)
        self.send(303, {}, {"set-cookie": "%s=; Path=/; Max-Age=0" % COOKIE, "location": "/"})

    def connect_proxy(self):
        # The gateway forwards the handshake's Cookie header: the same cookie this app set at /login.
        self.body()
        user = self.user()
        if user is None:
            return self.send(200, {"error": {"code": 4401, "reason": "sign in first"}})
        self.send(200, {"user": user, "channels": [CHANNEL]})

    def rpc_proxy(self):
        call = self.json_body()
        if call.get("user") is None:
            return self.send(200, {"error": {"code": "unauthorized", "message": "sign in first"}})
        try:
            result = rpc(call.get("method"), call.get("data"), call["user"])
        except LookupError as err:
            return self.send(200, {"error": {"code": "not_found", "message": str(err)}})
        except ValueError as err:
            return self.send(200, {"error": {"code": "bad_request", "message": str(err)}})
        self.send(200, {"result": result})

    def token(self):
        self.body()
        user = self.user()
        if user is None:
            return self.send(401, {"error": "sign in first"})
        if len(TOKEN_SECRET) < 32:
            return self.send(503, {"error": "set SHOAL_TOKEN_SECRET (32+ characters), the same as the gateways'"})
        self.send(200, {"token": make_jwt(user), "expiresIn": TOKEN_TTL})

    def api_publish(self):
        user = self.user()
        if user is None:
            self.body()
            return self.send(401, {"error": "sign in first"})
        call = self.json_body()
        data = call.get("data")
        if isinstance(data, dict):
            data = dict(data, **{"from": user})
        status, answer = publish(call.get("event", "chat"), data)
        self.send(status, answer)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("POLYGLOT_PORT", "8000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("polyglot app on http://127.0.0.1:%d (channel %s, gateways %s)" % (port, CHANNEL, ", ".join(GATEWAYS)), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
