#!/usr/bin/env python3
"""A stand-in for Microsoft Defender for Cloud Apps' Cloud Discovery API, for lc's tests.

It answers the three calls a log collector makes, as Microsoft documents them, over HTTPS:

  GET  /api/v1/discovery/upload_url/?filename=F&source=S   -> {"url": SAS URL, "provider": "azure"}
  POST /api/v1/discovery/done_upload/  {"uploadUrl", "inputStreamName", "uploadAsSnapshot"}
  GET  /api/discovery/streams/                             -> {"data": [{"displayName", "_id"}]}

each with `Authorization: Token TOKEN`, under a per-tenant budget of --calls-per-min calls in any
sliding 60 s window (429 with Retry-After beyond it). The upload itself goes from the client
straight to Azure Blob Storage, here Azurite (a real emulator): this program hands out SAS URLs
for the container `discovery` and, on done_upload, checks that the blob is there and appends a
JSON line to --record.

A call to an API path is handled in this order: the next queued fault for that endpoint, if
any, is taken; a wrong method is 405; a missing or wrong token is 401; past the budget is 429
(Retry-After: seconds until the oldest call in the window is 60 s old); then the endpoint's own
checks (400). Calls answered 401, 429 or by an injected status or reset take no slot in the
window; every other call does, a 400 included. Any other path is 404.

Tests steer and inspect it through /_admin/ (no token, no rate limit):

  POST /_admin/faults  {"upload_url": [...], "done_upload": [...], "streams": [...]}
       queues one action per call of that endpoint: "NNN" answers status NNN with a JSON error
       (429 and 503 with Retry-After: 1), "hang:S" sleeps S seconds then answers normally,
       "reset" closes the TCP connection with an RST and no answer, "echo:NNN" answers status
       NNN with an error that repeats the request's body (a done_upload's uploadUrl, SAS
       signature included, as some services echo what they refuse)
  GET  /_admin/calls   per-endpoint call counts and statuses, and the recorded uploads
  GET  /_admin/blob?name=BLOB   the blob's bytes as stored in Azurite
  POST /_admin/reset   clears the fault queues, counters and the rate window

It prints `listening PORT` on stdout once it accepts connections, and one line per request on
stderr. Python 3.11 standard library plus azure-storage-blob (run it with the venv that
scripts/deps.sh makes).
"""

import argparse
import datetime
import hashlib
import json
import math
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

# Azurite's one built-in account and its well-known key (Azurite's README; the same key as the
# Azure Storage Emulator's). Not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CONTAINER = "discovery"

UPLOAD_URL = "/api/v1/discovery/upload_url/"
DONE_UPLOAD = "/api/v1/discovery/done_upload/"
STREAMS = "/api/discovery/streams/"
ENDPOINTS = {UPLOAD_URL: "upload_url", DONE_UPLOAD: "done_upload", STREAMS: "streams"}
METHODS = {"upload_url": "GET", "done_upload": "POST", "streams": "GET"}

DONE_UPLOAD_KEYS = {"uploadUrl": str, "inputStreamName": str, "uploadAsSnapshot": bool}

# Bounds on what a client can make this program hold or wait for.
MAX_BODY = 64 * 1024
IDLE_TIMEOUT_SECS = 30
WINDOW_SECS = 60.0


class ConnectionReset(Exception):
    """Raised out of a handler that has reset its connection, to skip http.server's flush."""


def log(msg):
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write(f"{stamp} cloud_discovery: {msg}\n")
    sys.stderr.flush()


class State:
    """Everything the handlers share, behind one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.token = args.token
        self.streams = [s for s in args.streams.split(",") if s]
        self.calls_per_min = args.calls_per_min
        self.sas_ttl = args.sas_ttl
        self.record_path = args.record
        self.azurite = args.azurite.rstrip("/")
        verify = args.azurite_ca if args.azurite_ca else True
        # No retries and short timeouts: when a test has stopped Azurite, a call that needs it
        # should fail at once rather than after the SDK's backoff.
        self.blobs = BlobServiceClient(
            account_url=f"{self.azurite}/{ACCOUNT}",
            credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
            retry_total=0,
            connection_timeout=5,
            read_timeout=10,
            connection_verify=verify,
        )
        self.container_ready = False
        self.handed_out = {}  # url -> {"blob", "filename", "source", "at"}
        self.done = set()  # urls whose done_upload succeeded once
        self.reset()

    def reset(self):
        self.faults = {name: [] for name in METHODS}
        self.calls = {name: {"calls": 0, "statuses": []} for name in METHODS}
        self.window = []  # monotonic times of the calls admitted in the last 60 s

    def ensure_container(self):
        """Creates the container once; retried on the next call while Azurite is unreachable."""
        with self.lock:
            if self.container_ready:
                return
        try:
            self.blobs.create_container(CONTAINER)
        except ResourceExistsError:
            pass
        except AzureError as e:
            log(f"azurite: cannot create container {CONTAINER}: {e.__class__.__name__}: {e}")
            return
        with self.lock:
            self.container_ready = True

    def admit(self):
        """Takes a slot in the sliding window; returns None, or the seconds until one frees."""
        now = time.monotonic()
        with self.lock:
            self.window = [t for t in self.window if now - t < WINDOW_SECS]
            if len(self.window) >= self.calls_per_min:
                wait = self.window[0] + WINDOW_SECS - now
                return max(1, math.ceil(wait))
            self.window.append(now)
            return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "cloud-discovery-standin"

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def state(self):
        return self.server.state

    def log_message(self, format, *args):
        # http.server's own messages (bad request lines, timeouts); requests are logged by reply.
        log(f"{self.client_address[0]}:{self.client_address[1]} {format % args}")

    def log_request(self, code="-", size="-"):
        pass

    def reply(self, status, body, content_type="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.note(status)

    def error(self, status, message, headers=()):
        self.reply(status, {"error": message}, headers=headers)

    def note(self, status, extra=""):
        log(f"{self.client_address[0]}:{self.client_address[1]} {self.command} {self.path} -> {status}{extra}")
        if self.endpoint:
            with self.state.lock:
                self.state.calls[self.endpoint]["statuses"].append(status)

    def reset_connection(self):
        """Closes the TCP connection with an RST (SO_LINGER 0) and no answer."""
        self.note("reset")
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The file objects hold references to the socket: the descriptor (and so the RST) goes
        # only when all of them are closed.
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        sock.close()
        raise ConnectionReset()

    def read_body(self):
        """The request body, or None after answering 400/413."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.error(400, "chunked request bodies are not supported; send Content-Length")
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self.error(400, "bad Content-Length")
            self.close_connection = True
            return None
        if length < 0 or length > MAX_BODY:
            self.error(413, f"body of {length} bytes exceeds {MAX_BODY}")
            self.close_connection = True
            return None
        return self.rfile.read(length)

    # -- routing -----------------------------------------------------------------------------

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def do_HEAD(self):
        self.route("HEAD")

    def route(self, method):
        self.endpoint = None
        # The body is read before anything is answered, so that an early answer (401, 429, a
        # fault) leaves the connection at the next request.
        self.body = self.read_body()
        if self.body is None:
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_admin/"):
            self.admin(method, url)
            return
        endpoint = ENDPOINTS.get(url.path)
        if endpoint is None:
            self.error(404, f"no such endpoint {url.path}")
            return
        self.endpoint = endpoint
        st = self.state
        with st.lock:
            st.calls[endpoint]["calls"] += 1
            fault = st.faults[endpoint].pop(0) if st.faults[endpoint] else None

        if fault is not None:
            if fault == "reset":
                self.reset_connection()
                return
            if fault.startswith("echo:"):
                status = int(fault.split(":", 1)[1])
                self.error(status, f"cannot use this request: {self.body.decode('utf-8', 'replace')}")
                return
            if fault.startswith("hang:"):
                secs = float(fault.split(":", 1)[1])
                log(f"{self.command} {self.path}: fault hang:{secs:g}")
                time.sleep(secs)
            else:
                status = int(fault)
                headers = [("Retry-After", "1")] if status in (429, 503) else []
                self.error(status, f"injected fault {status}", headers=headers)
                return

        if method != METHODS[endpoint]:
            self.error(405, f"{url.path} takes {METHODS[endpoint]}", headers=[("Allow", METHODS[endpoint])])
            return
        if self.headers.get("Authorization") != f"Token {st.token}":
            self.error(401, "Invalid token")
            return
        wait = st.admit()
        if wait is not None:
            self.error(
                429,
                f"rate limit of {st.calls_per_min} calls per minute exceeded",
                headers=[("Retry-After", str(wait))],
            )
            return
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if endpoint == "upload_url":
            self.upload_url(query)
        elif endpoint == "done_upload":
            self.done_upload()
        else:
            self.list_streams()

    # -- the API -----------------------------------------------------------------------------

    def upload_url(self, query):
        st = self.state
        filename = query.get("filename", [""])[0]
        source = query.get("source", [""])[0]
        if not filename or not source:
            self.error(400, "filename and source are required")
            return
        st.ensure_container()
        blob = f"{uuid.uuid4()}/{filename}"
        sas = generate_blob_sas(
            account_name=ACCOUNT,
            container_name=CONTAINER,
            blob_name=blob,
            account_key=ACCOUNT_KEY,
            permission=BlobSasPermissions(create=True, write=True),
            expiry=datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=st.sas_ttl),
        )
        url = f"{st.azurite}/{ACCOUNT}/{CONTAINER}/{urllib.parse.quote(blob)}?{sas}"
        with st.lock:
            st.handed_out[url] = {
                "blob": blob,
                "filename": filename,
                "source": source,
                "at": time.time(),
            }
        self.reply(200, {"url": url, "provider": "azure"})

    def done_upload(self):
        st = self.state
        ctype = self.headers.get("Content-Type", "")
        body = self.body
        if ctype.split(";")[0].strip().lower() != "application/json":
            self.error(400, f"Content-Type must be application/json, not {ctype!r}")
            return
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            self.error(400, f"body is not JSON: {e}")
            return
        if not isinstance(req, dict):
            self.error(400, "body must be a JSON object")
            return
        keys = set(req)
        if keys != set(DONE_UPLOAD_KEYS):
            missing = sorted(set(DONE_UPLOAD_KEYS) - keys)
            extra = sorted(keys - set(DONE_UPLOAD_KEYS))
            self.error(400, f"bad keys: missing {missing}, unexpected {extra}")
            return
        for key, typ in DONE_UPLOAD_KEYS.items():
            if not isinstance(req[key], typ):
                self.error(400, f"{key} must be a {typ.__name__}")
                return
        if req["inputStreamName"] not in st.streams:
            self.error(400, f"unknown data source {req['inputStreamName']}")
            return
        with st.lock:
            given = st.handed_out.get(req["uploadUrl"])
        if given is None:
            self.error(400, "uploadUrl was not handed out by upload_url")
            return
        try:
            props = st.blobs.get_blob_client(CONTAINER, given["blob"]).get_blob_properties()
        except ResourceNotFoundError:
            self.error(400, f"no uploaded file at {given['blob']}")
            return
        except AzureError as e:
            log(f"azurite: {e.__class__.__name__}: {e}")
            self.error(500, "storage unavailable")
            return
        with st.lock:
            duplicate = req["uploadUrl"] in st.done
            st.done.add(req["uploadUrl"])
            record = {
                "uploadUrl": req["uploadUrl"],
                "blob": given["blob"],
                "filename": given["filename"],
                "source": given["source"],
                "inputStreamName": req["inputStreamName"],
                "uploadAsSnapshot": req["uploadAsSnapshot"],
                "size": props.size,
                "at": time.time(),
                "duplicate": duplicate,
            }
            with open(st.record_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        self.reply(200, {"success": True})

    def list_streams(self):
        data = [
            {"displayName": name, "_id": hashlib.sha1(name.encode()).hexdigest()[:24]}
            for name in self.state.streams
        ]
        self.reply(200, {"data": data})

    # -- test controls -----------------------------------------------------------------------

    def admin(self, method, url):
        st = self.state
        query = urllib.parse.parse_qs(url.query)
        if (method, url.path) == ("POST", "/_admin/faults"):
            try:
                faults = json.loads(self.body)
                faults = {name: [str(a) for a in actions] for name, actions in faults.items()}
                for name, actions in faults.items():
                    if name not in st.faults:
                        raise ValueError(f"unknown endpoint {name}")
                    for a in actions:
                        if not (a == "reset" or (a.startswith("hang:") and float(a[5:]) >= 0)
                                or (a.startswith("echo:") and 100 <= int(a[5:]) <= 599) or 100 <= int(a) <= 599):
                            raise ValueError(f"bad action {a}")
            except (ValueError, AttributeError, TypeError) as e:
                self.error(400, f"faults: {e}")
                return
            with st.lock:
                for name, actions in faults.items():
                    st.faults[name].extend(actions)
                queued = {k: list(v) for k, v in st.faults.items()}
            self.reply(200, {"faults": queued})
        elif (method, url.path) == ("GET", "/_admin/calls"):
            with st.lock:
                out = {k: {"calls": v["calls"], "statuses": list(v["statuses"])} for k, v in st.calls.items()}
                out["handed_out"] = len(st.handed_out)
                out["faults"] = {k: list(v) for k, v in st.faults.items()}
                try:
                    with open(st.record_path, encoding="utf-8") as f:
                        out["uploads"] = [json.loads(line) for line in f if line.strip()]
                except FileNotFoundError:
                    out["uploads"] = []
            self.reply(200, out)
        elif (method, url.path) == ("GET", "/_admin/blob"):
            name = query.get("name", [""])[0]
            try:
                data = st.blobs.get_blob_client(CONTAINER, name).download_blob().readall()
            except ResourceNotFoundError:
                self.error(404, f"no blob {name}")
                return
            except AzureError as e:
                self.error(500, f"azurite: {e}")
                return
            self.reply(200, data, content_type="application/octet-stream")
        elif (method, url.path) == ("POST", "/_admin/reset"):
            with st.lock:
                st.reset()
            self.reply(200, {"reset": True})
        else:
            self.error(404, f"no such admin call {method} {url.path}")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, tls):
        super().__init__(addr, Handler)
        self.state = state
        self.tls = tls

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so that a client that
        # never completes it holds up nobody else (wrapping the listening socket would do it
        # in accept(), on the one serving thread).
        request.settimeout(IDLE_TIMEOUT_SECS)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log(f"{client_address[0]}:{client_address[1]} TLS handshake failed: {e}")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except ConnectionReset:
            pass
        except (OSError, ssl.SSLError) as e:
            log(f"{client_address[0]}:{client_address[1]} connection error: {e}")
        finally:
            # close_notify, then close; a peer that has gone or stays silent gets one second.
            try:
                conn.settimeout(1)
                conn.unwrap()
            except (OSError, ValueError, ssl.SSLError):
                pass
            conn.close()

    def handle_error(self, request, client_address):
        log(f"{client_address[0]}:{client_address[1]} handler error: {sys.exc_info()[1]!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True, help="server certificate chain, PEM")
    p.add_argument("--key", required=True, help="server private key, PEM")
    p.add_argument("--token", required=True)
    p.add_argument("--streams", required=True, help="data source names, comma-separated")
    p.add_argument("--azurite", required=True, help="Azurite blob endpoint, http(s)://127.0.0.1:PORT")
    p.add_argument("--azurite-ca", help="CA file to verify an https Azurite with")
    p.add_argument("--record", required=True, help="JSON lines file of completed uploads")
    p.add_argument("--calls-per-min", type=int, default=30)
    p.add_argument("--sas-ttl", type=int, default=3600, help="SAS lifetime in seconds")
    args = p.parse_args()

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(args.cert, args.key)

    state = State(args)
    state.ensure_container()
    server = Server((args.host, args.port), state, tls)
    print(f"listening {server.server_address[1]}", flush=True)
    log(f"listening on {args.host}:{server.server_address[1]}; azurite {state.azurite}; streams {state.streams}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
