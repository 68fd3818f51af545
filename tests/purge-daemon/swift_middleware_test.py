"""The Swift proxy middleware (purge-daemon/swift_middleware/edge_purge.py) as a WSGI filter
around a fake Swift: which requests become which events, the golden format it shares with the
edge, the spool; then against a real redis-server on a free loopback port: events land in the
stream, survive an outage of Redis in the spool, and a full spool refuses writes.

Run by ctest: python3 -m unittest swift_middleware_test (Debian's python3, with python3-redis).
"""
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.normpath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(SOURCE, "purge-daemon/swift_middleware"))
sys.path.insert(0, os.path.join(SOURCE, "tests/support"))

import redis  # noqa: E402

import edge_purge  # noqa: E402
from free_ports import free_ports  # noqa: E402

GOLDEN = os.path.join(HERE, "golden/write_events.json")
QUIET = edge_purge.logging.getLogger("edge_purge_test")  # its warnings are expected here
QUIET.addHandler(edge_purge.logging.NullHandler())
QUIET.propagate = False


def environ(method, path, query="", headers=None, **extra):
    """A WSGI environment as Swift's proxy gets it: PATH_INFO decoded, as bytes in latin-1."""
    env = {"REQUEST_METHOD": method, "PATH_INFO": path.encode("utf-8").decode("latin-1"),
           "QUERY_STRING": query, "wsgi.input": io.BytesIO(b"")}
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value.encode("utf-8").decode("latin-1")
    env.update(extra)
    return env


class FakeSwift(object):
    """Answers every request with `status`; raises instead when status is 0 (no answer came)."""

    def __init__(self, status=201, headers=None):
        self.status, self.headers, self.calls = status, headers or {}, []

    def __call__(self, env, start_response):
        self.calls.append((env["REQUEST_METHOD"], env["PATH_INFO"]))
        if self.status == 0:
            raise IOError("the object servers went away")
        start_response("%d Whatever" % self.status, list(self.headers.items()))
        return [b"body"]


class FakeRedis(object):
    """Records XADDs (stream, fields in order) and spooling marks; `down` makes every command fail
    as Redis away. The daemon's answer to a `confirm` is `confirm_answer` (None: it never comes);
    `on_wait` is called when a writer starts waiting for it."""

    def __init__(self):
        self.added, self.down, self.marks, self.waited = [], False, [], []
        self.confirm_answer, self.on_wait = b"1 0", None
        self.planners = 1  # daemons planning events

    def check(self):
        if self.down:
            raise redis.ConnectionError("Connection refused")

    def xadd(self, stream, fields):
        self.check()
        self.added.append((stream, list(fields.items())))

    def blpop(self, keys, timeout=0):
        self.check()
        self.waited.append(keys[0])
        if self.on_wait is not None:
            self.on_wait()
        if self.confirm_answer is None:
            time.sleep(timeout)
            return None
        return (keys[0].encode(), self.confirm_answer)

    def eval(self, script, numkeys, key, *args):
        self.check()
        if key == edge_purge.PLANNERS_SET:
            return self.planners
        self.marks.append(("mark", args[0]))

    def zrem(self, key, node):
        self.check()
        self.marks.append(("clear", node))

    def pipeline(self, transaction=False):
        fake = self

        class Pipeline(object):
            def __init__(self):
                self.queued = []

            def xadd(self, stream, fields):
                self.queued.append((stream, fields))

            def execute(self):
                for stream, fields in self.queued:
                    fake.xadd(stream, fields)

        return Pipeline()

    def ping(self):
        if self.down:
            raise redis.ConnectionError("Connection refused")
        return True

    def close(self):
        pass


def call(app, env):
    """Runs a WSGI request through `app`: (status, headers, body)."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app(env, start_response))
    return answer["status"], answer["headers"], body


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class MiddlewareCase(unittest.TestCase):
    """A middleware on a temporary spool; `settings()` may be overridden per test."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="edge-purge-test-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.spool = os.path.join(self.dir, "events.spool")

    def settings(self, **overrides):
        conf = {"node_id": "proxy-1", "spool_path": self.spool, "retry_interval": "0.02",
                "redis_timeout": "0.5", "confirm_timeout": "0.2"}
        conf.update(overrides)
        return edge_purge.parse_settings(conf)

    def middleware(self, app, client=None, clock=lambda: 1795500000.123, **overrides):
        settings = self.settings(**overrides)
        publisher = edge_purge.Publisher(settings, QUIET, client=client)
        self.addCleanup(publisher.close)
        return edge_purge.EdgePurgeMiddleware(app, settings, QUIET, publisher=publisher, clock=clock)

    def spooled(self):
        with open(self.spool, encoding="utf-8") as f:
            return [json.loads(line) for line in f]


class GoldenFormat(MiddlewareCase):
    def test_the_middleware_writes_the_golden_files_events(self):
        with open(GOLDEN, encoding="utf-8") as f:
            golden = json.load(f)
        self.assertGreaterEqual(len(golden["events"]), 8)
        for case in golden["events"]:
            with self.subTest(case["case"]):
                request, response = case["request"], case["response"]
                fields = [tuple(f) for f in case["fields"]]
                time_ms = int(dict(fields)["time_ms"])
                fake = FakeRedis()
                app = self.middleware(FakeSwift(response["status"], response["headers"]), client=fake,
                                      clock=lambda: time_ms / 1000.0, node_id=golden["node"])
                env = environ(request["method"], request["path"], request["query"], request["headers"])
                if response["status"] == 0:
                    self.assertRaises(IOError, call, app, env)
                else:
                    call(app, env)
                # Its confirm id is new each time: where the daemon answers it, and where it waited.
                [(stream, added)] = fake.added
                confirm = dict(added).get("confirm", "")
                # No answer came: nothing to hold, nothing to wait for.
                self.assertRegex(confirm, "^$" if response["status"] == 0 else "^[0-9a-f]{32}$")
                without = [f for f in added if f[0] != "confirm"]
                self.assertEqual((stream, without), ("edge:events", fields))
                self.assertEqual(fake.waited, ([] if response["status"] == 0 else ["edge:confirm:" + confirm]))
                # The spool's line, as the edge writes its own.
                event = edge_purge.make_event(
                    golden["node"], request["method"], request["path"], request["query"],
                    {k.lower(): v for k, v in request["headers"].items()}, response["status"],
                    response["headers"].get("X-Trans-Id", ""), time_ms)
                self.assertEqual(edge_purge.event_json(event), case["spool"])
                self.assertEqual(edge_purge.parse_event_json(case["spool"]), event)

    def test_settings_are_named_as_the_edge_names_them(self):
        names = ["X-Container-Read", "x_container_meta_a", "X-Remove-Versions-Location", "X-History-Location",
                 "X-Account-Meta-K", "X-Container-Read", "X-Storage-Policy", "X-Auth-Token", "X-Remove-Foo",
                 "Content-Type", "X-Object-Meta-C", "X-Versions-Enabled", "X-Container-Sysmeta-Versions-Location",
                 "X-Remove-Account-Sysmeta-X", "X-Container-Transient-Sysmeta-Y"]
        # The same list and answer as protocol_test.cc's.
        self.assertEqual(edge_purge.setting_headers(names),
                         "x-account-meta-k,x-container-meta-a,x-container-read,x-history-location,"
                         "x-remove-versions-location,x-versions-enabled")

    def test_a_named_cluster_is_the_last_field_and_the_default_one_is_left_out(self):
        # The same event and encoding as protocol_test.cc's "the cluster field".
        event = edge_purge.make_event("p1", "PUT", "/v1/AUTH_test/c/o", "", {}, 201, "tx", 7, "east")
        self.assertEqual(edge_purge.event_fields(event)[-2:], [("settings", ""), ("cluster", "east")])
        self.assertIn('"cluster":"east"', edge_purge.event_json(event))
        self.assertEqual(edge_purge.parse_event_json(edge_purge.event_json(event)), event)
        default = edge_purge.make_event("p1", "PUT", "/v1/AUTH_test/c/o", "", {}, 201, "tx", 7)
        self.assertNotIn("cluster", dict(edge_purge.event_fields(default)))
        self.assertNotIn("cluster", edge_purge.event_json(default))

    def test_a_line_that_is_no_event_is_skipped(self):
        for line in ("", "{torn", "[1]", '{"method":"PUT"}', '{"method":"PUT","account":"A","status":"x","time_ms":1}'):
            self.assertIsNone(edge_purge.parse_event_json(line))
        old = edge_purge.parse_event_json('{"method":"PUT","account":"A","status":201,"time_ms":5}')
        self.assertEqual(old["settings"], "")  # an event from before the field was added


class WhatIsEmitted(MiddlewareCase):
    def emitted(self, method, path, query="", headers=None, status=201, **extra):
        fake = FakeRedis()
        swift = FakeSwift(status, {"X-Trans-Id": "tx1"})
        app = self.middleware(swift, client=fake)
        env = environ(method, path, query, headers, **extra)
        if status == 0:
            self.assertRaises(IOError, call, app, env)
        else:
            self.assertEqual(call(app, env)[0], status)
        self.assertEqual(len(swift.calls), 1)  # Swift saw the request once, whatever it was
        return [dict(fields) for _, fields in fake.added]

    def test_successful_writes_of_objects_containers_and_accounts(self):
        for method in ("PUT", "POST", "DELETE"):
            for path, target in (("/v1/AUTH_test/c/dir/o.txt", ("AUTH_test", "c", "dir/o.txt")),
                                 ("/v1/AUTH_test/c", ("AUTH_test", "c", "")),
                                 ("/v1/AUTH_test/c/", ("AUTH_test", "c", "")),
                                 ("/v1/AUTH_test", ("AUTH_test", "", ""))):
                with self.subTest(method=method, path=path):
                    [event] = self.emitted(method, path, status=204)
                    self.assertEqual((event["method"], event["account"], event["container"], event["object"]),
                                     (method,) + target)
                    self.assertEqual((event["status"], event["node"], event["transaction"]), ("204", "proxy-1", "tx1"))

    def test_reads_failures_and_other_paths_emit_nothing(self):
        self.assertEqual(self.emitted("GET", "/v1/AUTH_test/c/o", status=200), [])
        self.assertEqual(self.emitted("HEAD", "/v1/AUTH_test/c", status=204), [])
        self.assertEqual(self.emitted("OPTIONS", "/v1/AUTH_test/c/o", status=200), [])
        for status in (304, 400, 401, 404, 409, 412, 499, 500, 503):
            self.assertEqual(self.emitted("PUT", "/v1/AUTH_test/c/o", status=status), [], status)
        self.assertEqual(self.emitted("PUT", "/auth/v1.0", status=200), [])
        self.assertEqual(self.emitted("POST", "/info", status=200), [])
        self.assertEqual(self.emitted("PUT", "/v2/AUTH_test/c/o", status=201), [])

    def test_a_write_whose_answer_never_came_may_have_happened(self):
        [event] = self.emitted("DELETE", "/v1/AUTH_test/c/o", status=0, **{"swift.trans_id": "tx9"})
        self.assertEqual((event["status"], event["transaction"]), ("0", "tx9"))

    def test_copy_names_its_destination_left_of_copy_and_is_a_put_of_it_right_of_copy(self):
        [event] = self.emitted("COPY", "/v1/AUTH_test/c/o", headers={
            "Destination": "/d/new%20name", "Destination-Account": "AUTH_test2"})
        self.assertEqual((event["method"], event["object"], event["destination"], event["destination_account"]),
                         ("COPY", "o", "/d/new name", "AUTH_test2"))
        self.assertEqual(self.emitted("COPY", "/v1/AUTH_test/c/o"), [])  # refused by Swift anyway
        # Swift's copy middleware, left of this one, has made the COPY a PUT of the destination.
        [event] = self.emitted("PUT", "/v1/AUTH_test2/d/new name", headers={"X-Copy-From": "/c/o"})
        self.assertEqual((event["method"], event["account"], event["container"], event["object"]),
                         ("PUT", "AUTH_test2", "d", "new name"))

    def test_the_request_is_read_before_a_middleware_to_the_right_rewrites_it(self):
        fake = FakeRedis()

        def copy_like(env, start_response):  # as swift's copy: the same environment, made a PUT
            env["REQUEST_METHOD"], env["PATH_INFO"] = "PUT", "/v1/AUTH_test/d/o2"
            del env["HTTP_DESTINATION"]
            start_response("201 Created", [])
            return [b""]

        call(self.middleware(copy_like, client=fake), environ("COPY", "/v1/AUTH_test/c/o", headers={"Destination": "d/o2"}))
        [(_, fields)] = fake.added
        self.assertEqual(dict(fields)["destination"], "d/o2")

    def test_container_settings_are_carried_objects_carry_none(self):
        [event] = self.emitted("PUT", "/v1/AUTH_test/c", status=202)
        self.assertEqual(event["settings"], "")  # a PUT of an existing container that sets nothing
        [event] = self.emitted("POST", "/v1/AUTH_test/c", status=204, headers={
            "X-Container-Read": ".r:*", "X-Remove-Container-Meta-Web-Index": "x", "X-Auth-Token": "t"})
        self.assertEqual(event["settings"], "x-container-read,x-remove-container-meta-web-index")
        [event] = self.emitted("POST", "/v1/AUTH_test/c/o", status=202, headers={"X-Container-Read": ".r:*"})
        self.assertEqual(event["settings"], "")

    def test_no_client_header_suppresses_an_event(self):
        # Whatever a client claims (that an edge sent it, that it must not purge), it is emitted.
        headers = {"X-Edge-Node": "edge-1", "X-Edge-Purge": "0", "X-No-Purge": "1", "Cache-Control": "no-purge"}
        self.assertEqual(len(self.emitted("PUT", "/v1/AUTH_test/c/o", headers=headers)), 1)

    def test_names_are_decoded_as_swift_has_them(self):
        [event] = self.emitted("PUT", "/v1/AUTH_test/c/ü dir/x%41.txt", query="multipart-manifest=put")
        self.assertEqual((event["object"], event["query"]), ("ü dir/x%41.txt", "multipart-manifest=put"))

    def test_the_event_is_out_before_the_answer_goes_back(self):
        fake = FakeRedis()
        app = self.middleware(FakeSwift(201), client=fake)
        app(environ("PUT", "/v1/AUTH_test/c/o"), lambda status, headers, exc_info=None: None)
        # Swift answers through start_response before it returns; the event is sent by the time
        # the filter returns the body to the pipeline on its left, which sends the answer.
        self.assertEqual(len(fake.added), 1)

    def test_an_application_that_answers_lazily_still_emits(self):
        fake = FakeRedis()

        def lazy(env, start_response):
            start_response("201 Created", [("X-Trans-Id", "tx-lazy")])
            yield b"a"
            yield b"b"

        status, _, body = call(self.middleware(lazy, client=fake), environ("PUT", "/v1/AUTH_test/c/o"))
        self.assertEqual((status, body), (201, b"ab"))
        [(_, fields)] = fake.added
        self.assertEqual(dict(fields)["transaction"], "tx-lazy")


class ReadYourWrites(MiddlewareCase):
    def test_swifts_answer_waits_for_the_edges_and_says_how_many_applied_it(self):
        fake = FakeRedis()
        fake.confirm_answer = b"3 0"
        answered_before_the_wait = []
        sent = {}

        def start_response(status, headers, exc_info=None):
            sent["status"], sent["headers"] = status, dict(headers)

        fake.on_wait = lambda: answered_before_the_wait.append("status" in sent)
        app = self.middleware(FakeSwift(201), client=fake)
        b"".join(app(environ("PUT", "/v1/AUTH_test/c/o"), start_response))
        self.assertEqual(answered_before_the_wait, [False])  # the 2xx was held during the wait
        self.assertEqual(sent["headers"]["X-Purge-Confirmed"], "3")
        self.assertNotIn("X-Purge-Pending", sent["headers"])
        [(_, fields)] = fake.added
        self.assertEqual(fake.waited, ["edge:confirm:" + dict(fields)["confirm"]])

    def test_a_wait_that_times_out_still_answers_and_says_so(self):
        fake = FakeRedis()
        fake.confirm_answer = None
        status, headers, _ = call(self.middleware(FakeSwift(201), client=fake), environ("DELETE", "/v1/A/c/o"))
        self.assertEqual((status, headers["X-Purge-Pending"]), (201, "unconfirmed"))
        fake.confirm_answer = b"1 1"  # the daemon gave up on an edge
        status, headers, _ = call(self.middleware(FakeSwift(201), client=fake), environ("DELETE", "/v1/A/c/o"))
        self.assertEqual((headers["X-Purge-Confirmed"], headers["X-Purge-Pending"]), ("1", "1"))

    def test_an_edges_own_write_is_waited_for_by_the_edge_its_sub_requests_here(self):
        fake = FakeRedis()
        app = self.middleware(FakeSwift(201), client=fake)
        call(app, environ("PUT", "/v1/A/c/o", headers={"X-Edge-Node": "edge-1"}))
        self.assertNotIn("confirm", dict(fake.added[-1][1]))
        self.assertEqual(fake.waited, [])
        # A bulk delete's item, a segment: the edge cannot know them.
        call(app, environ("DELETE", "/v1/A/c/o", headers={"X-Edge-Node": "edge-1"}, **{"swift.source": "BD"}))
        self.assertIn("confirm", dict(fake.added[-1][1]))
        self.assertEqual(len(fake.waited), 1)

    def test_with_no_daemon_reading_nobody_waits_and_the_answer_says_so(self):
        fake = FakeRedis()
        fake.planners = 0  # no daemon holds its mark: none runs, or all stopped
        status, headers, _ = call(self.middleware(FakeSwift(201), client=fake), environ("PUT", "/v1/A/c/o"))
        self.assertEqual((status, headers["X-Purge-Pending"]), (201, "unplanned"))
        self.assertEqual(fake.waited, [])
        self.assertNotIn("confirm", dict(fake.added[-1][1]))  # planned when a daemon comes

    def test_redis_unreachable_a_write_is_refused_before_swift_sees_it(self):
        fake = FakeRedis()
        fake.down = True
        swift = FakeSwift(201)
        status, headers, _ = call(self.middleware(swift, client=fake), environ("PUT", "/v1/A/c/o"))
        self.assertEqual((status, headers["Retry-After"]), (503, "1"))
        self.assertEqual(swift.calls, [])
        self.assertEqual(call(self.middleware(swift, client=fake), environ("GET", "/v1/A/c/o"))[0], 201)  # reads go on

    def test_a_spool_being_sent_is_marked_until_it_is_empty(self):
        fake = FakeRedis()
        fake.down = True
        app = self.middleware(FakeSwift(201), client=fake, when_unreachable="accept")
        call(app, environ("PUT", "/v1/A/c/o"))
        fake.down = False
        self.assertTrue(wait_for(lambda: ("clear", "proxy-1") in fake.marks))
        self.assertEqual(fake.marks[0], ("mark", "proxy-1"))  # before the first event went out
        self.assertEqual(os.path.getsize(self.spool), 0)


class Spool(MiddlewareCase):
    def test_redis_away_the_event_is_spooled_then_sent_in_order(self):
        fake = FakeRedis()
        fake.down = True
        app = self.middleware(FakeSwift(201), client=fake, when_unreachable="accept")
        for i in range(5):
            status, headers, _ = call(app, environ("PUT", "/v1/AUTH_test/c/o%d" % i))
            self.assertEqual((status, headers.get("X-Purge-Pending")), (201, "spooled"))
        self.assertEqual([e["object"] for e in self.spooled()], ["o0", "o1", "o2", "o3", "o4"])
        fake.down = False
        self.assertTrue(wait_for(lambda: len(fake.added) == 5))
        self.assertEqual([dict(f)["object"] for _, f in fake.added], ["o0", "o1", "o2", "o3", "o4"])
        self.assertTrue(wait_for(lambda: os.path.getsize(self.spool) == 0 and app.publisher.connected))
        call(app, environ("PUT", "/v1/AUTH_test/c/later"))  # straight to Redis again
        self.assertEqual(dict(fake.added[-1][1])["object"], "later")
        self.assertEqual(os.path.getsize(self.spool), 0)

    def test_a_full_spool_refuses_writes_before_swift_sees_them(self):
        fake = FakeRedis()
        fake.down = True
        swift = FakeSwift(201)
        app = self.middleware(swift, client=fake, spool_max=str(edge_purge.LARGEST_EVENT + 700),
                              when_unreachable="accept")
        statuses = [call(app, environ("PUT", "/v1/AUTH_test/c/o%d" % i))[0] for i in range(6)]
        self.assertIn(503, statuses)
        accepted = statuses.index(503)
        self.assertGreater(accepted, 0)
        self.assertEqual(statuses[accepted:], [503] * (6 - accepted))
        self.assertEqual(len(swift.calls), accepted)  # the refused ones never reached Swift
        self.assertEqual(len(self.spooled()), accepted)  # and every accepted one is kept
        status, headers, _ = call(app, environ("DELETE", "/v1/AUTH_test/c/o0"))
        self.assertEqual((status, headers["Retry-After"]), (503, "1"))
        self.assertEqual(call(app, environ("GET", "/v1/AUTH_test/c/o0"))[0], 201)  # reads go on
        fake.down = False
        self.assertTrue(wait_for(lambda: os.path.getsize(self.spool) == 0))
        self.assertEqual(call(app, environ("PUT", "/v1/AUTH_test/c/again"))[0], 201)

    def test_a_spool_left_by_the_last_run_is_sent_on_the_first_request_even_a_read(self):
        event = edge_purge.make_event("n", "DELETE", "/v1/A/c/left", "", {}, 204, "tx", 5)
        with open(self.spool, "w") as f:
            f.write(edge_purge.event_json(event) + "\n")
        fake = FakeRedis()
        app = self.middleware(FakeSwift(200), client=fake)
        self.assertEqual(fake.added, [])  # not at load time: Swift loads a pipeline it never uses
        call(app, environ("GET", "/v1/A/c/o"))
        self.assertTrue(wait_for(lambda: len(fake.added) == 1))
        self.assertEqual(dict(fake.added[0][1])["object"], "left")

    def test_a_torn_last_line_is_cut_at_start(self):
        event = edge_purge.make_event("n", "PUT", "/v1/A/c/o", "", {}, 201, "tx", 5)
        with open(self.spool, "w") as f:
            f.write(edge_purge.event_json(event) + "\n" + edge_purge.event_json(event)[:20])
        fake = FakeRedis()
        fake.down = True
        app = self.middleware(FakeSwift(201), client=fake, when_unreachable="accept")
        call(app, environ("PUT", "/v1/A/c/o2"))
        self.assertEqual([e["object"] for e in self.spooled()], ["o", "o2"])

    def test_workers_share_one_spool_and_lose_nothing(self):
        # Two publishers on one file stand for two proxy workers.
        fake = FakeRedis()
        fake.down = True
        apps = [self.middleware(FakeSwift(201), client=fake, when_unreachable="accept") for _ in range(2)]
        threads = [threading.Thread(target=lambda a=a, n=n: [call(a, environ("PUT", "/v1/A/c/%s%d" % (n, i)))
                                                             for i in range(50)])
                   for n, a in zip("xy", apps)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(self.spooled()), 100)
        fake.down = False
        self.assertTrue(wait_for(lambda: os.path.getsize(self.spool) == 0))
        self.assertEqual({dict(f)["object"] for _, f in fake.added},
                         {"%s%d" % (n, i) for n in "xy" for i in range(50)})


class Settings(unittest.TestCase):
    def test_defaults_match_the_edges(self):
        settings = edge_purge.parse_settings({})
        self.assertEqual(settings["redis"], ("127.0.0.1", 6379))
        self.assertEqual(settings["stream"], "edge:events")
        self.assertEqual(settings["spool_max"], 64 << 20)
        self.assertTrue(settings["node_id"])

    def test_values_are_checked(self):
        self.assertEqual(edge_purge.parse_settings({"spool_max": "1.5K"})["spool_max"], 1536)
        self.assertEqual(edge_purge.parse_settings({"redis": "[::1]:7000"})["redis"], ("::1", 7000))
        for key, value in (("redis", "localhost"), ("redis", "h:0"), ("redis", ":1"), ("spool_max", "10 dayz"),
                           ("redis_timeout", "0"), ("node_id", "")):
            with self.assertRaisesRegex(ValueError, "edge_purge: " + key):
                edge_purge.parse_settings({key: value})

    def test_the_paste_factory_makes_a_filter(self):
        with tempfile.TemporaryDirectory() as d:
            make = edge_purge.filter_factory({"log_name": "proxy"}, spool_path=os.path.join(d, "s"), node_id="p")
            app = make(FakeSwift(200))
            self.assertIsInstance(app, edge_purge.EdgePurgeMiddleware)
            self.assertEqual(app.node, "p")
            app.publisher.close()

    def test_the_docs_list_every_setting(self):
        with open(os.path.join(SOURCE, "docs/operations.md"), encoding="utf-8") as f:
            docs = f.read()
        for name, default, _, _ in edge_purge.SETTINGS:
            self.assertIn("| `%s` |" % name, docs)


class RealRedis(MiddlewareCase):
    """A redis-server of the test's own on a free loopback port, stopped by its PID."""

    def setUp(self):
        super().setUp()
        self.port = free_ports()
        self.process = None
        self.start_redis()
        self.addCleanup(self.stop_redis)
        self.redis = redis.Redis(port=self.port, socket_timeout=2)
        self.addCleanup(self.redis.close)

    def start_redis(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--save", "", "--appendonly", "yes", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)

        def answers():
            try:
                return probe.ping()
            except redis.RedisError:
                return False

        try:
            if not wait_for(answers, 10):
                raise RuntimeError("redis-server on port %d did not answer" % self.port)
        finally:
            probe.close()

    def stop_redis(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def objects(self):
        return [fields[b"object"].decode() for _, fields in self.redis.xrange("edge:events")]

    def test_events_land_in_the_stream_as_the_daemon_reads_them(self):
        app = self.middleware(FakeSwift(201, {"X-Trans-Id": "tx1"}), redis="127.0.0.1:%d" % self.port)
        call(app, environ("PUT", "/v1/AUTH_test/c/ü.txt"))
        [(_, fields)] = self.redis.xrange("edge:events")
        self.assertEqual([(k.decode(), v.decode()) for k, v in fields.items()],
                         [("node", "proxy-1"), ("method", "PUT"), ("account", "AUTH_test"), ("container", "c"),
                          ("object", "ü.txt"), ("destination_account", ""), ("destination", ""), ("query", ""),
                          ("status", "201"), ("time_ms", "1795500000123"), ("transaction", "tx1"),
                          ("settings", "")])  # no daemon reads the stream: nobody to wait for

    def test_a_write_waits_for_the_daemons_answer(self):
        # A daemon of the planners' group, as the purge daemon's consumer answers a `confirm`;
        # it holds its mark (bus::Mark) while it runs.
        self.redis.xgroup_create("edge:events", "planners", id="0", mkstream=True)
        self.redis.eval(edge_purge.MARK_LUA, 1, edge_purge.PLANNERS_SET, "fake", 60000)
        stop = threading.Event()

        def daemon():
            while not stop.is_set():
                for _, entries in self.redis.xreadgroup("planners", "fake", {"edge:events": ">"}, block=100) or []:
                    for _, fields in entries:
                        if b"confirm" in fields:
                            self.redis.rpush(b"edge:confirm:" + fields[b"confirm"], b"2 0")

        thread = threading.Thread(target=daemon)
        thread.start()
        self.addCleanup(lambda: (stop.set(), thread.join()))
        app = self.middleware(FakeSwift(201), redis="127.0.0.1:%d" % self.port, confirm_timeout="5")
        started = time.monotonic()
        status, headers, _ = call(app, environ("PUT", "/v1/A/c/o"))
        self.assertEqual((status, headers.get("X-Purge-Confirmed")), (201, "2"))
        self.assertLess(time.monotonic() - started, 4)  # answered, not timed out

    def test_redis_stopped_then_started_nothing_lost(self):
        app = self.middleware(FakeSwift(201), redis="127.0.0.1:%d" % self.port, when_unreachable="accept")
        expected = []
        for i in range(5):
            expected.append("before%d" % i)
            self.assertEqual(call(app, environ("PUT", "/v1/A/c/" + expected[-1]))[0], 201)
        self.stop_redis()
        for i in range(20):
            expected.append("during%d" % i)
            self.assertEqual(call(app, environ("DELETE", "/v1/A/c/" + expected[-1]))[0], 201)
        self.assertEqual(len(self.spooled()), 20)
        self.start_redis()  # the append-only file kept the first five
        self.assertTrue(wait_for(lambda: len(self.objects()) >= 25), self.objects())
        self.assertTrue(wait_for(lambda: os.path.getsize(self.spool) == 0))
        for i in range(3):
            expected.append("after%d" % i)
            call(app, environ("POST", "/v1/A/c/" + expected[-1]))
        self.assertTrue(wait_for(lambda: sorted(self.objects()) == sorted(expected)), self.objects())

    def test_spool_full_refuses_writes_until_redis_is_back(self):
        swift = FakeSwift(201)
        app = self.middleware(swift, redis="127.0.0.1:%d" % self.port, spool_max=str(edge_purge.LARGEST_EVENT + 700),
                              when_unreachable="accept")
        self.stop_redis()
        statuses = [call(app, environ("PUT", "/v1/A/c/o%d" % i))[0] for i in range(8)]
        self.assertEqual(statuses[-1], 503)
        self.assertEqual(len(swift.calls), statuses.count(201))
        self.start_redis()
        self.assertTrue(wait_for(lambda: os.path.getsize(self.spool) == 0))
        self.assertEqual(call(app, environ("PUT", "/v1/A/c/back"))[0], 201)
        expected = sorted(["o%d" % i for i, s in enumerate(statuses) if s == 201] + ["back"])
        self.assertTrue(wait_for(lambda: sorted(self.objects()) == expected), self.objects())


if __name__ == "__main__":
    unittest.main()
