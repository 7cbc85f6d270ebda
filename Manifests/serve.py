"""Serve: answers /healthz and POST /predict for one model version on 127.0.0.1."""
import argparse
import json
import math
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
with open(args.model) as handle:
    model = json.load(handle)


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/predict":
            return self._reply(404, {"error": "not found"})
        features = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["features"]
        z = model["bias"] + sum(w * v for w, v in zip(model["weights"], features))
        self._reply(200, {"churn_probability": 1 / (1 + math.exp(-z))})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
