"""Drives `unclip serve` with the openai SDK, webuiapi and raw HTTP; see scripts/check-server.sh. Exits non-zero on
the first failed check; prints one line per group of checks."""
import base64, io, json, os, signal, socket, subprocess, sys, tempfile, threading, time

import openai
import requests
import webuiapi
from PIL import Image

UNCLIP = sys.argv[1]
KEY = "check-key-123"


def start(*extra):
    p = subprocess.Popen([UNCLIP, "serve", "--port", "0", "--api-key", KEY, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening on http://"), (line, p.stderr.read() if p.poll() is not None else "")
    return p, line.split()[-1].strip()


def png_bytes(im):
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


server, base = start("--queue", "1")
auth = {"Authorization": f"Bearer {KEY}"}
try:
    # --- the official OpenAI SDK ---------------------------------------------------------------
    client = openai.OpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
    r = client.images.generate(model="dall-e-2", prompt="a red circle on top of a blue square", n=2, size="256x256", response_format="b64_json")
    check(len(r.data) == 2, "generate n=2 returns 2 images")
    ims = [Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in r.data]
    check(all(i.size == (256, 256) for i in ims), f"generate size 256x256: {[i.size for i in ims]}")
    check("parameters" in ims[0].info and "Seed" in ims[0].info["parameters"], "PNG carries A1111 parameters")
    r = client.images.generate(prompt="a blue square", size="512x512")  # response_format url is the default
    check(r.data[0].url and r.data[0].url.startswith(base), f"url under the server: {r.data[0].url}")
    got = requests.get(r.data[0].url)
    check(got.status_code == 200 and Image.open(io.BytesIO(got.content)).size == (512, 512), "the url serves a 512x512 PNG")
    store = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"unclip-serve-{server.pid}")
    check(len([f for f in os.listdir(store) if f.endswith(".png")]) == 1, f"the url image is in the temporary store {store}")
    check(requests.get(base + "/v1/images/files/" + "0" * 32 + ".png").status_code == 404, "unknown image id: 404")
    check(requests.get(base + "/v1/images/files/..%2F..%2Fetc%2Fpasswd").status_code == 404, "path in the image route: 404")
    src = ims[0].convert("RGBA")
    mask = src.copy()
    px = mask.load()
    for y in range(128, 256):
        for x in range(256):
            px[x, y] = (0, 0, 0, 0)
    r = client.images.edit(image=("src.png", png_bytes(src), "image/png"), mask=("mask.png", png_bytes(mask), "image/png"),
                           prompt="a red circle on top of a blue square", n=1, size="256x256", response_format="b64_json")
    out = Image.open(io.BytesIO(base64.b64decode(r.data[0].b64_json))).convert("RGB")
    kept = sum(1 for y in range(0, 120) for x in range(256) if out.getpixel((x, y)) == src.getpixel((x, y))[:3])
    check(kept >= 0.99 * 120 * 256, f"edit keeps the opaque half ({kept} of {120 * 256} pixels equal)")
    r = client.images.edit(image=("m.png", png_bytes(mask), "image/png"), prompt="a red circle", response_format="b64_json", size="256x256")
    check(len(r.data) == 1, "edit with the image's own alpha as the mask")
    r = client.images.create_variation(image=("src.png", png_bytes(ims[0]), "image/png"), n=2, size="256x256", response_format="b64_json")
    check(len(r.data) == 2, "variations n=2")
    print("openai SDK: generations (b64_json, url), edits (mask, own alpha), variations: ok")

    def raises(cls, fn, param=None):
        try:
            fn()
        except cls as e:
            if param is not None:
                check(e.body and e.body.get("param") == param, f"{cls.__name__} names param {param}: {e.body}")
            return
        check(False, f"expected {cls.__name__}")

    raises(openai.BadRequestError, lambda: client.images.generate(prompt="x" * 1001), "prompt")
    raises(openai.BadRequestError, lambda: client.images.generate(prompt="a circle", n=11), "n")
    raises(openai.BadRequestError, lambda: client.images.generate(prompt="a circle", size="300x300"), "size")
    raises(openai.BadRequestError, lambda: client.images.generate(prompt="a circle", response_format="jpeg"), "response_format")
    raises(openai.NotFoundError, lambda: client.images.generate(prompt="a circle", model="dall-e-9"), "model")
    raises(openai.BadRequestError, lambda: client.images.create_variation(image=("x.png", b"not a png", "image/png")), "image")
    wide = Image.new("RGB", (64, 32))
    raises(openai.BadRequestError, lambda: client.images.create_variation(image=("w.png", png_bytes(wide), "image/png")), "image")
    raises(openai.BadRequestError, lambda: client.images.edit(image=("s.png", png_bytes(ims[0]), "image/png"), prompt="a"), "image")
    raises(openai.BadRequestError, lambda: client.images.edit(image=("s.png", png_bytes(src), "image/png"),
                                                              mask=("m.png", png_bytes(wide), "image/png"), prompt="a"), "mask")
    raises(openai.AuthenticationError, lambda: openai.OpenAI(api_key="wrong", base_url=base + "/v1", max_retries=0).images.generate(prompt="a"))
    check(requests.post(base + "/v1/images/generations", json={"prompt": "a"}).status_code == 401, "no key: 401")
    models = client.models.list()
    check("dall-e-2" in [m.id for m in models.data], "models list")
    big = requests.post(base + "/v1/images/generations", headers=auth, data=b"x" * (26 << 20))
    check(big.status_code == 413 and big.json()["error"]["code"] == "request_too_large", f"oversize body: {big.status_code}")
    print("openai SDK errors: 400 (param named), 401, 404, 413: ok")

    # --- AUTOMATIC1111 through webuiapi ---------------------------------------------------------
    host, port = base[len("http://"):].rsplit(":", 1)
    api = webuiapi.WebUIApi(host=host, port=int(port))
    api.set_auth("user", KEY)
    res = api.txt2img(prompt="a red circle", seed=5, steps=10, cfg_scale=4, width=128, height=128, batch_size=2)
    check(len(res.images) == 2 and res.images[0].size == (128, 128), f"txt2img: {[i.size for i in res.images]}")
    check(res.info["all_seeds"] == [5, 6], f"txt2img seeds: {res.info['all_seeds']}")
    again = api.txt2img(prompt="a red circle", seed=5, steps=10, cfg_scale=4, width=128, height=128)
    check(again.images[0].tobytes() == res.images[0].tobytes(), "txt2img with the same seed gives the same image")
    m = Image.new("RGB", (128, 128), "black")
    for y in range(64, 128):
        for x in range(128):
            m.putpixel((x, y), (255, 255, 255))
    res2 = api.img2img(images=[res.images[0]], mask_image=m, prompt="a red circle on top of a blue square", seed=1, steps=10, width=128, height=128)
    check(len(res2.images) == 1, "img2img with a mask")
    res3 = api.img2img(images=[res.images[0]], prompt="", seed=1, steps=10, width=64, height=64)
    check(res3.images[0].size == (64, 64) and "variations" in res3.info.get("note", ""), "img2img without a mask: a variation")
    check(any(m["model_name"] == "unclip-shapes64-q8" for m in api.get_sd_models()), "sd-models")
    bad = requests.post(base + "/sdapi/v1/txt2img", headers=auth, json={"prompt": "a", "steps": "many"})
    check(bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "steps"], f"A1111 validation: {bad.status_code} {bad.text}")
    print("webuiapi: txt2img (seeds, determinism), img2img (mask, variation), sd-models, 422: ok")

    # --- progress, events, cancellation, the queue ----------------------------------------------
    events, progress = [], []

    def slow(job_id, steps=400, out=None):
        try:
            r = requests.post(base + "/sdapi/v1/txt2img", headers={**auth, "X-Unclip-Job-Id": job_id},
                              json={"prompt": "a red circle", "steps": steps, "width": 64, "height": 64}, timeout=600)
            if out is not None:
                out.append(r)
        except requests.RequestException as e:
            if out is not None:
                out.append(e)

    done = []
    t = threading.Thread(target=slow, args=("job-events-1", 400, done))
    t.start()
    for _ in range(200):
        s = requests.get(base + "/v1/jobs/job-events-1/events", headers=auth, stream=True, timeout=600)
        if s.status_code == 200:
            break
        time.sleep(0.05)
    seen = set()
    for raw in s.iter_lines(decode_unicode=True):
        if raw.startswith("event: "):
            seen.add(raw[7:])
        if raw.startswith("data: ") and "fraction" in raw:
            progress.append(json.loads(raw[6:])["fraction"])
        if len(progress) == 3:
            p = requests.get(base + "/sdapi/v1/progress", headers=auth).json()
            check(p["state"]["job"] == "job-events-1" and 0 <= p["progress"] <= 1, f"A1111 progress while running: {p}")
        if "done" in seen or "error" in seen:
            break
    t.join()
    check({"progress", "preview", "done"} <= seen, f"job events: {seen}")
    check(progress == sorted(progress), "progress fractions rise")
    check(done and done[0].status_code == 200 and done[0].headers.get("X-Unclip-Job-Id") == "job-events-1", "the job's own response")
    print(f"events: {sorted(seen)}, {len(progress)} progress events, A1111 progress: ok")

    # a client that goes away cancels its job
    sock = socket.create_connection((host, int(port)))
    body = json.dumps({"prompt": "a red circle", "steps": 1000, "width": 64, "height": 64}).encode()
    sock.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                 b"\r\nX-Unclip-Job-Id: job-gone-1\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    for _ in range(200):
        j = requests.get(base + "/v1/jobs/job-gone-1", headers=auth)
        if j.status_code == 200 and j.json()["status"] == "running":
            break
        time.sleep(0.05)
    sock.close()
    for _ in range(400):
        st = requests.get(base + "/v1/jobs/job-gone-1", headers=auth).json()["status"]
        if st != "running":
            break
        time.sleep(0.05)
    check(st == "cancelled", f"a disconnected client's job is cancelled (status {st})")
    print("disconnect: the job is cancelled: ok")

    def two_slow_jobs(prefix, outs):
        """One job running, then one waiting behind it (started 0.4 s apart)."""
        ts = [threading.Thread(target=slow, args=(f"{prefix}-{k}x", 300, outs)) for k in range(2)]
        for th in ts:
            th.start()
            time.sleep(0.4)
        return ts

    # the queue: one running, one waiting (--queue 1), the next is 429 with Retry-After
    outs = []
    ts = two_slow_jobs("job-q", outs)
    full = requests.post(base + "/v1/images/generations", headers=auth, json={"prompt": "a red circle"})
    check(full.status_code == 429 and int(full.headers.get("Retry-After", "0")) >= 1, f"full queue: {full.status_code} {full.headers}")
    raises(openai.RateLimitError, lambda: client.images.generate(prompt="a"))
    for th in ts:
        th.join()
    check(all(getattr(o, "status_code", 0) == 200 for o in outs), "the queued jobs finish")
    print("queue: 429 with Retry-After, RateLimitError: ok")

    # SIGTERM: the running job finishes and is answered, the queued one gets 503, the store folder goes
    outs = []
    ts = two_slow_jobs("job-term", outs)
    server.send_signal(signal.SIGTERM)
    for th in ts:
        th.join()
    codes = sorted(getattr(o, "status_code", 0) for o in outs)
    check(codes == [200, 503], f"SIGTERM: running job answered 200, queued 503 (got {codes})")
    rc = server.wait(timeout=60)
    check(rc == 0, f"exit code after SIGTERM: {rc}")
    check(not os.path.exists(store), f"the temporary image store {store} is removed at exit")
    print("SIGTERM: 200 for the running job, 503 for the queued one, exit 0: ok")
finally:
    if server.poll() is None:
        server.kill()
print("server checks passed")
