#!/usr/bin/env python3
"""The benchmark driver behind bench/run (which builds and installs what it needs first).

Starts every process itself on 127.0.0.1, pinned with taskset, measures with wrk, and writes
bench/results/YYYY-MM-DD.md (and a .json beside it). Standard library only.
"""

import argparse
import atexit
import base64
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The process under test gets CPU 0 to itself; the load generator (wrk), the upstream nginx
# and Redis share CPU 1. On a 2-core machine this keeps the client and the backend from
# stealing cycles from the proxy, and makes "proxy CPU per request" the proxy's alone.
PROXY_CPU = "0"
CLIENT_CPU = "1"

BODY = ("rocketgate-bench " * 64)[:1023] + "\n"  # exactly 1024 bytes
assert len(BODY) == 1024

TARGETS = {
    "a": "upstream direct (nginx, no proxy)",
    "b": "nginx proxy_pass (no auth)",
    "c": "rocketgate, cookie session",
    "d": "rocketgate, Redis session",
    "e": "oauth2-proxy v7.15.6, cookie session",
    "t": "rocketgate, cookie session, 1% of requests traced (OTLP/HTTP)",
}
TRACE_SAMPLE_RATIO = "0.01"

# HTTP/2 end to end (h2load, h2c in, h2c to the upstream): separate rows, separate table.
H2_TARGETS = {
    "f": "nginx grpc_pass to the h2c upstream (no auth)",
    "g": "rocketgate, cookie session, h2c:// upstream",
}
H2_STREAMS, H2_CONNECTIONS = 64, 4


def log(msg):
    print(f"[bench] {msg}", flush=True)


def die(msg):
    print(f"[bench] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- processes we started

STARTED = []  # Popen objects, each the leader of its own process group


def cleanup():
    """Stops every process this script started (by its own process group id), newest first."""
    while STARTED:
        p = STARTED.pop()
        if p.poll() is not None:
            continue
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def spawn(argv, cpu, logfile, env=None):
    """Starts argv pinned to `cpu`; taskset execs, so the returned pid is the program's."""
    out = open(logfile, "ab")  # O_APPEND: the log can be truncated between runs
    p = subprocess.Popen(
        ["taskset", "-c", cpu, *argv],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    STARTED.append(p)
    return p


def stop(p):
    if p in STARTED:
        STARTED.remove(p)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- /proc


def tree(pid):
    """pid and its descendants (nginx: master + worker)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


def cpu_stat(cpu):
    """(busy, total) jiffies of one CPU from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]  # idle + iowait
                return sum(v[:8]) - idle, sum(v[:8])
    return 0, 1


def status_kib(pids, key):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def threads(pid):
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


class RssSampler(threading.Thread):
    """Samples VmRSS of a process tree every `interval` seconds."""

    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []  # (seconds since start, KiB)
        self.halt = threading.Event()

    def run(self):
        start = time.monotonic()
        while not self.halt.wait(self.interval):
            self.samples.append(
                (round(time.monotonic() - start, 1), status_kib(tree(self.pid), "VmRSS"))
            )


# ---------------------------------------------------------------- HTTP helpers


def get(port, path="/", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def wait_ready(port, path, proc, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"{what} exited with {proc.returncode} before answering (see its log)")
        try:
            status, _ = get(port, path)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    die(f"{what} did not answer on 127.0.0.1:{port}{path} within {timeout}s")


def verify_auth(port, cookie, what):
    """The cookie must reach the upstream's 1 KiB body; no cookie must not."""
    status, body = get(port, "/", {"Cookie": cookie} if cookie else {})
    if status != 200 or body.decode() != BODY:
        die(f"{what}: a request with the session cookie got {status}, not the upstream's 200 body")
    if cookie is not None:
        status, body = get(port, "/", {"Accept": "application/json"})
        if status == 200 or body.decode() == BODY:
            die(f"{what}: a request WITHOUT the cookie got {status} and the body: not authenticating")
        log(f"{what}: cookie verified (200 + upstream body with it, {status} without)")


# ---------------------------------------------------------------- wrk

REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d " ..
    "socket_errors=%d status_errors=%d timeouts=%d\\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write, e.status, e.timeout))
end
"""


def wrk(port, cookie, connections, seconds, workdir, timeout="5s"):
    script = workdir / "report.lua"
    if not script.exists():
        script.write_text(REPORT_LUA)
    argv = [
        "taskset", "-c", CLIENT_CPU, "wrk", "-t", "1", "-c", str(connections),
        "-d", f"{seconds}s", "--timeout", timeout, "--latency", "-s", str(script),
    ]
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    argv.append(f"http://127.0.0.1:{port}/")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"^BENCH (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        die(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    if r["requests"] == 0:
        die(f"wrk made no requests against 127.0.0.1:{port}")
    # Every response must have been the upstream's body (a 302/401 is a few hundred bytes):
    if r["bytes"] / r["requests"] < len(BODY) or r["status_errors"]:
        die(
            f"responses on 127.0.0.1:{port} were not all the upstream's body "
            f"({r['bytes'] / r['requests']:.0f} bytes/response, {r['status_errors']} status errors)"
        )
    return r


# ---------------------------------------------------------------- the processes


def nginx_conf(workdir, name, server_block, access_log):
    d = workdir / name
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log {access_log};
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
{server_block}
}}
"""
    )
    return d, conf


def nginx_string(text):
    """`text` inside a double-quoted nginx string."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def start_upstream(workdir, nginx):
    port = free_port()
    body = nginx_string(BODY)
    d, conf = nginx_conf(
        workdir,
        "upstream",
        f"""    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}""",
        "off",
    )
    p = spawn([nginx, "-p", str(d), "-c", str(conf), "-g", "daemon off;"], CLIENT_CPU, d / "out.log")
    wait_ready(port, "/", p, "upstream nginx")
    return p, port


def start_nginx_proxy(workdir, nginx, upstream):
    port = free_port()
    d, conf = nginx_conf(
        workdir,
        "nginx-proxy",
        f"""    upstream app {{ server 127.0.0.1:{upstream}; keepalive 256; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}""",
        str(workdir / "nginx-proxy" / "access.log"),
    )
    p = spawn([nginx, "-p", str(d), "-c", str(conf), "-g", "daemon off;"], PROXY_CPU, d / "out.log")
    wait_ready(port, "/", p, "nginx proxy_pass")
    return p, port, [d / "access.log"]


def start_trace_sink(workdir, nginx):
    """An OTLP/HTTP endpoint that takes every export and answers 200, counting the batches:
    what is measured is rocketgate's side of tracing (recording, encoding, sending), not a
    collector's."""
    port = free_port()
    d, conf = nginx_conf(
        workdir,
        "trace-sink",
        f"""    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 16m;
        location = /v1/traces {{
            access_log {workdir}/trace-sink/exports.log;
            default_type application/x-protobuf;
            return 200 "";
        }}
    }}""",
        "off",
    )
    p = spawn([nginx, "-p", str(d), "-c", str(conf), "-g", "daemon off;"], CLIENT_CPU, d / "out.log")
    wait_tcp(port, p, "trace sink nginx")
    return p, port, d / "exports.log"


def start_rocketgate(workdir, binary, upstream, redis_url=None, scheme="http", traces_to=None):
    port = free_port()
    name = "rocketgate-redis" if redis_url else f"rocketgate-{scheme}"
    if traces_to:
        name = "rocketgate-traced"
    (workdir / name).mkdir(exist_ok=True)
    logfile = workdir / name / "out.log"
    argv = [
        binary, "demo", "--listen", f"127.0.0.1:{port}",
        "--upstream", f"{scheme}://127.0.0.1:{upstream}",
    ]
    if redis_url:
        argv += ["--redis-url", redis_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROCKETGATE_", "RUST_LOG"))}
    if ROCKETGATE_LOG[0]:
        env["ROCKETGATE_LOG"] = ROCKETGATE_LOG[0]
    if traces_to:
        env["ROCKETGATE_TRACING__OTLP_ENDPOINT"] = f"http://127.0.0.1:{traces_to}"
        env["ROCKETGATE_TRACING__SAMPLE_RATIO"] = TRACE_SAMPLE_RATIO
    p = spawn(argv, PROXY_CPU, logfile, env=env)
    wait_ready(port, "/ping", p, name)
    return p, port, [logfile]


def start_redis(workdir):
    port = free_port()
    d = workdir / "redis"
    d.mkdir(exist_ok=True)
    p = spawn(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(d),
        ],
        CLIENT_CPU,
        d / "out.log",
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return p, port
        except OSError:
            time.sleep(0.1)
    die("redis-server did not start")


def start_oauth2_proxy(workdir, binary, upstream):
    port = free_port()
    d = workdir / "oauth2-proxy"
    d.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(12)
    sha = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    # oauth2-proxy accepts {SHA} (htpasswd -s) and bcrypt entries; SHA1 keeps this stdlib-only
    # and only costs at sign-in, never on the measured requests.
    (d / "htpasswd").write_text(f"bench:{{SHA}}{sha}\n")
    argv = [
        binary,
        f"--http-address=127.0.0.1:{port}",
        f"--upstream=http://127.0.0.1:{upstream}/",
        # A provider must be configured for it to start; "google" needs no discovery call.
        "--provider=google",
        "--client-id=bench-client",
        "--client-secret=bench-secret",
        f"--redirect-url=http://127.0.0.1:{port}/oauth2/callback",
        f"--cookie-secret={secrets.token_hex(16)}",
        "--cookie-secure=false",
        "--email-domain=*",
        f"--htpasswd-file={d / 'htpasswd'}",
        "--skip-provider-button=true",
    ]
    logfile = d / "out.log"
    p = spawn(argv, PROXY_CPU, logfile)
    wait_ready(port, "/ping", p, "oauth2-proxy")
    return p, port, [logfile], ("bench", password)


def login(kind, port, creds=None):
    argv = [sys.executable, str(LIB / "login.py"), kind, f"http://127.0.0.1:{port}"]
    if creds:
        argv += list(creds)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        die(f"login to {kind} failed: {out.stderr.strip()}")
    return out.stdout.strip()


# ---------------------------------------------------------------- HTTP/2 (h2load)


def scrape(port, name):
    """One unlabelled sample from the process's /metrics."""
    status, body = get(port, "/metrics")
    for line in body.decode().splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return float(line.split()[1])
    die(f"{name} missing from /metrics on port {port}")


def wait_tcp(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"{what} exited with {proc.returncode} before listening (see its log)")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    die(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def start_h2_upstream(workdir, nginx):
    """The same 1 KiB answer as the HTTP/1.1 upstream, over h2c with prior knowledge."""
    port = free_port()
    body = nginx_string(BODY)
    d, conf = nginx_conf(
        workdir,
        "upstream-h2",
        f"""    http2_max_requests 10000000;
    server {{
        listen 127.0.0.1:{port} http2 backlog=4096;
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}""",
        "off",
    )
    p = spawn([nginx, "-p", str(d), "-c", str(conf), "-g", "daemon off;"], CLIENT_CPU, d / "out.log")
    wait_tcp(port, p, "h2c upstream nginx")
    return p, port


def start_nginx_grpc(workdir, nginx, upstream):
    """nginx taking h2c and proxying over HTTP/2 with grpc_pass: its only HTTP/2 upstream."""
    port = free_port()
    d, conf = nginx_conf(
        workdir,
        "nginx-grpc",
        f"""    http2_max_requests 10000000;
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 256; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{port} http2 backlog=4096;
        location / {{ grpc_pass grpc://app; }}
    }}""",
        str(workdir / "nginx-grpc" / "access.log"),
    )
    p = spawn([nginx, "-p", str(d), "-c", str(conf), "-g", "daemon off;"], PROXY_CPU, d / "out.log")
    wait_tcp(port, p, "nginx grpc_pass")
    return p, port, [d / "access.log"]


def h2load(port, cookie, seconds, workdir):
    """h2load for `seconds` with H2_STREAMS streams over H2_CONNECTIONS connections; latency
    percentiles from its per-request log."""
    logf = workdir / "h2load.log"
    argv = [
        "taskset", "-c", CLIENT_CPU, "h2load", "-D", str(seconds), "-c", str(H2_CONNECTIONS),
        "-m", str(H2_STREAMS // H2_CONNECTIONS), "-t", "1", "--log-file", str(logf),
    ]
    if cookie:
        argv += ["-H", f"cookie: {cookie}"]
    argv.append(f"http://127.0.0.1:{port}/")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out.stdout)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out.stdout)
    if out.returncode != 0 or not done or not codes:
        die(f"h2load failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    latencies = sorted(
        int(parts[2]) for parts in (line.split("\t") for line in logf.read_text().splitlines()) if len(parts) >= 3
    )
    logf.unlink()
    requests, ok = int(done.group(2)), int(codes.group(1))
    others = sum(int(codes.group(i)) for i in (2, 3, 4))
    if requests == 0 or ok == 0 or others:
        die(f"h2load on 127.0.0.1:{port}: {ok} answers 2xx and {others} not (all must be the upstream's body)")
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds,
        "p50_us": pick(0.50),
        "p99_us": pick(0.99),
        "errors": int(done.group(4)) + int(done.group(5)),
    }


def measure_h2(key, proc, port, cookie, logs, opts, workdir):
    what = f"({key}) {H2_TARGETS[key]}"
    result = {"key": key, "name": H2_TARGETS[key], "runs": []}
    h2load(port, cookie, opts.warmup, workdir)
    for i in range(opts.repeats):
        for f in logs:
            if f.exists():
                os.truncate(f, 0)
        pids = tree(proc.pid)
        before = cpu_ticks(pids)
        r = h2load(port, cookie, opts.duration, workdir)
        r["cpu_s"] = (cpu_ticks(pids) - before) / CLK_TCK
        r["cpu_s_per_100k"] = r["cpu_s"] / r["requests"] * 100_000
        result["runs"].append(r)
        log(f"{what}: run {i + 1}/{opts.repeats}: {r['rps']:,.0f} req/s, p99 {r['p99_us'] / 1000:.2f} ms, "
            f"{r['cpu_s_per_100k']:.2f} CPU s / 100k")
    for k in ("rps", "p50_us", "p99_us", "cpu_s_per_100k"):
        result[k] = statistics.median(run[k] for run in result["runs"])
    result["errors"] = sum(run["errors"] for run in result["runs"])
    return result


def run_h2(opts, workdir):
    """Rows (f) and (g): the same h2c upstream behind nginx grpc_pass and behind rocketgate."""
    upstream, up_port = start_h2_upstream(workdir, opts.nginx)
    results = []
    proc, port, logs = start_nginx_grpc(workdir, opts.nginx, up_port)
    results.append(measure_h2("f", proc, port, None, logs, opts, workdir))
    stop(proc)
    proc, port, logs = start_rocketgate(workdir, opts.rocketgate, up_port, scheme="h2c")
    cookie = login("rocketgate", port)
    results.append(measure_h2("g", proc, port, cookie, logs, opts, workdir))
    stop(proc)
    stop(upstream)
    return results


def render_h2(rows):
    f = next((r for r in rows if r["key"] == "f"), None)
    out = [
        f"### HTTP/2 end to end: h2load, {H2_STREAMS} streams over {H2_CONNECTIONS} connections, h2c to an h2c upstream\n",
        "Same machine split and 1 KiB answer as above; the upstream is nginx with `listen ... http2`. "
        "nginx can proxy HTTP/2 to an upstream only with `grpc_pass`, which holds one upstream "
        "connection per stream; rocketgate multiplexes its pooled h2c connections. "
        "p50/p99 are from h2load's per-request log.\n",
        "| target | req/s | vs (f) nginx | p50 ms | p99 ms | p99 vs (f) | proxy CPU s / 100k req | CPU vs (f) | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = lambda k: f"{r[k] / f[k]:.2f}×" if f and f[k] else "—"  # noqa: E731
        out.append(
            f"| ({r['key']}) {r['name']} | {r['rps']:,.0f} | {ratio('rps')} | {fmt_ms(r['p50_us'])} "
            f"| {fmt_ms(r['p99_us'])} | {ratio('p99_us')} | {r['cpu_s_per_100k']:.2f} "
            f"| {ratio('cpu_s_per_100k')} | {r['errors']} |"
        )
    out.append("")
    out.append("Every run (req/s, p99 ms, CPU s / 100k): " + "; ".join(
        f"({r['key']}) " + ", ".join(
            f"{x['rps']:,.0f} / {fmt_ms(x['p99_us'])} / {x['cpu_s_per_100k']:.2f}" for x in r["runs"])
        for r in rows) + "\n")
    return "\n".join(out)


# ---------------------------------------------------------------- measuring one target


def open_connections_rss(port, cookie, n, pid):
    """VmRSS with `n` keep-alive connections open, each having made one authenticated request
    (as browsers keep them between clicks)."""
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    ).encode()
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(request)
            socks.append(s)
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    die("a connection closed before its response while measuring open connections")
                data += chunk
        time.sleep(0.5)
        return status_kib(tree(pid), "VmRSS")
    finally:
        for s in socks:
            s.close()
        time.sleep(0.5)


def measure(key, proc, port, cookie, logs, opts, workdir):
    """Warm-up, `repeats` fixed-duration runs at `connections`, then 1,000 connections."""
    what = f"({key}) {TARGETS[key]}"
    pid = proc.pid
    result = {"key": key, "name": TARGETS[key], "runs": []}
    verify_auth(port, cookie, what)
    time.sleep(1)
    result["idle_rss_kib"] = status_kib(tree(pid), "VmRSS")
    result["threads"] = threads(pid)
    log(f"{what}: idle RSS {result['idle_rss_kib'] / 1024:.1f} MiB; warming up")
    wrk(port, cookie, opts.connections, opts.warmup, workdir)
    for i in range(opts.repeats):
        for f in logs:
            if f.exists():
                os.truncate(f, 0)  # access logs stay small; the proxies append (O_APPEND)
        pids = tree(pid)
        before, cpu0_before = cpu_ticks(pids), cpu_stat(PROXY_CPU)
        r = wrk(port, cookie, opts.connections, opts.duration, workdir)
        ticks, cpu0_after = cpu_ticks(pids) - before, cpu_stat(PROXY_CPU)
        r["cpu_s"] = ticks / CLK_TCK
        # How much of the proxy's CPU something else took (a compile beside the benchmark):
        busy, total = (cpu0_after[0] - cpu0_before[0]), (cpu0_after[1] - cpu0_before[1])
        r["cpu0_others"] = max(0.0, (busy - (0 if key == "a" else ticks)) / max(total, 1))
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["cpu_s_per_100k"] = r["cpu_s"] / r["requests"] * 100_000
        r["cpu_util"] = r["cpu_s"] / (r["duration_us"] / 1e6)
        # Requests per second of the proxy's own CPU time: its throughput on a core of its own,
        # and much steadier than req/s when something else takes part of CPU 0.
        r["rps_per_cpu"] = r["requests"] / r["cpu_s"] if r["cpu_s"] > 0 else 0.0
        result["runs"].append(r)
        log(
            f"{what}: run {i + 1}/{opts.repeats}: {r['rps']:,.0f} req/s, p50 {r['p50_us'] / 1000:.2f} ms, "
            f"p99 {r['p99_us'] / 1000:.2f} ms, CPU {r['cpu_util'] * 100:.0f}%"
        )
    result["peak_rss_kib"] = status_kib(tree(pid), "VmHWM")
    # After the 64-connection runs (so their peak is their own), before the load at 1,000.
    result["rss_open_kib"] = open_connections_rss(port, cookie, 1000, pid)
    log(f"{what}: RSS with 1,000 open connections {result['rss_open_kib'] / 1024:.1f} MiB")
    sampler = RssSampler(pid, 0.5)
    sampler.start()
    r = wrk(port, cookie, 1000, opts.conn1000, workdir, timeout="10s")
    sampler.halt.set()
    sampler.join()
    result["rss_1000_kib"] = max((s for _, s in sampler.samples), default=0)
    result["rps_1000"] = r["requests"] / (r["duration_us"] / 1e6)
    result["p99_1000_us"] = r["p99_us"]
    result["errors_1000"] = r["socket_errors"] + r["timeouts"]
    log(
        f"{what}: 1,000 connections: {result['rps_1000']:,.0f} req/s, "
        f"RSS {result['rss_1000_kib'] / 1024:.1f} MiB"
    )
    for f in logs:
        if f.exists():
            os.truncate(f, 0)
    med = lambda k: statistics.median(run[k] for run in result["runs"])  # noqa: E731
    for k in ("rps", "p50_us", "p99_us", "max_us", "cpu_s_per_100k", "cpu_util", "rps_per_cpu"):
        result[k] = med(k)
    return result


def soak(proc, port, cookie, seconds, workdir, logs):
    """1,000 keep-alive connections under steady load; VmRSS every 5 s."""
    log(f"memory under load: 1,000 connections for {seconds} s, RSS every 5 s")
    stop_trunc = threading.Event()

    def truncate_logs():  # 2 minutes of access log at full speed would be hundreds of MB
        while not stop_trunc.wait(5):
            for f in logs:
                if f.exists():
                    os.truncate(f, 0)

    t = threading.Thread(target=truncate_logs, daemon=True)
    t.start()
    sampler = RssSampler(proc.pid, 5)
    sampler.start()
    r = wrk(port, cookie, 1000, seconds, workdir, timeout="10s")
    sampler.halt.set()
    sampler.join()
    stop_trunc.set()
    t.join()
    samples = sampler.samples
    return {
        "seconds": seconds,
        "samples": samples,
        "start_kib": samples[0][1] if samples else 0,
        "end_kib": samples[-1][1] if samples else 0,
        "max_kib": max((s for _, s in samples), default=0),
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p99_us": r["p99_us"],
        "errors": r["socket_errors"] + r["timeouts"],
    }


ROCKETGATE_BINARY = ["rocketgate"]
ROCKETGATE_LOG = [None]  # --rocketgate-log; unset: the default (info, one line per request)


def opts_rocketgate_name():
    return ROCKETGATE_BINARY[0]


def profile(proc, port, cookie, seconds, connections, workdir):
    """`perf record` of the process under test while wrk loads it: where its CPU goes."""
    data = workdir / "perf.data"
    log(f"profiling: perf record for {seconds} s under wrk -c{connections}")
    rec = subprocess.Popen(
        ["perf", "record", "-F", "1999", "-g", "-p", str(proc.pid), "-o", str(data), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.5)
    wrk(port, cookie, connections, seconds - 1, workdir)
    _, err = rec.communicate(timeout=60)
    if rec.returncode != 0:
        log(f"perf record failed, no profile: {err.strip()[:300]}")
        return None
    report = lambda *args: subprocess.run(  # noqa: E731
        ["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none", *args],
        capture_output=True, text=True, timeout=120,
    ).stdout
    lines = lambda text: "\n".join(  # noqa: E731
        l for l in text.splitlines() if l.strip() and not l.startswith("#")
    )
    # Self time by crate: rocketgate's symbols by their leading path (hyper, tokio, ...),
    # the kernel and shared libraries as themselves.
    crates = {}
    for line in report("--sort", "dso,sym").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(4).strip()
        if dso == os.path.basename(str(opts_rocketgate_name())):
            c = re.match(r"[<&\s]*(?:dyn\s+)?([A-Za-z_][A-Za-z0-9_]*)", sym)
            name = c.group(1) if c and "::" in sym else "(other rocketgate-binary code)"
            if name in ("core", "alloc", "std"):
                name = "std/core/alloc"
            key = name
        else:
            key = dso
        crates[key] = crates.get(key, 0.0) + pct
    by_crate = "\n".join(
        f"{pct:6.2f}%  {name}" for name, pct in sorted(crates.items(), key=lambda kv: -kv[1]) if pct >= 0.3
    )
    return {
        "by_crate": by_crate,
        "by_dso": lines(report("--sort", "dso", "--percent-limit", "0.5")),
        "by_symbol": lines(report("--sort", "dso,sym", "--percent-limit", "0.7")),
    }


# ---------------------------------------------------------------- microbenchmarks


def microbenchmarks():
    """Builds the microbenchmarks on every core, then runs them pinned to the proxy's CPU
    (idle by now), so they do not share a core with whatever else the machine is doing."""
    log("microbenchmarks: cargo bench --bench hot_path (run on CPU " + PROXY_CPU + ")")
    cargo = ["cargo", "bench", "--locked", "--bench", "hot_path"]
    build = subprocess.run(["nice", "-n", "10", *cargo, "--no-run"], cwd=ROOT,
                           capture_output=True, text=True)
    if build.returncode != 0:
        die(f"cargo bench --no-run failed:\n{build.stderr[-4000:]}")
    out = subprocess.run(["taskset", "-c", PROXY_CPU, *cargo], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        die(f"cargo bench failed:\n{out.stderr[-4000:]}")
    return out.stdout


def divan_median(text, name):
    """The median column of the divan row named `name`, in microseconds."""
    units = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}
    row = re.compile(
        r"^[\s│├╰─]*(\S+)\s+([\d.]+ \S+)\s*│\s*([\d.]+ \S+)\s*│\s*([\d.]+) (ns|µs|us|ms|s)\s*│"
    )
    for line in text.splitlines():
        m = row.match(line)
        if m and m.group(1) == name:
            return float(m.group(4)) * units[m.group(5)]
    return None


# ---------------------------------------------------------------- the report


def machine():
    def first(path, prefix):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    mem_kib = int(first("/proc/meminfo", "MemTotal").split()[0])
    return {
        "cpus": os.cpu_count(),
        "cpu": first("/proc/cpuinfo", "model name"),
        "kernel": platform.release(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    }


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def mib(kib):
    return f"{kib / 1024:.1f}"


def render(run):
    res = {r["key"]: r for r in run["results"]}
    a, b, e = res.get("a"), res.get("b"), res.get("e")
    out = []
    w = out.append
    w(f"## Run `{run['label']}`\n")
    w(f"{run['when']} · rocketgate `{run['rev']}` · {run['mode']}\n")
    m = run["machine"]
    w("| machine | |\n| --- | --- |")
    w(f"| CPUs | {m['cpus']} × {m['cpu']} |")
    w(f"| kernel | {m['kernel']} |")
    w(f"| RAM | {m['ram_gib']} GiB |")
    w(f"| load average at start | {' '.join(m['loadavg_at_start'])} |")
    for k, v in run["versions"].items():
        w(f"| {k} | {v} |")
    w("")
    s = run["settings"]
    w(
        f"Settings: wrk -t1 -c{s['connections']} -d{s['duration']}s --latency, {s['repeats']} run(s) per "
        f"target after a {s['warmup']} s warm-up, medians shown; every request carries the target's "
        f"session cookie and gets the upstream's 1 KiB body. Process under test on CPU {PROXY_CPU}; "
        f"wrk, upstream nginx and Redis on CPU {CLIENT_CPU}. Ratios compare rows of this run only.\n"
    )
    w(
        "| target | req/s | vs (b) nginx | vs (e) oauth2-proxy | p50 ms | p99 ms | max ms "
        "| p99 added over (a) ms | proxy CPU s / 100k req | req per proxy CPU-s | proxy CPU busy | idle RSS MiB "
        "| RSS MiB, 1,000 open conns | peak RSS MiB (64 conns) | max RSS MiB, 1,000 conns under load |"
    )
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in sorted(res):
        r = res[key]
        direct = key == "a"
        w(
            "| ({k}) {name} | {rps:,.0f} | {vb} | {ve} | {p50} | {p99} | {mx} | {added} | {cpu} | {eff} | {busy} "
            "| {idle} | {open} | {peak} | {c1000} |".format(
                k=key,
                name=r["name"],
                rps=r["rps"],
                vb=f"{r['rps'] / b['rps']:.2f}×" if b else "—",
                ve=f"{r['rps'] / e['rps']:.2f}×" if e else "—",
                p50=fmt_ms(r["p50_us"]),
                p99=fmt_ms(r["p99_us"]),
                mx=fmt_ms(r["max_us"]),
                added="—" if direct or not a else f"{(r['p99_us'] - a['p99_us']) / 1000:+.2f}",
                cpu="—" if direct else f"{r['cpu_s_per_100k']:.2f}",
                eff="—" if direct else f"{r['rps_per_cpu']:,.0f}",
                busy="—" if direct else f"{r['cpu_util'] * 100:.0f}%",
                idle="—" if direct else mib(r["idle_rss_kib"]),
                open="—" if direct or "rss_open_kib" not in r else mib(r["rss_open_kib"]),
                peak="—" if direct else mib(r["peak_rss_kib"]),
                c1000="—" if direct else mib(r["rss_1000_kib"]),
            )
        )
    w("")
    w(
        "(a) is the upstream alone, the floor for latency; its CPU and RSS columns are empty because "
        "there is no proxy. \"proxy CPU busy\" is the share of CPU 0 the proxy used: near 100% means "
        "the proxy was the limit; well below it, look at \"CPU 0 used by other processes\" under "
        "\"Every run\" (a compile beside the benchmark) or at the client side (CPU 1). RSS is of the "
        "whole process tree (nginx: master + worker); the 1,000-connection figure is the largest "
        f"VmRSS sampled every 0.5 s during a {s['conn1000']} s wrk run with 1,000 keep-alive connections. "
        "wrk is closed-loop: each connection waits for its answer, so at saturation latency is "
        "mostly queueing (p50 ≈ connections ÷ req/s, Little's law) and the p99 target is in effect "
        "a throughput target.\n"
    )

    # Against the targets.
    c = res.get("c")
    rows = []
    if c and b:
        ratio = c["rps"] / b["rps"]
        rows.append(("throughput ≥ 1.0× nginx proxy_pass", f"{ratio:.2f}× ({c['rps']:,.0f} vs {b['rps']:,.0f} req/s)", ratio >= 1.0))
    if c and e:
        ratio = c["rps"] / e["rps"]
        rows.append(("throughput ≥ 3× oauth2-proxy", f"{ratio:.2f}× ({c['rps']:,.0f} vs {e['rps']:,.0f} req/s)", ratio >= 3.0))
    for other, want, label in ((b, 1.0, "nginx proxy_pass"), (e, 3.0, "oauth2-proxy")):
        if c and other and other["rps_per_cpu"]:
            ratio = c["rps_per_cpu"] / other["rps_per_cpu"]
            rows.append((
                f"same, per proxy CPU-second (≥ {want:.0f}× {label})",
                f"{ratio:.2f}× ({c['rps_per_cpu']:,.0f} vs {other['rps_per_cpu']:,.0f} req per CPU-s)",
                ratio >= want,
            ))
    for key in ("c", "d"):
        r = res.get(key)
        if r and a:
            added = (r["p99_us"] - a["p99_us"]) / 1000
            rows.append((f"({key}) p99 added over direct ≤ 1 ms at {s['connections']} connections", f"{added:+.2f} ms ({fmt_ms(r['p99_us'])} vs {fmt_ms(a['p99_us'])})", added <= 1.0))
    if c:
        rows.append(("RSS ≤ 20 MiB idle", f"{mib(c['idle_rss_kib'])} MiB", c["idle_rss_kib"] <= 20 * 1024))
        if "rss_open_kib" in c:
            rows.append(("RSS ≤ 64 MiB with 1,000 open connections", f"{mib(c['rss_open_kib'])} MiB (open, idle keep-alive)", c["rss_open_kib"] <= 64 * 1024))
        rows.append(("RSS ≤ 64 MiB with 1,000 connections under full load", f"{mib(c['rss_1000_kib'])} MiB", c["rss_1000_kib"] <= 64 * 1024))
    if run.get("micro_open_cold_us") is not None:
        v = run["micro_open_cold_us"]
        rows.append(("session open ≤ 5 µs (cold: AES-GCM + JSON)", f"{v:.2f} µs", v <= 5.0))
    if run.get("micro_open_cached_us") is not None:
        v = run["micro_open_cached_us"]
        rows.append(("session open ≤ 5 µs (cached, steady state)", f"{v:.2f} µs", v <= 5.0))
    if rows:
        w("### Against the targets (rocketgate, cookie session unless noted)\n")
        w("| target | measured | met |\n| --- | --- | --- |")
        for t, v, ok in rows:
            w(f"| {t} | {v} | {'yes' if ok else '**no**'} |")
        w("")

    t = res.get("t")
    if t and c:
        cost = t["cpu_s_per_100k"] / c["cpu_s_per_100k"] - 1
        w("### Tracing cost: (c) tracing off against (t) 1% of requests traced\n")
        w("| | proxy CPU s / 100k req | vs (b) nginx | req/s | p99 ms |\n| --- | ---: | ---: | ---: | ---: |")
        for key, r in (("c", c), ("t", t)):
            vs = f"{r['cpu_s_per_100k'] / b['cpu_s_per_100k']:.2f}×" if b else "—"
            w(f"| ({key}) {r['name']} | {r['cpu_s_per_100k']:.2f} | {vs} | {r['rps']:,.0f} | {fmt_ms(r['p99_us'])} |")
        w("")
        w(
            f"Sampling 1% costs {cost * 100:+.1f}% proxy CPU per request. (t) sent its spans in "
            f"{t['trace_exports']:,} OTLP/HTTP exports to an nginx location answering 200 (rocketgate's side "
            f"of tracing: recording, encoding, sending; no collector's) and dropped "
            f"{t['trace_spans_dropped']:.0f} spans. Unsampled requests still get a trace id and pass a "
            "`traceparent` upstream, in (c) as in (t).\n"
        )

    if run.get("h2"):
        w(render_h2(run["h2"]))

    if run.get("soak"):
        sk = run["soak"]
        w(f"### Memory under load: rocketgate (c), 1,000 keep-alive connections, {sk['seconds']} s\n")
        w(
            f"RSS at start {mib(sk['start_kib'])} MiB, at end {mib(sk['end_kib'])} MiB, max "
            f"{mib(sk['max_kib'])} MiB; {sk['rps']:,.0f} req/s, p99 {fmt_ms(sk['p99_us'])} ms, "
            f"{sk['errors']} socket errors/timeouts.\n"
        )
        w("Samples (s: MiB): " + ", ".join(f"{t:.0f}: {mib(k)}" for t, k in sk["samples"]) + "\n")

    w("### Every run\n")
    w(
        f"| target | run | req/s | p50 ms | p99 ms | max ms | proxy CPU s | CPU s / 100k | errors "
        f"| CPU {PROXY_CPU} used by other processes |"
    )
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in sorted(res):
        for i, r in enumerate(res[key]["runs"], 1):
            w(
                f"| ({key}) | {i} | {r['rps']:,.0f} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} "
                f"| {fmt_ms(r['max_us'])} | {r['cpu_s']:.2f} | {r['cpu_s_per_100k']:.2f} "
                f"| {r['socket_errors'] + r['timeouts']} | {r['cpu0_others'] * 100:.0f}% |"
            )
    w("")
    w("Threads of the process under test: " + "; ".join(
        f"({k}) {len(res[k]['threads'])} ({summarise_threads(res[k]['threads'])})" for k in sorted(res)
    ) + "\n")
    w("1,000-connection runs (req/s, p99 ms, errors): " + "; ".join(
        f"({k}) {res[k]['rps_1000']:,.0f}, {fmt_ms(res[k]['p99_1000_us'])}, {res[k]['errors_1000']}" for k in sorted(res)
    ) + "\n")
    if run.get("perf"):
        w("### Where rocketgate (c) spends its CPU (`perf record -g`, self time, under wrk -c"
          f"{s['connections']})\n")
        w("By binary / library:\n\n```text\n" + run["perf"]["by_dso"] + "\n```\n")
        if run["perf"].get("by_crate"):
            w("By crate (rocketgate's symbols grouped by their crate; ≥ 0.3%):\n\n```text\n"
              + run["perf"]["by_crate"] + "\n```\n")
        w("By symbol (≥ 0.7%):\n\n```text\n" + run["perf"]["by_symbol"] + "\n```\n")
    if run.get("micro"):
        w("### Microbenchmarks (`cargo bench --bench hot_path`, divan)\n")
        w("```text\n" + run["micro"].strip() + "\n```\n")
    return "\n".join(out)


def summarise_threads(names):
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"{n}×{c}" if c > 1 else n for n, c in sorted(counts.items()))


HEADER = """# rocketgate benchmark results, {date}

Produced by `bench/run` (see `bench/README.md`). Each `## Run` section is one invocation; a
second run with the same `--label` on the same day replaces its section, another label is
appended (e.g. `--label before` / `--label after`).

All targets share one 2-core machine, and other work (compiles) may run beside the benchmark,
so absolute numbers move between runs: **the ratios between rows of one run are what count**.
Each figure is the median of the repeated runs listed under "Every run".
"""


def write_results(run, path):
    section = render(run)
    begin, end = f"<!-- run:{run['label']} -->", f"<!-- /run:{run['label']} -->"
    block = f"{begin}\n{section}\n{end}\n"
    if path.exists():
        text = path.read_text()
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    else:
        text = HEADER.format(date=run["date"]) + "\n" + block
    path.write_text(text)
    data = path.with_suffix(".json")
    runs = json.loads(data.read_text()) if data.exists() else {}
    runs[run["label"]] = run
    data.write_text(json.dumps(runs, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- main


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("--rocketgate", required=True, help="the release binary")
    ap.add_argument("--oauth2-proxy", dest="oauth2_proxy", help="the oauth2-proxy binary")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--smoke", action="store_true", help="2 s per target, 1 run, no microbenchmarks")
    ap.add_argument("--long", action="store_true", help="also 1,000 connections under load for --soak seconds")
    ap.add_argument("--soak", type=int, default=120)
    ap.add_argument("--label", help="name of this run's section (default: the git revision)")
    ap.add_argument("--targets", default="abcdte", help="subset of abcdte")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-micro", dest="micro", action="store_false")
    ap.add_argument("--no-h2", dest="h2", action="store_false",
                    help="skip the HTTP/2 rows (f) nginx grpc_pass and (g) rocketgate to an h2c upstream")
    ap.add_argument("--rocketgate-log", help="ROCKETGATE_LOG for (c)/(d), e.g. warn (default: info, as shipped)")
    ap.add_argument("--perf", type=int, default=0, metavar="S",
                    help="also profile rocketgate (c) with perf record for S seconds under load")
    ap.add_argument("--results", help="where YYYY-MM-DD.md goes (default bench/results; "
                    "with --smoke a temporary directory, so smoke runs never touch the record)")
    opts = ap.parse_args()
    opts.warmup, opts.conn1000 = 2, 5
    if opts.smoke:
        opts.duration, opts.repeats, opts.warmup, opts.conn1000, opts.micro = 2, 1, 1, 2, False
        opts.soak = min(opts.soak, 10)
    if not opts.results:
        opts.results = (
            os.path.join(tempfile.gettempdir(), "rocketgate-bench-smoke")
            if opts.smoke
            else str(ROOT / "bench" / "results")
        )
    ROCKETGATE_BINARY[0] = opts.rocketgate
    ROCKETGATE_LOG[0] = opts.rocketgate_log
    if "e" in opts.targets and not opts.oauth2_proxy:
        die("target (e) needs --oauth2-proxy")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(cleanup)

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    rev += "-dirty" if dirty else ""
    now = datetime.datetime.now()
    run = {
        "label": opts.label or rev,
        "date": now.strftime("%Y-%m-%d"),
        "when": now.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "rev": rev,
        "mode": "smoke" if opts.smoke else "full",
        "machine": machine(),
        "versions": {
            "nginx": version([opts.nginx, "-v"]),
            "wrk": version(["wrk", "-v"]),
            "redis-server": version(["redis-server", "--version"]),
            "rocketgate": version([opts.rocketgate, "--version"]) + f" ({rev})"
            + (f", ROCKETGATE_LOG={opts.rocketgate_log}" if opts.rocketgate_log else ""),
        },
        "settings": {
            "connections": opts.connections, "duration": opts.duration,
            "repeats": opts.repeats, "warmup": opts.warmup, "conn1000": opts.conn1000,
        },
        "results": [],
    }
    if opts.oauth2_proxy:
        # `go install` builds report "undefined" from --version; the build info has the module.
        info = subprocess.run(["go", "version", "-m", opts.oauth2_proxy], capture_output=True, text=True).stdout
        m = re.search(r"^\s*mod\s+\S+oauth2-proxy/v7\s+(\S+)", info, re.M)
        first = info.splitlines()[0].split(": ", 1)[-1] if info else "?"
        run["versions"]["oauth2-proxy"] = f"{m.group(1) if m else '?'} (go install, {first})"
    if os.cpu_count() < 2:
        die("needs at least 2 CPUs (one for the proxy, one for wrk and the upstream)")

    workdir = Path(tempfile.mkdtemp(prefix="rocketgate-bench-"))
    log(f"work dir {workdir}")
    upstream, up_port = start_upstream(workdir, opts.nginx)
    verify_auth(up_port, None, "upstream")

    def one(key, start, cookie_of):
        proc, port, logs, *extra = start()
        cookie = cookie_of(port, *extra)
        r = measure(key, proc, port, cookie, logs, opts, workdir)
        run["results"].append(r)
        return proc, port, cookie, logs

    if "a" in opts.targets:
        r = measure("a", upstream, up_port, None, [], opts, workdir)
        run["results"].append(r)
    if "b" in opts.targets:
        proc, *_ = one("b", lambda: start_nginx_proxy(workdir, opts.nginx, up_port), lambda port: None)
        stop(proc)
    if "c" in opts.targets or opts.long:
        proc, port, cookie, logs = one(
            "c", lambda: start_rocketgate(workdir, opts.rocketgate, up_port),
            lambda port: login("rocketgate", port),
        )
        if opts.perf:
            run["perf"] = profile(proc, port, cookie, opts.perf, opts.connections, workdir)
        if opts.long:
            run["soak"] = soak(proc, port, cookie, opts.soak, workdir, logs)
        stop(proc)
    if "d" in opts.targets:
        redis, redis_port = start_redis(workdir)
        proc, *_ = one(
            "d", lambda: start_rocketgate(workdir, opts.rocketgate, up_port, f"redis://127.0.0.1:{redis_port}/0"),
            lambda port: login("rocketgate", port),
        )
        stop(proc)
        stop(redis)
    if "t" in opts.targets:
        sink, sink_port, exports = start_trace_sink(workdir, opts.nginx)
        proc, port, *_ = one(
            "t", lambda: start_rocketgate(workdir, opts.rocketgate, up_port, traces_to=sink_port),
            lambda port: login("rocketgate", port),
        )
        time.sleep(0.5)  # the exporter sends every 200 ms
        r = run["results"][-1]
        r["trace_exports"] = sum(1 for _ in open(exports)) if exports.exists() else 0
        r["trace_spans_dropped"] = scrape(port, "rocketgate_trace_spans_dropped_total")
        log(f"(t): {r['trace_exports']} export batches, {r['trace_spans_dropped']:.0f} spans dropped")
        if r["trace_exports"] == 0:
            die("(t) exported no spans: the tracing row would measure nothing")
        stop(proc)
        stop(sink)
    if "e" in opts.targets:
        proc, *_ = one(
            "e", lambda: start_oauth2_proxy(workdir, opts.oauth2_proxy, up_port),
            lambda port, creds: login("oauth2-proxy", port, creds),
        )
        stop(proc)
    stop(upstream)
    if opts.h2:
        run["h2"] = run_h2(opts, workdir)
        run["versions"]["h2load"] = version(["h2load", "--version"])

    if opts.micro:
        text = microbenchmarks()
        run["micro"] = text
        run["micro_open_cold_us"] = divan_median(text, "open_cold")
        run["micro_open_cached_us"] = divan_median(text, "open_cached")

    out_dir = Path(opts.results)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{run['date']}.md"
    write_results(run, path)
    print()
    print(render(run))
    log(f"wrote {path}")
    subprocess.run(["rm", "-rf", str(workdir)])


if __name__ == "__main__":
    main()
