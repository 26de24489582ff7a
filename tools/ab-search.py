#!/usr/bin/env python3
"""Two Certscope builds side by side on the same data, query by query.

On a shared machine the load of the moment moves a run's figures by more than
most changes do, so two `bench search` runs one after the other compare the
moments as much as the builds. This starts both builds at once (the second on
a copy of the index: one writer per index directory), then asks each query of
the list of both servers in turn, alternating which goes first, so that each
pair of answers sees the same moment; the median of the per-pair ratios is the
comparison.

    cp -r D/index /tmp/index-b
    tools/ab-search.py --a NEW_BINARY --b OLD_BINARY --data-dir D --index-b /tmp/index-b

The response cache is off (`--cache-mib 0`): every answer is a search.
"""
import argparse
import statistics
import subprocess
import time
import urllib.request

FACETS = "facets=kind,status,framework,family,owner,risk_level,certification,due"
# the slowest shapes of `bench search` (its "slowest ms" line), and a few others
QUERIES = [
    "q=baseline&due=overdue",
    "q=controlled&kind=requirement,evidence&sort=-due_date",
    "q=system&kind=evidence&status=accepted,pending",
    "q=configuration%20settings",
    "q=access",
    "kind=evidence&sort=-updated_at",
    "q=audit&due=overdue",
    "q=%22incident%20response%22",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="first certscope binary")
    ap.add_argument("--b", required=True, help="second certscope binary")
    ap.add_argument("--data-dir", required=True, help="seeded and reindexed data directory")
    ap.add_argument("--index-b", required=True, help="a copy of DATA_DIR/index for the second")
    ap.add_argument("--org", default="northwind-health", help="organization searched")
    ap.add_argument("--rounds", type=int, default=20, help="pairs per query")
    args = ap.parse_args()

    token = subprocess.run(
        [args.a, "--data-dir", args.data_dir, "token", "--org", args.org],
        check=True, capture_output=True, text=True,
    ).stdout.strip()

    def start(binary, port, index):
        cmd = [binary, "--data-dir", args.data_dir, "serve", "--listen", f"127.0.0.1:{port}",
               "--cache-mib", "0", "--rate-per-token", "1000000", "--rate-per-ip", "1000000"]
        if index:
            cmd += ["--index-dir", index]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready(port, proc):
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server on port {port} exited ({proc.returncode})")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz")
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"the server on port {port} did not get ready")

    def get(port, q):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/search?{q}&{FACETS}",
                                     headers={"Authorization": "Bearer " + token})
        t = time.perf_counter()
        urllib.request.urlopen(req).read()
        return (time.perf_counter() - t) * 1e3

    a = start(args.a, 8897, None)
    b = start(args.b, 8896, args.index_b)
    try:
        ready(8897, a)
        ready(8896, b)
        for q in QUERIES:  # warm both
            for _ in range(3):
                get(8897, q)
                get(8896, q)
        times = {q: ([], []) for q in QUERIES}
        for i in range(args.rounds):
            for q in QUERIES:
                if i % 2:
                    tb = get(8896, q)
                    ta = get(8897, q)
                else:
                    ta = get(8897, q)
                    tb = get(8896, q)
                times[q][0].append(ta)
                times[q][1].append(tb)
    finally:
        for p in (a, b):
            p.terminate()
            p.wait()

    print(f"{'query':56} {'a p50 ms':>9} {'b p50 ms':>9} {'a/b':>6}  (median of paired ratios)")
    ratios = []
    for q in QUERIES:
        ta, tb = times[q]
        r = [x / y for x, y in zip(ta, tb)]
        ratios += r
        print(f"{q:56} {statistics.median(ta):9.1f} {statistics.median(tb):9.1f} {statistics.median(r):6.2f}")
    print(f"all queries: median a/b {statistics.median(ratios):.3f} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
