#!/usr/bin/env python3
"""Instructions per proxied request, under callgrind: the repeatable A/B for a change.

Wall-clock figures on a shared 2-core VM move by 10-20% between runs; the instructions
rocketgate executes per request do not. This starts the upstream nginx, runs each given
rocketgate binary under `valgrind --tool=callgrind` (pinned to CPU 0, so it uses its
single-threaded runtime as in bench/run), signs in through the demo stand-in, warms up,
zeroes the counters, sends wrk's load for a fixed time and divides the instructions by the
requests answered. It prints, per binary, the total and the share in SHA-256 (valgrind
cannot use the SHA extensions, so that share is inflated ~25x against real hardware and is
also reported excluding it), then the functions with the largest inclusive cost.

    bench/run --instructions                            # HEAD, dist profile
    python3 bench/lib/instructions.py --rocketgate A --rocketgate B   # compare two builds

User-space only: the kernel's TCP work (about half the real cost per request) is not
counted. Standard library only, plus valgrind's callgrind_annotate.
"""

import argparse
import atexit
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

SHA = re.compile(r"sha2::sha256::")


def measure(binary, upstream, seconds, connections, workdir, top):
    name = Path(binary).resolve()
    out = workdir / f"callgrind.{len(list(workdir.glob('callgrind.*')))}"
    port = bench.free_port()
    argv = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
        str(binary), "demo", "--listen", f"127.0.0.1:{port}",
        "--upstream", f"http://127.0.0.1:{upstream}",
    ]
    proc = bench.spawn(argv, bench.PROXY_CPU, workdir / "valgrind.log")
    bench.wait_ready(port, "/ping", proc, f"rocketgate under callgrind ({name})", timeout=120)
    cookie = bench.login("rocketgate", port)
    bench.wrk(port, cookie, connections, 2, workdir)  # warm-up: caches, pooled connections
    control = lambda cmd: subprocess.run(  # noqa: E731
        ["callgrind_control", cmd, str(proc.pid)], capture_output=True, text=True, timeout=60,
    )
    control("-z")
    r = bench.wrk(port, cookie, connections, seconds, workdir)
    control("-d")
    time.sleep(0.5)
    bench.stop(proc)
    dumps = sorted(workdir.glob(out.name + ".*"), key=lambda p: p.stat().st_mtime)
    if not dumps:
        bench.die("callgrind wrote no dump")
    annotate = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dumps[-1])],
        capture_output=True, text=True, timeout=300,
    ).stdout
    total, sha, rows = None, 0, []
    for line in annotate.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        ir, what = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in what:
            total = ir
        elif SHA.search(what) and "compress" in what:
            sha = max(sha, ir)
        else:
            rows.append((ir, what))
    if not total:
        bench.die("no totals in the callgrind dump")
    n = r["requests"]
    print(f"\n{name}\n  {n:,} requests; {total / n:,.0f} instructions per request, "
          f"{(total - sha) / n:,.0f} without SHA-256 ({sha / n:,.0f}, software under valgrind)")
    shown = 0
    for ir, what in rows:
        fn = re.sub(r"\s*\[[^\]]*\]\s*$", "", what).split(":", 1)[-1]
        if not re.search(r"rocketgate::|hyper|tokio|tracing|http::|moka|libc|malloc|free", what):
            continue
        if ir / total > 0.995:
            continue  # main, the runtime loop: everything
        print(f"  {ir / n:10,.0f}  {fn[:110]}")
        shown += 1
        if shown >= top:
            break
    return total / n, (total - sha) / n


def main():
    ap = argparse.ArgumentParser(prog="instructions.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rocketgate", action="append", required=True,
                    help="a rocketgate binary (repeat to compare builds)")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--top", type=int, default=25, help="functions listed per binary")
    a = ap.parse_args()
    atexit.register(bench.cleanup)
    signal.signal(signal.SIGTERM, bench.on_signal)
    signal.signal(signal.SIGINT, bench.on_signal)
    with tempfile.TemporaryDirectory(prefix="rocketgate-instructions-") as tmp:
        workdir = Path(tmp)
        _, upstream = bench.start_upstream(workdir, a.nginx)
        results = [
            (b, measure(b, upstream, a.seconds, a.connections, workdir, a.top))
            for b in a.rocketgate
        ]
        bench.cleanup()
    if len(results) > 1:
        base = results[0][1]
        print("\nagainst the first binary (instructions per request, without SHA-256):")
        for b, (_, without) in results:
            print(f"  {without:10,.0f}  {without / base[1]:.3f}x  {b}")


if __name__ == "__main__":
    main()
