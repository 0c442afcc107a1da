"""A local webhook for the alert end-to-end test: appends the id of every
alert POSTed to it to a file, one line per delivery (so duplicates show),
and answers 503 to the first delivery of every fifth id (so the worker's
back-off and retry are exercised). Usage: receiver.py PORT FILE"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, path = int(sys.argv[1]), sys.argv[2]
refused = set()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = int(self.headers["Idempotency-Key"])
        assert key == body["id"], (key, body)
        if key % 5 == 0 and key not in refused:
            refused.add(key)
            self.send_response(503)
            self.end_headers()
            return
        with open(path, "a") as f:
            f.write(f"{key}\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
