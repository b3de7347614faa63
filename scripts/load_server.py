"""Load check of `unclip serve` (issue 13): R requests from C concurrent clients against a queue of Q, then N
sequential requests with the server's RSS before and after. Every response must be the client's own (its job id,
its seed), every 429 must carry Retry-After (the client waits that long and retries), nothing may be lost.
Prints the figures and, with --json, writes them.
With --latency N, first times each endpoint at its defaults (one request at a time, median of N).
   python scripts/load_server.py path/to/unclip [--requests 20] [--clients 8] [--queue 4] [--sequential 100] [--latency 5] [--json out.json]"""
import argparse, base64, io, json, os, signal, statistics, subprocess, tempfile, threading, time

import requests
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("unclip")
ap.add_argument("--requests", type=int, default=20)
ap.add_argument("--clients", type=int, default=8)
ap.add_argument("--queue", type=int, default=4)
ap.add_argument("--sequential", type=int, default=100)
ap.add_argument("--latency", type=int, default=0, help="also time each endpoint at its defaults this many times, one request at a time")
ap.add_argument("--json")
a = ap.parse_args()

store = tempfile.mkdtemp(prefix="unclip-load-store-")
server = subprocess.Popen([a.unclip, "serve", "--port", "0", "--queue", str(a.queue), "--store", store, "-q"], stdout=subprocess.PIPE, text=True)
base = server.stdout.readline().split()[-1]


def rss_mib():
    for line in open(f"/proc/{server.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


def txt2img(seed, job_id):
    return requests.post(base + "/sdapi/v1/txt2img", headers={"X-Unclip-Job-Id": job_id},
                         json={"prompt": "a red circle on top of a blue square", "seed": seed, "steps": 4, "width": 64, "height": 64}, timeout=600)


failures, latencies, rejected = [], [], [0]
lock = threading.Lock()
next_request = [0]


def client(c):
    while True:
        with lock:
            i = next_request[0]
            next_request[0] += 1
        if i >= a.requests:
            return
        seed, t0 = 5000 + i, time.time()
        for attempt in range(100):
            r = txt2img(seed, f"load-{i:04d}-{attempt:02d}")
            if r.status_code != 429:
                break
            with lock:
                rejected[0] += 1
            if "Retry-After" not in r.headers:
                failures.append(f"request {i}: 429 without Retry-After")
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0))
        if r.status_code != 200:
            failures.append(f"request {i}: {r.status_code} {r.text[:200]}")
            continue
        info = json.loads(r.json()["info"])
        if info["all_seeds"] != [seed] or not r.headers.get("X-Unclip-Job-Id", "").startswith(f"load-{i:04d}-"):
            failures.append(f"request {i}: got seeds {info['all_seeds']} job {r.headers.get('X-Unclip-Job-Id')} (mixed up)")
        Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0]))).load()
        with lock:
            latencies.append(time.time() - t0)


try:
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    ok = len(latencies)
    print(f"concurrent: {a.requests} requests from {a.clients} clients, queue {a.queue}: {ok} answered 200, {rejected[0]} answered 429 "
          f"(retried), {len(failures)} failures; {wall:.1f} s, latency p50 {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")
    rss0 = rss_mib()
    seq = []
    for i in range(a.sequential):
        s = time.time()
        r = txt2img(9000 + i, f"seq-{i:04d}-0")
        seq.append(time.time() - s)
        if r.status_code != 200 or json.loads(r.json()["info"])["all_seeds"] != [9000 + i]:
            failures.append(f"sequential {i}: {r.status_code}")
    rss1 = rss_mib()
    print(f"sequential: {a.sequential} requests, latency p50 {statistics.median(seq):.3f} s, RSS {rss0:.1f} MiB before, {rss1:.1f} MiB after")
    # latency per request: each endpoint at its defaults, alone on the server
    latency = {}
    if a.latency > 0:
        def png_bytes(img):
            b = io.BytesIO()
            img.save(b, "PNG")
            return b.getvalue()
        src = png_bytes(Image.new("RGBA", (64, 64), (200, 30, 30, 255)))
        m = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
        m.paste((0, 0, 0, 0), (16, 16, 48, 48))
        mask = png_bytes(m)
        cases = {
            "generations 256x256 b64_json": lambda: requests.post(base + "/v1/images/generations", json={"prompt": "a red circle on top of a blue square", "size": "256x256", "response_format": "b64_json"}, timeout=600),
            "generations 1024x1024 b64_json": lambda: requests.post(base + "/v1/images/generations", json={"prompt": "a red circle on top of a blue square", "size": "1024x1024", "response_format": "b64_json"}, timeout=600),
            "generations 256x256 url": lambda: requests.post(base + "/v1/images/generations", json={"prompt": "a red circle on top of a blue square", "size": "256x256"}, timeout=600),
            "variations 256x256 b64_json": lambda: requests.post(base + "/v1/images/variations", files={"image": ("a.png", src, "image/png")}, data={"size": "256x256", "response_format": "b64_json"}, timeout=600),
            "edits 256x256 b64_json": lambda: requests.post(base + "/v1/images/edits", files={"image": ("a.png", src, "image/png"), "mask": ("m.png", mask, "image/png")}, data={"prompt": "a blue square", "size": "256x256", "response_format": "b64_json"}, timeout=600),
            "sdapi txt2img defaults": lambda: requests.post(base + "/sdapi/v1/txt2img", json={"prompt": "a red circle on top of a blue square"}, timeout=600),
        }
        for name, call in cases.items():
            times = []
            for _ in range(a.latency):
                t0 = time.time()
                r = call()
                times.append(time.time() - t0)
                if r.status_code != 200:
                    failures.append(f"latency {name}: {r.status_code}")
            latency[name] = statistics.median(times)
            print(f"latency: {name}: median {latency[name]:.3f} s of {a.latency}")
    # shutdown while busy: one url generation running and two queued, then SIGTERM. The running one must finish and be
    # answered, the queued ones answered 503; every acknowledged image is a whole PNG in the store, nothing else is there.
    # (needs a queue of at least 2; with a smaller one the third request is a 429, not a queued job)
    acked, statuses = [], []

    def url_job():
        try:
            r = requests.post(base + "/v1/images/generations", json={"prompt": "a blue square", "size": "256x256", "n": 2}, timeout=600)
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked.extend(d["url"] for d in r.json()["data"])
        except requests.RequestException as e:
            statuses.append(repr(e))

    def job_count():
        return requests.get(base + "/sdapi/v1/progress", timeout=30).json()["state"]["job_count"]

    busy = [threading.Thread(target=url_job) for _ in range(3 if a.queue >= 2 else 0)]
    for k, t in enumerate(busy):
        t.start()
        deadline = time.time() + 120
        while job_count() < k + 1 and time.time() < deadline:
            time.sleep(0.05)
    server.send_signal(signal.SIGTERM)
    for t in busy:
        t.join()
    server.wait(timeout=120)
    if not busy:
        print("shutdown while busy: skipped (--queue below 2)")
    elif sorted(map(str, statuses)) != ["200", "503", "503"]:
        failures.append(f"shutdown while busy: expected the running job answered 200 and the two queued 503, got {statuses}")
    names = os.listdir(store)
    if any(not n.endswith(".png") or n.startswith(".") for n in names):
        failures.append(f"partial or temporary files left in the store: {names}")
    for u in acked:
        n = u.rsplit("/", 1)[-1]
        if n not in names:
            failures.append(f"acknowledged image {n} is not in the store")
        else:
            Image.open(os.path.join(store, n)).load()
    print(f"shutdown while busy: answers {sorted(map(str, statuses))}, {len(acked)} acknowledged image(s) whole in the store; {len(names)} file(s) there")
    if a.json:
        json.dump({"requests": a.requests, "clients": a.clients, "queue": a.queue, "answered": ok, "rejected_429": rejected[0],
                   "failures": failures, "wall_s": wall, "latency_p50_s": statistics.median(latencies), "latency_max_s": max(latencies),
                   "sequential": a.sequential, "sequential_latency_p50_s": statistics.median(seq), "rss_before_mib": rss0, "rss_after_mib": rss1,
                   "shutdown_statuses": sorted(map(str, statuses)), "shutdown_acknowledged": len(acked),
                   "latency_median_s": latency},
                  open(a.json, "w"), indent=1)
finally:
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=120)
for f in failures[:20]:
    print("FAIL:", f)
if failures or ok != a.requests or rejected[0] == 0:
    print("FAIL: every request answered once, some 429s on the way" if not failures else "")
    raise SystemExit(1)
if rss1 > rss0 * 1.10 + 8:
    print(f"FAIL: RSS grew from {rss0:.1f} to {rss1:.1f} MiB over {a.sequential} requests")
    raise SystemExit(1)
print("load check passed")
