"""Serve: answers GET /healthz and POST /predict for one model version on 127.0.0.1.

Cairn starts one of these per version, on a port it picks (CAIRN_PORT), behind its own proxy
on the deployment's public port, and switches the proxy only once /healthz answers 200. The
model is the file the training wrote, read from Cairn's artifact store (CAIRN_MODEL_PATH).
A model this code cannot read stops the server before it is healthy, so Cairn keeps the
version that serves and rolls the stage back.
"""
import argparse
import json
import math
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

READS_FORMATS = (1,)

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
with open(args.model) as handle:
    model = json.load(handle)
if model.get("format", 1) not in READS_FORMATS:
    sys.exit(f"serve.py: {args.model} is a model in format {model.get('format')}; this server reads format "
             + " and ".join(map(str, READS_FORMATS)))
version = os.environ.get("CAIRN_MODEL_VERSION", "?")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and the
    # client's delayed ACK hold every answer back by 40 ms.
    disable_nagle_algorithm = True

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self._reply(200, {"status": "ok", "version": version})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if self.path != "/predict":
            return self._reply(404, {"error": "not found"})
        try:
            features = json.loads(body)["features"]
        except (ValueError, KeyError, TypeError):
            return self._reply(400, {"error": 'expected {"features": [numbers]}'})
        z = model["bias"] + sum(w * v for w, v in zip(model["weights"], features))
        self._reply(200, {"churn_probability": round(1 / (1 + math.exp(-max(min(z, 30), -30))), 6), "version": version})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
