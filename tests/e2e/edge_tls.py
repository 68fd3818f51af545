"""TLS clients for tests/e2e/edge_tls.sh and tls_flood.sh, with the standard library's ssl.

usage: edge_tls.py CA COMMAND ARGS...  (CA: the test CA's PEM file; every handshake verifies the
chain against it, never the host name: the tests check which certificate came by its serial)
  peer PORT SNI|-                  the served certificate's serial (hex) and first DNS name
  resume PORT1 PORT2 SNI VERSION   a session from PORT1 offered to PORT2 ("1.2" or "1.3"):
                                   prints "reused" or "new"
  alpn PORT SNI                    the protocol chosen when h2 and http/1.1 are offered
  keepalive PORT SNI HOST PATH STOPFILE
                                   4 kept-alive connections GET PATH until STOPFILE exists; prints
                                   "ok N failed M reconnects R", exit 1 on any failure
  silent PORT                      opens TCP, sends nothing: seconds until the edge closes it
  latency PORT SNI HOST PATH CONNECTIONS SECONDS
                                   kept-alive GETs: prints "requests N failed M p50_ms A p99_ms B"
"""
import http.client
import os
import socket
import ssl
import sys
import threading
import time


def context(ca, version=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def connect(ctx, port, sni, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=sni, session=session)


def get(tls, host, path="/"):
    """One GET on an open TLS socket, the whole answer read; returns the status."""
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    response = http.client.HTTPResponse(tls)
    response.begin()
    response.read()
    return response.status


def peer(ca, port, sni):
    with connect(context(ca), int(port), None if sni == "-" else sni) as tls:
        cert = tls.getpeercert()
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        print(cert["serialNumber"], names[0] if names else "-")


def resume(ca, port1, port2, sni, version):
    ctx = context(ca, version)
    with connect(ctx, int(port1), sni) as tls:
        get(tls, sni)  # TLS 1.3 tickets come after the handshake: read an answer to get them
        session = tls.session
    with connect(ctx, int(port2), sni, session) as tls:
        get(tls, sni)
        print("reused" if tls.session_reused else "new")


def alpn(ca, port, sni):
    with connect(context(ca, alpn=["h2", "http/1.1"]), int(port), sni) as tls:
        print(tls.selected_alpn_protocol())


def keepalive(ca, port, sni, host, path, stopfile):
    ctx = context(ca)
    counts = {"ok": 0, "failed": 0, "reconnects": 0}
    lock = threading.Lock()

    def run():
        tls = connect(ctx, int(port), sni)
        while not os.path.exists(stopfile):
            try:
                status = get(tls, host, path)
            except (OSError, http.client.HTTPException) as error:
                status = repr(error)
            with lock:
                if status == 200:
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    print("keepalive: request failed:", status, file=sys.stderr)
            if status != 200:
                tls.close()
                tls = connect(ctx, int(port), sni)
                with lock:
                    counts["reconnects"] += 1
        tls.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"ok {counts['ok']} failed {counts['failed']} reconnects {counts['reconnects']}")
    sys.exit(1 if counts["failed"] else 0)


def silent(_ca, port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    start = time.monotonic()
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    print(f"{time.monotonic() - start:.2f}")


def latency(ca, port, sni, host, path, connections, seconds):
    ctx = context(ca)
    samples = []
    failures = []
    lock = threading.Lock()
    deadline = time.monotonic() + float(seconds)

    def run():
        tls = connect(ctx, int(port), sni)
        mine = []
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                status = get(tls, host, path)
            except (OSError, http.client.HTTPException) as error:
                status = repr(error)
            if status == 200:
                mine.append(time.monotonic() - start)
            else:
                with lock:
                    failures.append(status)
                tls.close()
                tls = connect(ctx, int(port), sni)
        tls.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(int(connections))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples.sort()
    if failures:
        print("latency: failed:", failures[:5], file=sys.stderr)

    def quantile(q):
        return samples[min(len(samples) - 1, int(q * len(samples)))] * 1000 if samples else 0.0

    print(f"requests {len(samples)} failed {len(failures)} p50_ms {quantile(0.5):.2f} p99_ms {quantile(0.99):.2f}")
    sys.exit(1 if failures or not samples else 0)


COMMANDS = {"peer": peer, "resume": resume, "alpn": alpn, "keepalive": keepalive, "silent": silent,
            "latency": latency}

if __name__ == "__main__":
    COMMANDS[sys.argv[2]](sys.argv[1], *sys.argv[3:])
