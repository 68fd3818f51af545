"""A Swift proxy middleware that puts every successful write on the purge bus.

Edges turn the writes they proxy into write events on the `edge:events` Redis stream; the purge
daemon plans what they invalidate and every edge applies it. Writes that never pass an edge (a
client talking to Swift directly, a middleware's sub-requests) would purge nothing: this filter,
in the Swift proxy's own pipeline, emits the same events for them. It only emits: what to purge
is decided by the daemon's planner (purge-daemon/planner.cc). The format is the edge's
(purge-daemon/bus/protocol.h); tests/purge-daemon/golden/write_events.json holds it for both.

Put it to the right of bulk, slo, dlo, versioned_writes and symlink, so that it sees their
sub-requests: each object a bulk delete removes, each SLO segment and manifest, the versions
written and restored. docs/operations.md says how to configure it.

Read-your-writes: an event carries a `confirm` id, and Swift's answer waits until the purge
daemon reports that every edge that may serve what the write replaced has applied its purge
(`X-Purge-Confirmed: <edges>`), at most `confirm_timeout`. A write that came through an edge (it
sets X-Edge-Node, and drops a client's) is waited for by that edge, so the event goes out without
a wait; a client that sets the header itself only gives up its own wait. Sub-requests (bulk
deletes' items, SLO segments) always wait: the edge cannot know them.

While Redis is unreachable, writes are refused (503 with Retry-After) before Swift sees them, as
the edges refuse theirs: nobody could be told of them (`when_unreachable = accept` lets them
through, their answers saying `X-Purge-Pending: spooled`). Events that cannot be sent after the
write wait in a spool file (each one synced before Swift's answer goes back) and are sent once
Redis answers; while they are sent, edges that lost the bus do not trust their caches again. The
spool is bounded: when it is full, writes are refused rather than done without their purges. The
proxy's worker processes may share one spool (it is locked with flock).

Standard library and python3-redis only.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
import uuid

import redis

WRITE_METHODS = frozenset(("PUT", "POST", "DELETE", "COPY"))
API_VERSIONS = frozenset(("v1", "v1.0"))
# Room kept for one more event whatever its names (as the edge keeps: Swift caps a name at 1 KiB).
LARGEST_EVENT = 4096
# As the edge answers (edge/pipeline.cc): a restarted Redis is heard from within about a second.
RETRY_AFTER_SECONDS = 1
# The order of an event's fields in the stream (bus::EventFields).
EVENT_FIELDS = ("node", "method", "account", "container", "object", "destination_account",
                "destination", "query", "status", "time_ms", "transaction", "settings")
SETTING_PREFIXES = ("container-", "account-", "versions-", "history-")
# Set by an edge on the writes it relays (edge::kEdgeNodeHeader): it waits for the edges itself.
EDGE_NODE_KEY = "HTTP_X_EDGE_NODE"
# The purge daemons planning events now (bus::kPlannersSet): each keeps its mark while it runs.
PLANNERS_SET = "edge:planners"
# Where the daemon answers an event's `confirm` (bus::ConfirmKey).
CONFIRM_PREFIX = "edge:confirm:"
# A writer's mark while it sends its spool (bus::MarkSpooling), and how long one lasts.
SPOOLING_SET = "edge:spooling"
SPOOLING_MARK_MS = 5000
# Marks in a set, on Redis's clock, as bus::Mark and bus::AnyMarked keep them.
MARK_LUA = """
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000) + ARGV[2], ARGV[1])
"""
ANY_MARKED_LUA = """
local t = redis.call('TIME')
return redis.call('ZCOUNT', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), '+inf')
"""


# ---- settings (the paste filter section) ----------------------------------------------------

def parse_address(text):
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError('"%s" is not host:port (e.g. "127.0.0.1:6379")' % text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 address
    return host, int(port)


def parse_size(text):
    """Bytes, or a number with K, M, G or T (powers of 1024), as the edge's sizes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:i?B)?\s*", text)
    if not match:
        raise ValueError('"%s" is not a size (bytes, or a number with K, M, G or T, e.g. "64M")' % text)
    return int(float(match.group(1)) * 1024 ** "_KMGT".index(match.group(2) or "_"))


def parse_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise ValueError('"%s" is not a number of seconds above 0' % text)
    return value


def parse_name(text):
    if not text:
        raise ValueError("must not be empty")
    return text


def parse_choice(*choices):
    def parse(text):
        if text not in choices:
            raise ValueError("must be %s" % " or ".join('"%s"' % c for c in choices))
        return text
    return parse


def parse_cluster(text):
    if not re.fullmatch(r"[A-Za-z0-9._-]*", text):
        raise ValueError('"%s" may hold only letters, digits, ".", "-" and "_"' % text)
    return text


# name, default, parser, what it is. docs/operations.md lists the same (a test checks).
SETTINGS = (
    ("redis", "127.0.0.1:6379", parse_address,
     "host:port of the purge bus (the Redis the edges' `purge.redis` names)"),
    ("stream", "edge:events", parse_name, "the stream write events are appended to"),
    ("node_id", None, parse_name, "this proxy's name in its events (`node`); default: the host name"),
    ("cluster", "", parse_cluster,
     "this Swift cluster's name, as the edges' tenant files name it (`origin.cluster`); empty: the default"),
    ("spool_path", "/var/cache/swift/edge-purge.spool", parse_name,
     "where events wait while Redis is unreachable; the proxy's workers may share it"),
    ("spool_max", "64M", parse_size,
     "the spool's bound; when it is full, writes are refused (503) so that no purge is lost"),
    ("redis_timeout", "2", parse_seconds, "seconds to connect to Redis and for one command"),
    ("retry_interval", "0.5", parse_seconds, "seconds between attempts to send the spool while Redis is away"),
    ("confirm_timeout", "5", parse_seconds,
     "the most Swift's answer to a write waits for the edges to apply its purge"),
    ("when_unreachable", "refuse", parse_choice("refuse", "accept"),
     'writes while Redis is unreachable: "refuse" (503 before Swift sees them) or "accept" '
     "(done, their answers saying `X-Purge-Pending: spooled`)"),
)


def parse_settings(conf):
    """The filter's settings from its paste section; ValueError naming the key on a bad value."""
    settings = {}
    for name, default, parse, _ in SETTINGS:
        text = conf.get(name, default)
        if text is None and name == "node_id":
            text = socket.gethostname()
        try:
            settings[name] = parse(str(text).strip())
        except ValueError as error:
            raise ValueError("edge_purge: %s: %s" % (name, error)) from None
    return settings


# ---- events (pure) ------------------------------------------------------------------------

def setting_headers(header_names):
    """bus::SettingHeaders: the names that set or remove an account's or container's settings."""
    names = set()
    for header in header_names:
        name = header.lower().replace("_", "-")
        if not name.startswith("x-"):
            continue
        rest = name[2:]
        if rest.startswith("remove-"):
            rest = rest[len("remove-"):]
        if "-sysmeta-" in rest:
            continue  # written by middlewares to the left for a client's header, which is named
        if rest.startswith(SETTING_PREFIXES):
            names.add(name)
    return ",".join(sorted(names))


def wsgi_to_str(text):
    # PEP 3333: the bytes of the request, each as one character.
    return text.encode("latin-1").decode("utf-8", "replace")


def split_target(path):
    """(account, container, object) of a Swift API path, or None for anything else (auth, info)."""
    parts = path.split("/", 4)
    if len(parts) < 3 or parts[0] or parts[1] not in API_VERSIONS or not parts[2]:
        return None
    container = parts[3] if len(parts) > 3 else ""
    obj = parts[4] if len(parts) > 4 else ""
    if obj and not container:
        return None
    return parts[2], container, obj


def request_headers(env):
    """The request's header names (lower case) and values, from a WSGI environment."""
    headers = {}
    for key, value in env.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = wsgi_to_str(value)
    return headers


def make_event(node, method, path, query, headers, status, transaction, time_ms, cluster=""):
    """The write event for a write answered `status` (0: no answer came, it may have happened),
    or None when it certainly changed nothing (as edge::MakeWriteEvent). `path` and `headers`
    are decoded (str); `headers` maps lower-case names to values."""
    if status != 0 and not 200 <= status < 300:
        return None
    target = split_target(path)
    if target is None:
        return None
    account, container, obj = target
    destination = destination_account = ""
    if method == "COPY":
        destination = urllib.parse.unquote(headers.get("destination", ""), errors="replace")
        destination_account = headers.get("destination-account", "")
        if not destination:
            return None
    event = {
        "node": node, "method": method, "account": account, "container": container, "object": obj,
        "destination_account": destination_account, "destination": destination, "query": query,
        "status": status, "time_ms": time_ms, "transaction": transaction,
        # Settings belong to an account or a container; an object's metadata is the object itself.
        "settings": "" if obj else setting_headers(headers),
    }
    if cluster:  # only when named, as bus::EventFields: the default cluster's events are unchanged
        event["cluster"] = cluster
    return event


def event_fields(event):
    """The event's field/value pairs for XADD, in the edge's order (bus::EventFields)."""
    fields = [(name, str(event[name])) for name in EVENT_FIELDS]
    if event.get("confirm"):
        fields.append(("confirm", event["confirm"]))
    if event.get("cluster"):
        fields.append(("cluster", event["cluster"]))
    return fields


def event_json(event):
    """The event as one line of JSON, as bus::EventJson writes it (keys sorted, compact)."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_event_json(line):
    """An event from a spool line, or None for a line that is not one (a torn write)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not event.get("method") or not event.get("account"):
        return None
    if not isinstance(event.get("status"), int) or not isinstance(event.get("time_ms"), int):
        return None
    parsed = {name: event.get(name, "") for name in EVENT_FIELDS}
    for optional in ("confirm", "cluster"):
        if event.get(optional):
            parsed[optional] = event[optional]
    return parsed


# ---- the publisher: Redis, else the spool ---------------------------------------------------

class SpoolFull(Exception):
    pass


class Publisher(object):
    """Sends events to the stream, or spools them (synced) while Redis is unreachable; a thread
    sends the spool once Redis answers. Thread-safe; under Swift's eventlet the thread is green."""

    def __init__(self, settings, logger, client=None):
        self._stream = settings["stream"]
        self._max = settings["spool_max"]
        self._retry = settings["retry_interval"]
        self._node = settings["node_id"]
        self._timeout = settings["redis_timeout"]
        self._logger = logger
        host, port = settings["redis"]
        self._client = client or redis.Redis(
            host=host, port=port, socket_timeout=settings["redis_timeout"],
            socket_connect_timeout=settings["redis_timeout"])
        self._up = True  # events are sent at once; False: spooled until the spool has been sent
        self._mutex = threading.Lock()  # flock does not exclude this process's other threads
        self._wake = threading.Event()
        self._stopping = False
        self._thread = None
        path = settings["spool_path"]
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        # pwrite appends on an O_APPEND descriptor (Linux): compaction writes through this one.
        self._rewrite_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        # Held while one process sends the spool, so that two workers do not send it both.
        self._send_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        with self._locked():
            # A crash mid-append leaves a torn last line: cut it, so the next event starts a line.
            # (Appends happen under the lock, so nobody is writing one now.)
            size = os.fstat(self._fd).st_size
            start = max(0, size - 4 * LARGEST_EVENT)
            tail = os.pread(self._fd, size - start, start)
            if tail and not tail.endswith(b"\n"):
                os.ftruncate(self._fd, start + tail.rfind(b"\n") + 1)

    def close(self):
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        for fd in (self._fd, self._rewrite_fd, self._send_fd):
            os.close(fd)
        self._client.close()

    def start(self):
        """Starts the sender; on the first request, not at load time: Swift loads the pipeline
        once more than it uses (a check before it forks its workers)."""
        if self._thread is not None:
            return
        with self._mutex:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="edge_purge sender", daemon=True)
                self._thread.start()

    @property
    def connected(self):
        """Whether events go to Redis at once (else to the spool, until it has been sent)."""
        return self._up

    def spool_bytes(self):
        return os.fstat(self._fd).st_size

    def has_room(self):
        return self.spool_bytes() + LARGEST_EVENT <= self._max

    def bus_state(self):
        """Before a write is let through: "down" when an event would not reach Redis now,
        "unplanned" when no purge daemon is planning events, else "up". One round trip."""
        if not self._up:
            return "down"
        try:
            return "up" if self._client.eval(ANY_MARKED_LUA, 1, PLANNERS_SET) else "unplanned"
        except redis.RedisError:
            return "down"

    def publish(self, event):
        """True when the event is in Redis, False when it is in the spool; SpoolFull or OSError
        when neither."""
        if self._up:
            try:
                self._client.xadd(self._stream, dict(event_fields(event)))
                return True
            except redis.RedisError as error:
                self._up = False
                self._logger.warning("edge_purge: Redis unreachable (%s); spooling write events", error)
        self._append((event_json(event) + "\n").encode("utf-8"))
        self._wake.set()
        return False

    def wait_confirmed(self, confirm, timeout):
        """The daemon's answer to an event's `confirm`: (edges confirmed, edges pending), or None
        when it did not come within `timeout` seconds."""
        key = CONFIRM_PREFIX + confirm
        deadline = time.monotonic() + timeout
        while True:
            # BLPOP in pieces shorter than the socket's timeout.
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                answer = self._client.blpop([key], timeout=max(0.01, min(left, self._timeout * 0.8)))
            except redis.RedisError:
                return None
            if answer is not None:
                confirmed, _, pending = answer[1].decode("ascii", "replace").partition(" ")
                try:
                    return int(confirmed), int(pending or 0)
                except ValueError:
                    return None

    @contextlib.contextmanager
    def _locked(self):
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _append(self, line):
        with self._locked():
            size = os.fstat(self._fd).st_size
            if size + len(line) > self._max:
                raise SpoolFull("the write-event spool is full (Redis unreachable for long)")
            try:
                # One write of a whole line, then a sync: a crash leaves whole lines, or a torn
                # last one that the next start cuts.
                if os.write(self._fd, line) != len(line):
                    raise OSError(errno.ENOSPC, "short write")
                os.fdatasync(self._fd)
            except OSError:
                os.ftruncate(self._fd, size)  # no partial line left for the sender
                raise

    def _run(self):
        while not self._stopping:
            self._wake.clear()
            try:
                sent = self._send_spool()
                if sent and not self._up:
                    self._client.ping()  # an empty spool proves nothing about Redis
                    self._up = True
                    self._logger.info("edge_purge: Redis reachable again; the spool is sent")
            except (redis.RedisError, OSError) as error:
                self._logger.debug("edge_purge: spool not sent yet: %s", error)
                sent = False
            # Sent: look again in a while (another worker may spool). Not: retry soon.
            self._wake.wait(1.0 if sent else self._retry)

    def _send_spool(self):
        """Sends the spool to the stream and empties it; True when it is empty, None when another
        process is sending it."""
        try:
            fcntl.flock(self._send_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            sent = 0  # bytes at the spool's start that are in Redis
            marked = False
            while True:
                with self._locked():
                    size = os.fstat(self._fd).st_size
                    data = os.pread(self._fd, size - sent, sent)
                end = data.rfind(b"\n") + 1
                if end == 0 and sent == 0:
                    if size == 0 and marked:
                        self._client.zrem(SPOOLING_SET, self._node)
                    return size == 0
                if end == 0:
                    with self._locked():
                        empty = self._compact(sent) == 0 and os.fstat(self._fd).st_size == 0
                    if empty and marked:
                        self._client.zrem(SPOOLING_SET, self._node)
                    return empty
                # Edges that lost the bus wait for this mark to go before they trust their caches.
                self._client.eval(MARK_LUA, 1, SPOOLING_SET, self._node, SPOOLING_MARK_MS)
                marked = True
                pipe = self._client.pipeline(transaction=False)
                for line in data[:end].split(b"\n")[:-1]:
                    event = parse_event_json(line.decode("utf-8", "replace"))
                    if event is not None:
                        pipe.xadd(self._stream, dict(event_fields(event)))
                pipe.execute()  # sending twice (after a failure here) is harmless
                sent += end
                with self._locked():
                    sent = self._compact(sent)
        finally:
            fcntl.flock(self._send_fd, fcntl.LOCK_UN)

    def _compact(self, sent):
        """Drops the first `sent` bytes (in Redis) from the spool; returns what is left of them.
        Under the lock. Interrupted by a crash, it leaves events twice (harmless) and at most
        one broken line (skipped), never loses one."""
        size = os.fstat(self._fd).st_size
        rest = size - sent
        if rest > sent:
            return sent  # would overlap: later, when more is sent
        if rest > 0:
            os.pwrite(self._rewrite_fd, os.pread(self._fd, rest, sent), 0)
        os.ftruncate(self._fd, rest)
        os.fdatasync(self._fd)
        return 0


# ---- the WSGI filter --------------------------------------------------------------------------

class EdgePurgeMiddleware(object):
    def __init__(self, app, settings, logger=None, publisher=None, clock=time.time):
        self.app = app
        self.logger = logger or logging.getLogger("edge_purge")
        self.node = settings["node_id"]
        self.cluster = settings["cluster"]
        self.confirm_timeout = settings["confirm_timeout"]
        self.refuse_unreachable = settings["when_unreachable"] == "refuse"
        self.publisher = publisher or Publisher(settings, self.logger)
        self.clock = clock

    def __call__(self, env, start_response):
        self.publisher.start()  # on any request: a spool left by the last run is sent
        method = env.get("REQUEST_METHOD", "")
        path = wsgi_to_str(env.get("PATH_INFO", ""))
        if method not in WRITE_METHODS or split_target(path) is None:
            return self.app(env, start_response)
        if not self.publisher.has_room():
            # The purges this write would cause could not be recorded: refuse it before Swift
            # does it (as an edge does), rather than do it unseen.
            return refuse(start_response, b"writes are paused: the purge bus has been unreachable too long\n")
        bus = self.publisher.bus_state()
        if self.refuse_unreachable and bus == "down":
            # No edge could hear of this write now: refuse it before it happens, so that a 2xx
            # always means no edge serves what it replaced.
            return refuse(start_response, b"writes are paused: the purge bus is unreachable\n")
        # Read now: a middleware to the right may rewrite the environment (copy turns a COPY
        # into a PUT of the destination in place).
        write = (method, path, wsgi_to_str(env.get("QUERY_STRING", "")), request_headers(env))
        # An edge's own request waits at the edge; a sub-request's (swift.source) never reached one.
        # With no daemon to plan it, nobody would answer: the event waits in the stream for one,
        # and the answer says so.
        waits = EDGE_NODE_KEY not in env or bool(env.get("swift.source"))
        unplanned = waits and bus == "unplanned"
        waits = waits and bus == "up"
        answer = {}

        def answered(status, headers, exc_info=None):
            answer["status"] = int(status.split(" ", 1)[0])
            answer["transaction"] = next((v for n, v in headers if n.lower() == "x-trans-id"), None)
            if exc_info is None and "held" in answer:
                # Held until the edges have applied the write's purge (below).
                answer["head"] = (status, list(headers))
                return lambda data: None  # WSGI's legacy write(), which Swift does not use
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        answer["held"] = True
        try:
            body = self.app(env, answered)
        except BaseException:  # eventlet's Timeout is not an Exception
            self._emit(write, answer, env, False)  # no answer (status 0): it may have happened
            raise
        finally:
            del answer["held"]
        if "head" in answer:
            # Before the answer goes back: when the client has its 2xx, the event is in Redis
            # (and, when it waited, applied by the edges) or in the spool.
            status, headers = answer.pop("head")
            said = self._emit(write, answer, env, waits)
            if unplanned and not said and 200 <= answer["status"] < 300:
                said = [("X-Purge-Pending", "unplanned")]
            start_response(status, headers + said)
            return body
        if "status" in answer:
            self._emit(write, answer, env, False)
            return body
        return self._emit_when_answered(body, write, answer, env)

    def _emit_when_answered(self, body, write, answer, env):
        # An application that answers only once iterated (Swift's do not): emit at its first
        # piece, or at its end. Its head has gone by then: nobody waits for the edges.
        emitted = False
        try:
            for piece in body:
                if not emitted:
                    emitted = True
                    self._emit(write, answer, env, False)
                yield piece
        finally:
            if not emitted:
                self._emit(write, answer, env, False)
            if hasattr(body, "close"):
                body.close()

    def _emit(self, write, answer, env, wait):
        """Emits the write's event; with `wait`, waits for the edges to apply it. The headers that
        say how that went, for the answer."""
        method, path, query, headers = write
        transaction = answer.get("transaction") or env.get("swift.trans_id", "")
        event = make_event(self.node, method, path, query, headers, answer.get("status", 0), transaction,
                           int(self.clock() * 1000), self.cluster)
        if event is None:
            return []
        if wait:
            event["confirm"] = uuid.uuid4().hex
        try:
            sent = self.publisher.publish(event)
        except (SpoolFull, OSError) as error:
            # The spool filled up since the write was let through: the edges will not hear of it.
            self.logger.error("edge_purge: a %s of %s is not recorded for the edges: %s", method, path, error)
            return [("X-Purge-Pending", "lost")]
        if not sent:
            return [("X-Purge-Pending", "spooled")]
        if not wait:
            return []
        confirmed = self.publisher.wait_confirmed(event["confirm"], self.confirm_timeout)
        if confirmed is None:
            return [("X-Purge-Pending", "unconfirmed")]
        out = [("X-Purge-Confirmed", str(confirmed[0]))]
        if confirmed[1] > 0:
            out.append(("X-Purge-Pending", str(confirmed[1])))
        return out


def refuse(start_response, body):
    start_response("503 Service Unavailable", [
        ("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
        ("Retry-After", str(RETRY_AFTER_SECONDS))])
    return [body]


def _logger(conf):
    try:
        from swift.common.utils import get_logger
    except ImportError:
        return logging.getLogger("edge_purge")
    return get_logger(conf, log_route="edge_purge")


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf)
    conf.update(local_conf)
    settings = parse_settings(conf)
    logger = _logger(conf)

    def edge_purge_filter(app):
        return EdgePurgeMiddleware(app, settings, logger)

    return edge_purge_filter
