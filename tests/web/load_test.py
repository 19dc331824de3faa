"""A bounded load test of `attend serve` on loopback: N clients for S seconds, mixed valid and
invalid requests. Checks: no valid request fails, every invalid one gets a 4xx with a JSON error,
resident memory is flat over the second half of the run, and SIGTERM with requests in flight
answers them all before the server exits 0. Prints p50/p99 latency and sentences/s.

With --sweep, measures sentences/s for 1, 4 and 16 clients with and without batching instead
(for docs/results.md).

usage: load_test.py --attend BUILD/attend [--clients 16] [--seconds 60] [--out load.json]
       load_test.py --attend BUILD/attend --sweep [--seconds 20]
"""
import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

WORDS = fixture.WORDS
INVALID_SHARE = 0.25
FIXED = {"beam": 0, "attention": None}  # --beam, --attention: the same for every request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                # The server may close a connection after an error answer; retry once on a new one.
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise


TEXT = []  # --text: real sentences instead of random words


def valid_request(rng, models):
    if TEXT:
        lines = [rng.choice(TEXT) for _ in range(rng.randint(1, 3))]
    else:
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))) for _ in range(rng.randint(1, 3))]
    req = {"model": rng.choice(models), "text": "\n".join(lines),
           "beam": FIXED["beam"] or rng.randint(1, 4),
           "attention": FIXED["attention"] if FIXED["attention"] is not None else rng.random() < 0.5}
    return json.dumps(req).encode(), len(lines)


INVALID = [
    ("POST", "/api/translate", b"{not json"),
    ("POST", "/api/translate", b'{"text": 5}'),
    ("POST", "/api/translate", b'{"text": ""}'),
    ("POST", "/api/translate", b'{"text": "lo ka", "colour": 1}'),
    ("POST", "/api/translate", b'{"text": "lo ka", "model": "nope"}'),
    ("POST", "/api/translate", b'{"text": "lo\xff ka"}'),
    ("POST", "/api/translate", json.dumps({"lines": ["lo"] * 500}).encode()),
    ("POST", "/api/translate", b'{"text": "' + b"a" * 300000 + b'"}'),
    ("GET", "/api/nothing", None),
    ("POST", "/api/models", b"{}"),
]


def run_load(url, models, clients, seconds, pid, seed=1):
    stop = time.time() + seconds
    lock = threading.Lock()
    stats = {"valid": 0, "invalid": 0, "valid_failed": [], "invalid_wrong": [], "sentences": 0,
             "latencies": []}
    rss = []

    def client(i):
        rng = random.Random(seed * 1000 + i)
        c = Client(url)
        while time.time() < stop:
            if rng.random() >= INVALID_SHARE:
                body, n = valid_request(rng, models)
                t0 = time.perf_counter()
                try:
                    status, data = c.request("POST", "/api/translate", body)
                    ok = status == 200 and len(json.loads(data)["results"]) == n
                except Exception as e:  # noqa: BLE001 - any failure of a valid request counts
                    status, ok = repr(e), False
                dt = time.perf_counter() - t0
                with lock:
                    stats["valid"] += 1
                    if ok:
                        stats["sentences"] += n
                        stats["latencies"].append(dt)
                    else:
                        stats["valid_failed"].append(str(status))
            else:
                method, path, body = rng.choice(INVALID)
                try:
                    status, data = c.request(method, path, body)
                    ok = 400 <= status < 500 and "error" in json.loads(data)
                except Exception as e:  # noqa: BLE001
                    status, ok = repr(e), False
                with lock:
                    stats["invalid"] += 1
                    if not ok:
                        stats["invalid_wrong"].append(f"{path} {status}")

    def sampler():
        while time.time() < stop:
            rss.append((time.time(), rss_kib(pid)))
            time.sleep(0.25)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=sampler))
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["seconds"] = time.time() - t0
    stats["rss"] = rss
    return stats


def slope_mib_per_min(samples):
    """Least-squares slope of RSS over time, in MiB per minute."""
    ts = [t for t, _ in samples]
    vs = [v / 1024 for _, v in samples]
    mt, mv = statistics.mean(ts), statistics.mean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / den if den else 0.0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def drain_check(url, server):
    """SIGTERM while slow requests are in flight: each is answered, then the server exits 0."""
    results = []

    def slow(i):
        body = json.dumps({"text": "\n".join(" ".join(WORDS) for _ in range(8)), "beam": 8,
                           "model": "transformer"}).encode()
        try:
            results.append(Client(url).request("POST", "/api/translate", body)[0])
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # the requests are in; some are being decoded, some wait
    code, out = server.stop()
    for t in threads:
        t.join()
    return results, code, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attend", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out", default="")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("-m", dest="models", action="append", default=[],
                    help="NAME=CHECKPOINT to serve instead of the tiny models trained here")
    ap.add_argument("--text", default="", help="sentences to send (one per line)")
    ap.add_argument("--invalid-share", type=float, default=0.25)
    ap.add_argument("--beam", type=int, default=0, help="every request's beam (default: 1-4 at random)")
    ap.add_argument("--attention", choices=["on", "off"], help="every request's (default: at random)")
    args = ap.parse_args()
    FIXED["beam"] = args.beam
    if args.attention:
        FIXED["attention"] = args.attention == "on"
    global INVALID_SHARE
    INVALID_SHARE = args.invalid_share
    if args.text:
        with open(args.text) as f:
            TEXT.extend(line.strip() for line in f if line.strip() and len(line) < 300)
    work = fixture.workdir("attend_load_")
    try:
        fixture.write_corpus(work)
        models = dict(m.split("=", 1) for m in args.models) or {
            "transformer": fixture.train(args.attend, work, "transformer",
                                         ["--arch", "transformer", "--d-model", "32", "--heads", "4",
                                          "--ff-dim", "64", "--layers", "2"], 150),
            "rnn-attention": fixture.train(args.attend, work, "rnn-attention",
                                           ["--arch", "rnn-attention", "--embed-dim", "32",
                                            "--hidden-dim", "32", "--attention-dim", "16"], 150),
        }
        names = sorted(models)
        if args.sweep:
            print("| clients | batching | sentences/s | p50 ms | p99 ms | mean batch |")
            print("|---:|---|---:|---:|---:|---:|")
            for clients in (1, 4, 16):
                for batching in (False, True):
                    extra = [] if batching else ["--no-batching"]
                    server = fixture.Server(args.attend, models, extra)
                    s = run_load(server.url, names, clients, args.seconds, server.proc.pid)
                    st = json.loads(Client(server.url).request("GET", "/api/stats")[1])
                    server.stop()
                    mean_batch = st["sentences"] / max(1, st["batches"])
                    lat = [x * 1000 for x in s["latencies"]]
                    print(f"| {clients} | {'on' if batching else 'off'} | {s['sentences'] / s['seconds']:.1f} "
                          f"| {percentile(lat, 50):.1f} | {percentile(lat, 99):.1f} | {mean_batch:.1f} |", flush=True)
            return 0
        server = fixture.Server(args.attend, models)
        c = Client(server.url)
        for name in names:  # warm-up: each model decodes once, with attention
            c.request("POST", "/api/translate", json.dumps({"model": name, "text": "lo ka"}).encode())
        idle = json.loads(c.request("GET", "/api/stats")[1])
        s = run_load(server.url, names, args.clients, args.seconds, server.proc.pid)
        after = json.loads(c.request("GET", "/api/stats")[1])
        lat = [x * 1000 for x in s["latencies"]]
        half = s["rss"][len(s["rss"]) // 2:]
        growth = slope_mib_per_min(half) if len(half) > 4 else 0.0
        rss_mib = [v / 1024 for _, v in s["rss"]]
        report = {
            "clients": args.clients, "seconds": round(s["seconds"], 1),
            "valid_requests": s["valid"], "invalid_requests": s["invalid"],
            "valid_failed": len(s["valid_failed"]), "invalid_not_4xx": len(s["invalid_wrong"]),
            "sentences_per_second": round(s["sentences"] / s["seconds"], 1),
            "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
            "rss_mib_start": round(rss_mib[0], 1) if rss_mib else 0,
            "rss_mib_end": round(rss_mib[-1], 1) if rss_mib else 0,
            "rss_mib_max": round(max(rss_mib), 1) if rss_mib else 0,
            "rss_slope_second_half_mib_per_min": round(growth, 2),
        }
        report["tensor_bytes_in_use_idle"] = idle["tensor_bytes_in_use"]
        report["tensor_bytes_in_use_after"] = after["tensor_bytes_in_use"]
        report["tensor_bytes_cached_after"] = after["tensor_bytes_cached"]
        report["server_counts"] = {k: after[k] for k in ("answered", "refused", "sentences", "batches")}
        results, code, out = drain_check(server.url, server)
        report["drain_statuses"] = results
        report["exit_code"] = code
        report["rss_mib_by_tenth"] = [round(rss_mib[i * len(rss_mib) // 10], 1) for i in range(10)] if rss_mib else []
        print(json.dumps(report, indent=1))
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)
        failures = []
        if s["valid_failed"]:
            failures.append(f"valid requests failed: {s['valid_failed'][:5]}")
        if s["invalid_wrong"]:
            failures.append(f"invalid requests not answered 4xx: {s['invalid_wrong'][:5]}")
        if s["valid"] < 10 or s["invalid"] < 3:
            failures.append("too few requests were made to judge")
        # Flat: over the second half, RSS may not climb faster than 4 MiB a minute (a leak of one
        # answer per request would climb by hundreds).
        if growth > 4.0:
            failures.append(f"resident memory grows {growth:.1f} MiB/min over the second half")
        if after["tensor_bytes_in_use"] != idle["tensor_bytes_in_use"]:
            failures.append(f"tensor bytes in use went from {idle['tensor_bytes_in_use']} at rest "
                            f"before the load to {after['tensor_bytes_in_use']} at rest after it")
        if results != [200] * len(results) or code != 0:
            failures.append(f"SIGTERM did not drain: statuses {results}, exit {code}: {out}")
        for f in failures:
            print("FAIL " + f)
        if not failures:
            print("load test: all checks passed")
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
