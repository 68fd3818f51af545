"""Medians, ratios and targets of benchmarks/edge_vs_peers.sh: reads its rows (SERVER ROUND KEY VALUE),
writes the JSON file plot.py draws, and prints Markdown tables.

usage: peers_report.py ROWS OUT.json ROUNDS WORKERS CONNECTIONS DURATION HANDSHAKE_THREADS VERSIONS
"""
import json
import statistics
import subprocess
import sys

path, out, rounds, workers, connections, duration, hs_threads, versions = sys.argv[1:9]
servers = ["edge", "nginx", "ats", "varnish", "static", "floor"]
names = {"edge": "edge", "nginx": "nginx proxy_cache", "ats": "ATS", "varnish": "Varnish", "static": "static nginx",
         "floor": "sendfile_floor"}
metrics = [
    {"key": "small_rps", "title": "1 KiB hits", "unit": "req/s", "better": "higher"},
    {"key": "small_p99_ms", "title": "1 KiB hits, p99", "unit": "ms", "better": "lower"},
    {"key": "large_mib_s", "title": "1 MiB hits", "unit": "MiB/s", "better": "higher"},
    {"key": "large_cpu_ms_per_mib", "title": "1 MiB hits, server CPU per MiB", "unit": "ms", "better": "lower"},
    {"key": "large_discard_mib_s", "title": "1 MiB hits, discard_load", "unit": "MiB/s", "better": "higher"},
    {"key": "miss_mib_s", "title": "100 KiB misses", "unit": "MiB/s", "better": "higher"},
    {"key": "coalesce_head_s", "title": "32 coalesced 1 MiB misses: last head", "unit": "s", "better": "lower"},
    {"key": "coalesce_s", "title": "32 coalesced 1 MiB misses: last body", "unit": "s", "better": "lower"},
    {"key": "tls_small_rps", "title": "HTTPS 1 KiB hits", "unit": "req/s", "better": "higher"},
    {"key": "tls_small_p99_ms", "title": "HTTPS 1 KiB hits, p99", "unit": "ms", "better": "lower"},
    {"key": "tls_full_hs", "title": "HTTPS full handshakes", "unit": "1/s", "better": "higher"},
    {"key": "tls_full_hs_cpu_ms", "title": "HTTPS full handshakes, server CPU per handshake", "unit": "ms",
     "better": "lower"},
    {"key": "tls_resumed_hs", "title": "HTTPS resumed handshakes", "unit": "1/s", "better": "higher"},
    {"key": "tls_resumed_hs_cpu_ms", "title": "HTTPS resumed handshakes, server CPU per handshake", "unit": "ms",
     "better": "lower"},
    {"key": "tls_large_mib_s", "title": "HTTPS 1 MiB hits", "unit": "MiB/s", "better": "higher"},
    {"key": "tls_large_cpu_ms_per_mib", "title": "HTTPS 1 MiB hits, server CPU per MiB", "unit": "ms",
     "better": "lower"},
]
rows = {}
for line in open(path):
    server, round_, key, value = line.split()
    rows.setdefault(server, {}).setdefault(key, []).append(float(value))
median = {s: {k: statistics.median(v) for k, v in keys.items()} for s, keys in rows.items()}
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
machine = f"{cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores"


def get(server, key):
    return median.get(server, {}).get(key)


def fmt(v):
    return "" if v is None else f"{v:,.0f}".replace(",", " ") if v >= 1000 else f"{v:.4g}"


def ratio(a, b):
    return a / b if a is not None and b else None


targets = []


def target(title, ok, detail):
    targets.append({"target": title, "met": bool(ok), "detail": detail})


e, n = (lambda k: get("edge", k)), (lambda k: get("nginx", k))
# The targets of issue 13, when every server ran every load (a run of some of them, or a LOADS
# subset, has none).
if all(s in rows for s in ("edge", "nginx", "ats", "varnish", "static")) and all(
        e(m["key"]) is not None for m in metrics):
    target("HTTPS 1 KiB hits >= 1.3x nginx, p99 no worse",
           ratio(e("tls_small_rps"), n("tls_small_rps")) >= 1.3 and e("tls_small_p99_ms") <= n("tls_small_p99_ms"),
           f"{ratio(e('tls_small_rps'), n('tls_small_rps')):.2f}x, p99 {e('tls_small_p99_ms'):.2f} vs "
           f"{n('tls_small_p99_ms'):.2f} ms")
    for key, what in (("tls_full_hs", "full"), ("tls_resumed_hs", "resumed")):
        target(f"{what} handshakes/s >= 1.0x nginx", ratio(e(key), n(key)) >= 1.0, f"{ratio(e(key), n(key)):.2f}x")
    target("HTTPS 1 MiB hits >= 1.0x nginx, server CPU per MiB <= 0.9x",
           ratio(e("tls_large_mib_s"), n("tls_large_mib_s")) >= 1.0
           and ratio(e("tls_large_cpu_ms_per_mib"), n("tls_large_cpu_ms_per_mib")) <= 0.9,
           f"{ratio(e('tls_large_mib_s'), n('tls_large_mib_s')):.2f}x, CPU per MiB "
           f"{ratio(e('tls_large_cpu_ms_per_mib'), n('tls_large_cpu_ms_per_mib')):.2f}x")
    for peer in ("ats", "varnish"):
        keys = [k for k in ("small_rps", "tls_small_rps") if get(peer, k) is not None]
        target(f"ahead of {names[peer]} on the 1 KiB rows", all(e(k) > get(peer, k) for k in keys),
               ", ".join(f"{k} {ratio(e(k), get(peer, k)):.2f}x" for k in keys))
    target("plain 1 KiB hits within 0.9x of the static ceiling", ratio(e("small_rps"), get("static", "small_rps")) >= 0.9,
           f"{ratio(e('small_rps'), get('static', 'small_rps')):.2f}x")

json.dump({"rounds": int(rounds), "workers": int(workers), "connections": int(connections),
           "duration_s": int(duration), "handshake_threads": int(hs_threads), "machine": machine, "versions": versions,
           "servers": [s for s in servers if s in rows], "names": names, "metrics": metrics, "rows": rows,
           "median": median, "targets": targets}, open(out, "w"), indent=1)

present = [s for s in servers if s in rows]
print(f"\nmedians of {rounds} rounds, {workers} workers each, wrk -t2 -c{connections} -d{duration}s "
      f"({machine}; {versions})\n")
print("| metric | " + " | ".join(names[s] for s in present) + " | edge/nginx | edge/ATS | edge/Varnish | edge/static |")
print("|---" * (len(present) + 5) + "|")
for m in metrics:
    cells = [fmt(get(s, m["key"])) for s in present]
    ratios = [ratio(e(m["key"]), get(p, m["key"])) for p in ("nginx", "ats", "varnish", "static")]
    print(f"| {m['title']} ({m['unit']}, {m['better']} is better) | " + " | ".join(cells) + " | " +
          " | ".join(f"{r:.2f}" if r is not None else "" for r in ratios) + " |")
print(f"| one direct origin fetch of 1 MiB (s) | {get('origin', 'origin_s'):.4g} |" + " |" * (len(present) + 3))
if targets:
    print("\n| target | met | figures |\n|---|---|---|")
for t in targets:
    print(f"| {t['target']} | {'met' if t['met'] else 'missed'} | {t['detail']} |")
