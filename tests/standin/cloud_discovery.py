#!/usr/bin/env python3
"""A stand-in for Microsoft Defender for Cloud Apps' Cloud Discovery API, for lc's tests.

It answers the three calls a log collector makes, as Microsoft documents them, over HTTPS:

  GET  /api/v1/discovery/upload_url/?filename=F&source=S   -> {"url": URL, "provider": "azure"|"aws"}
  POST /api/v1/discovery/done_upload/  {"uploadUrl", "inputStreamName", "uploadAsSnapshot"}
  GET  /api/discovery/streams/                             -> {"data": [{"displayName", "_id"}]}

each with `Authorization: Token TOKEN`, under a per-tenant budget of --calls-per-min calls in any
sliding 60 s window (429 with Retry-After beyond it). The upload itself goes from the client
straight to the storage that --provider names, and on done_upload this program checks that the
file is there and appends a JSON line to --record:

  azure (the default): Azure Blob Storage, here Azurite (a real emulator); upload_url hands out
       SAS URLs for the container `discovery`.
  aws: an S3 bucket, here this program itself: upload_url hands out an S3-style presigned PUT
       URL (path style, `/discovery-uploads/KEY?X-Amz-...`, signature version 4 over the method,
       path, query and Host, payload unsigned, lifetime --sas-ttl) on its own port, and a PUT
       there is answered as S3 answers one: a signature that does not match the request, an
       expired URL, or an x-amz-* header the URL did not sign is 403; Transfer-Encoding is 501
       (S3 takes no chunked PUT); no Content-Length is 411; a body over --max-put-bytes (the
       API's 64 MB per PUT) is 400 EntityTooLarge; a Content-MD5 that does not match is 400
       BadDigest; errors are S3's XML. The object is stored (in --s3-dir) only once all
       Content-Length bytes arrived, replacing any earlier one, and the answer is 200 with its
       ETag: a PUT cut short stores nothing.

A call to an API path is handled in this order: the next queued fault for that endpoint, if
any, is taken; a wrong method is 405; a missing or wrong token is 401; past the budget is 429
(Retry-After: seconds until the oldest call in the window is 60 s old); then the endpoint's own
checks (400). Calls answered 401, 429 or by an injected status or reset take no slot in the
window; every other call does, a 400 included. Any other path is 404.

Tests steer and inspect it through /_admin/ (no token, no rate limit):

  POST /_admin/faults  {"upload_url": [...], "done_upload": [...], "streams": [...], "put": [...]}
       queues one action per call of that endpoint: "NNN" answers status NNN with a JSON error
       (429 and 503 with Retry-After: 1), "hang:S" sleeps S seconds then answers normally,
       "reset" closes the TCP connection with an RST and no answer, "echo:NNN" answers status
       NNN with an error that repeats the request's body (a done_upload's uploadUrl, SAS
       signature included, as some services echo what they refuse). "put" is the S3
       receiver's PUT (--provider aws): "NNN" answers status NNN with S3's XML error without
       reading the body, "reset" resets at once, "cut:N" reads N bytes of the body then resets
       (a PUT that fails mid-way)
  GET  /_admin/calls   per endpoint: call count, statuses and the Unix times they were
       answered (`at`), "put" too; `puts`: each PUT's key, Content-Length, bytes stored, status
       and request headers; the recorded uploads
  GET  /_admin/blob?name=BLOB   the blob's bytes as stored (Azurite, or the S3 receiver's object)
  POST /_admin/reset   clears the fault queues, counters and the rate window

It prints `listening PORT` on stdout once it accepts connections, and one line per request on
stderr. Python 3.11 standard library plus azure-storage-blob (run it with the venv that
scripts/deps.sh makes; --provider aws needs only the standard library).
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import math
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas
except ImportError:  # --provider aws runs without the Azure SDK
    BlobServiceClient = None

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
# Counted and fault-injected like an endpoint, but the storage's, not the API's: no token, no
# rate window.
PUT = "put"

# The S3 receiver (--provider aws): its bucket, and the made-up credentials it signs URLs with.
BUCKET = "discovery-uploads"
S3_REGION = "us-east-1"
S3_ACCESS_KEY = "AKIASTANDIN000000000"
S3_SECRET_KEY = b"standin-secret-key-not-a-secret"
# S3's own limit on a presigned URL's lifetime (X-Amz-Expires).
S3_MAX_EXPIRES = 7 * 24 * 3600

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
        self.provider = args.provider
        self.max_put_bytes = args.max_put_bytes
        self.s3_dir = args.s3_dir or os.path.join(os.path.dirname(os.path.abspath(args.record)), "s3")
        self.s3_host = None  # HOST:PORT in the URLs it hands out, once listening
        self.azurite = (args.azurite or "").rstrip("/")
        self.blobs = None
        if self.provider == "azure":
            verify = args.azurite_ca if args.azurite_ca else True
            # No retries and short timeouts: when a test has stopped Azurite, a call that needs
            # it should fail at once rather than after the SDK's backoff.
            self.blobs = BlobServiceClient(
                account_url=f"{self.azurite}/{ACCOUNT}",
                credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
                retry_total=0,
                connection_timeout=5,
                read_timeout=10,
                connection_verify=verify,
            )
        else:
            os.makedirs(os.path.join(self.s3_dir, "tmp"), exist_ok=True)
        self.container_ready = self.provider != "azure"
        self.handed_out = {}  # url -> {"blob", "filename", "source", "at"}
        self.done = set()  # urls whose done_upload succeeded once
        self.reset()

    def reset(self):
        self.faults = {name: [] for name in [*METHODS, PUT]}
        self.calls = {name: {"calls": 0, "statuses": [], "at": []} for name in [*METHODS, PUT]}
        self.puts = []  # {"key", "content_length", "stored", "status", "headers"} per PUT
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

    def object_path(self, key):
        """Where the S3 receiver keeps object `key`: one file per key, named by its quoting."""
        return os.path.join(self.s3_dir, urllib.parse.quote(key, safe=""))

    def stored_size(self, blob):
        """The stored file's size; None if there is none; -1 if the storage cannot say."""
        if self.provider == "aws":
            try:
                return os.path.getsize(self.object_path(blob))
            except FileNotFoundError:
                return None
        try:
            return self.blobs.get_blob_client(CONTAINER, blob).get_blob_properties().size
        except ResourceNotFoundError:
            return None
        except AzureError as e:
            log(f"azurite: {e.__class__.__name__}: {e}")
            return -1

    def read_blob(self, blob):
        """The stored file's bytes; None if there is none; a message if the storage failed."""
        if self.provider == "aws":
            try:
                with open(self.object_path(blob), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        try:
            return self.blobs.get_blob_client(CONTAINER, blob).download_blob().readall()
        except ResourceNotFoundError:
            return None
        except AzureError as e:
            return f"azurite: {e}"

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


# -- the S3 receiver (--provider aws) -----------------------------------------------------------


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _uri_encode(text):
    # SigV4's URI encoding: everything but RFC 3986 unreserved characters.
    return urllib.parse.quote(text, safe="-_.~")


def sigv4_signature(method, path, query, headers, signed, amz_date):
    """The SigV4 signature of a presigned request (AWS's "Authenticating Requests: Using Query
    Parameters"): `path` as sent (S3 does not normalise it), `query` the decoded (name, value)
    pairs but X-Amz-Signature, `headers` the values of the `signed` header names."""
    date = amz_date[:8]
    scope = f"{date}/{S3_REGION}/s3/aws4_request"
    canonical_query = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query))
    canonical_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed)
    canonical = "\n".join(
        [method, path, canonical_query, canonical_headers, ";".join(signed), "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = b"AWS4" + S3_SECRET_KEY
    for part in (date, S3_REGION, "s3", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def presign_put(host, path, ttl):
    """An S3 presigned PUT URL for `path` (already URI-encoded) on `host`, valid `ttl` s."""
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{S3_ACCESS_KEY}/{amz_date[:8]}/{S3_REGION}/s3/aws4_request"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(min(ttl, S3_MAX_EXPIRES))),
        ("X-Amz-SignedHeaders", "host"),
    ]
    sig = sigv4_signature("PUT", path, query, {"host": host}, ["host"], amz_date)
    qs = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in query)
    return f"https://{host}{path}?{qs}&X-Amz-Signature={sig}"


class S3Put:
    """One request to the S3 receiver, answered as S3 answers a presigned PUT."""

    CODES = {400: "InvalidRequest", 403: "AccessDenied", 500: "InternalError", 503: "SlowDown"}

    def __init__(self, handler):
        self.h = handler
        self.st = handler.state
        url = urllib.parse.urlsplit(handler.path)
        self.path = url.path
        self.query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        self.key = urllib.parse.unquote(url.path[len(BUCKET) + 2:])
        self.entry = {
            "key": self.key,
            "content_length": handler.headers.get("Content-Length"),
            "stored": None,
            "status": None,
            "headers": [[k, v] for k, v in handler.headers.items()],
        }

    def handle(self):
        h, st = self.h, self.st
        h.endpoint = PUT
        with st.lock:
            st.calls[PUT]["calls"] += 1
            st.puts.append(self.entry)
            fault = st.faults[PUT].pop(0) if st.faults[PUT] else None
        if fault == "reset":
            self.entry["status"] = "reset"
            h.reset_connection()
        if fault is not None and fault.startswith("cut:"):
            want, got = int(fault[4:]), 0
            while got < want:
                chunk = h.rfile.read1(min(want - got, 1 << 16))
                if not chunk:
                    break
                got += len(chunk)
            self.entry.update(status="reset", stored=None, read=got)
            log(f"PUT {self.key}: fault cut after {got} bytes")
            h.reset_connection()
        if fault is not None:
            status = int(fault)
            self.error(status, self.CODES.get(status, "InjectedFault"), f"injected fault {status}")
            return
        refused = self.refusal()
        if refused:
            self.error(*refused)
            return
        length = int(h.headers["Content-Length"])
        stored = self.receive(length)
        if stored is None:
            return
        self.entry["stored"] = length
        h.send_response(200)
        h.send_header("ETag", f'"{stored}"')
        h.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        h.send_header("Content-Length", "0")
        h.end_headers()
        self.entry["status"] = 200
        h.note(200, f" ({length} bytes stored)")

    def refusal(self):
        """(status, code, message) of what S3 would refuse about this request, or None."""
        h = self.h
        q = dict(self.query)
        needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                  "X-Amz-SignedHeaders", "X-Amz-Signature")
        if any(k not in q for k in needed) or q["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            return 403, "AccessDenied", "Query-string authentication version 4 requires the " + ", ".join(needed)
        try:
            signed_at = datetime.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
            expires = int(q["X-Amz-Expires"])
        except ValueError:
            return 403, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed"
        signed = q["X-Amz-SignedHeaders"].split(";")
        headers = {k: h.headers.get(k, "") for k in signed}
        mine = sigv4_signature(h.command, self.path, [(k, v) for k, v in self.query if k != "X-Amz-Signature"],
                               headers, signed, q["X-Amz-Date"])
        if not hmac.compare_digest(mine, q["X-Amz-Signature"]):
            return 403, "SignatureDoesNotMatch", (
                "The request signature we calculated does not match the signature you provided "
                f"(method {h.command}, Host {headers.get('host')!r})")
        if datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
            return 403, "AccessDenied", "Request has expired"
        unsigned = [k for k in h.headers if k.lower().startswith("x-amz-") and k.lower() not in signed]
        if unsigned:
            return 403, "AccessDenied", f"There were headers present in the request which were not signed: {unsigned}"
        if "Transfer-Encoding" in h.headers:
            return 501, "NotImplemented", "A header you provided implies functionality that is not implemented: Transfer-Encoding"
        raw = h.headers.get("Content-Length")
        if raw is None:
            return 411, "MissingContentLength", "You must provide the Content-Length HTTP header."
        if not raw.isdigit():
            return 400, "InvalidArgument", f"bad Content-Length {raw!r}"
        if int(raw) > self.st.max_put_bytes:
            return 400, "EntityTooLarge", (
                f"Your proposed upload of {raw} bytes exceeds the maximum allowed size of {self.st.max_put_bytes}")
        return None

    def receive(self, length):
        """Reads the body into the object; its MD5 (hex), or None after answering or losing it."""
        h, st = self.h, self.st
        tmp = os.path.join(st.s3_dir, "tmp", uuid.uuid4().hex)
        md5, got = hashlib.md5(), 0
        try:
            with open(tmp, "wb") as f:
                while got < length:
                    chunk = h.rfile.read1(min(length - got, 1 << 20))
                    if not chunk:
                        break
                    md5.update(chunk)
                    f.write(chunk)
                    got += len(chunk)
        except OSError as e:
            log(f"PUT {self.key}: reading the body: {e}")
        if got < length:
            os.unlink(tmp)
            self.entry.update(status="incomplete", read=got)
            h.close_connection = True
            h.note("incomplete", f" ({got} of {length} bytes; nothing stored)")
            return None
        sent_md5 = h.headers.get("Content-MD5")
        if sent_md5 is not None and sent_md5 != base64.b64encode(md5.digest()).decode():
            os.unlink(tmp)
            self.error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.",
                       drained=True)
            return None
        os.replace(tmp, st.object_path(self.key))
        return md5.hexdigest()

    def error(self, status, code, message, drained=False):
        """S3's XML error. The body is read and dropped first when its length is known and
        within the limit, so the client reads the answer; otherwise the connection closes."""
        h = self.h
        raw = h.headers.get("Content-Length", "")
        if not drained:
            if "Transfer-Encoding" not in h.headers and raw.isdigit() and int(raw) <= self.st.max_put_bytes:
                left = int(raw)
                while left > 0:
                    chunk = h.rfile.read1(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
            else:
                h.close_connection = True
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>").encode()
        self.entry["status"] = status
        h.reply(status, body, content_type="application/xml")


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
        # A presigned URL's query is its signature: logged as `?***`.
        path = self.path.split("?", 1)[0] + "?***" if "X-Amz-Signature=" in self.path else self.path
        log(f"{self.client_address[0]}:{self.client_address[1]} {self.command} {path} -> {status}{extra}")
        if self.endpoint:
            with self.state.lock:
                self.state.calls[self.endpoint]["statuses"].append(status)
                self.state.calls[self.endpoint]["at"].append(time.time())

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
        if self.state.provider == "aws" and self.path.startswith(f"/{BUCKET}/"):
            # Bodies up to --max-put-bytes, read as they come: before the API's 64 KiB limit.
            S3Put(self).handle()
            return
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
        blob = f"{uuid.uuid4()}/{filename}"
        if st.provider == "aws":
            url = presign_put(st.s3_host, f"/{BUCKET}/{urllib.parse.quote(blob)}", st.sas_ttl)
            self.hand_out(url, blob, filename, source)
            return
        st.ensure_container()
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
        self.hand_out(url, blob, filename, source)

    def hand_out(self, url, blob, filename, source):
        st = self.state
        with st.lock:
            st.handed_out[url] = {
                "blob": blob,
                "filename": filename,
                "source": source,
                "at": time.time(),
            }
        self.reply(200, {"url": url, "provider": st.provider})

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
        size = st.stored_size(given["blob"])
        if size is None:
            self.error(400, f"no uploaded file at {given['blob']}")
            return
        if size < 0:
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
                "size": size,
                "url_at": given["at"],
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
                        if name == PUT and a.startswith("cut:") and int(a[4:]) >= 0:
                            continue
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
                out = {k: {"calls": v["calls"], "statuses": list(v["statuses"]), "at": list(v["at"])}
                       for k, v in st.calls.items()}
                out["puts"] = list(st.puts)
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
            data = st.read_blob(name)
            if data is None:
                self.error(404, f"no blob {name}")
                return
            if isinstance(data, str):
                self.error(500, data)
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
    p.add_argument("--public-host", help="HOST:PORT the client reaches this program at, for the "
                   "presigned S3 URLs (default: --host and the bound port; the VM test forwards "
                   "another address to it)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True, help="server certificate chain, PEM")
    p.add_argument("--key", required=True, help="server private key, PEM")
    p.add_argument("--token", required=True)
    p.add_argument("--streams", required=True, help="data source names, comma-separated")
    p.add_argument("--provider", choices=("azure", "aws"), default="azure",
                   help="storage behind upload_url: Azurite (azure) or this program's S3 receiver (aws)")
    p.add_argument("--azurite", help="Azurite blob endpoint, http(s)://127.0.0.1:PORT (--provider azure)")
    p.add_argument("--azurite-ca", help="CA file to verify an https Azurite with")
    p.add_argument("--record", required=True, help="JSON lines file of completed uploads")
    p.add_argument("--calls-per-min", type=int, default=30)
    p.add_argument("--sas-ttl", type=int, default=3600, help="SAS lifetime in seconds")
    p.add_argument("--s3-dir", help="where the S3 receiver keeps objects (default: s3/ beside --record)")
    p.add_argument("--max-put-bytes", type=int, default=64_000_000,
                   help="the S3 receiver's limit on one PUT (the API documents 64 MB)")
    args = p.parse_args()
    if args.provider == "azure" and not args.azurite:
        p.error("--provider azure needs --azurite")
    if args.provider == "azure" and BlobServiceClient is None:
        p.error("--provider azure needs azure-storage-blob (the venv scripts/deps.sh makes)")

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(args.cert, args.key)

    state = State(args)
    state.ensure_container()
    server = Server((args.host, args.port), state, tls)
    state.s3_host = args.public_host or f"{args.host}:{server.server_address[1]}"
    print(f"listening {server.server_address[1]}", flush=True)
    storage = f"azurite {state.azurite}" if args.provider == "azure" else f"S3 receiver in {state.s3_dir}"
    log(f"listening on {args.host}:{server.server_address[1]}; {storage}; streams {state.streams}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
