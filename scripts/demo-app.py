#!/usr/bin/env python3
"""The demo's app endpoint: what a team's HTTP service behind sked's `http` handler looks like.

POST /sms     -> 200 and prints the payload.
POST /flaky   -> 503 the first time a fire id is seen, 200 after (a transient failure).
POST /broken  -> 500 while the file .dev-stack/demo-broken exists, 200 once it is removed.
Listens on 127.0.0.1:18090 (or the port given as the first argument).
"""
import http.server
import os
import sys

seen = set()
BROKEN_FLAG = os.path.join(os.path.dirname(__file__), "..", ".dev-stack", "demo-broken")


class App(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
        fire = self.headers.get("sked-fire-id", "?")
        attempt = self.headers.get("sked-attempt", "?")
        status = 200
        if self.path == "/flaky" and fire not in seen:
            seen.add(fire)
            status = 503
        elif self.path == "/broken" and os.path.exists(BROKEN_FLAG):
            status = 500
        print(f"demo-app: {self.path} fire={fire} attempt={attempt} -> {status} body={body}", flush=True)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18090
    http.server.ThreadingHTTPServer(("127.0.0.1", port), App).serve_forever()
