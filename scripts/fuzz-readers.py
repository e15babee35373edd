#!/usr/bin/env python3
"""Mutation fuzzing of the stream reader and the import parsers.

Feeds ru-vec thousands of mutated streams (bit flips, cuts, inserted bytes, broken headers)
and mutated jsonl/tsv/npy/fvecs inputs, and fails if any run crashes, hangs, or exits with
anything but 0 or 2 with one error line. Not part of `swift test` (it takes a minute).

    swift build -c release && scripts/fuzz-readers.py [--runs N]
"""
import argparse, io, json, os, random, subprocess, sys, tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
    vec = os.path.join(bin_dir, "ru-vec")
    rng = random.Random(args.seed)
    failures = 0

    def check(cmd, data):
        nonlocal failures
        try:
            r = subprocess.run(cmd, input=data, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            failures += 1
            print("hang:", cmd)
            return
        if r.returncode not in (0, 2) or (r.returncode == 2 and r.stderr.count(b"\n") != 1):
            failures += 1
            print("exit", r.returncode, cmd, r.stderr[-300:])

    lines = [json.dumps({"id": f"ид\t{i}", "vector": [rng.uniform(-1, 1) for _ in range(13)]}, ensure_ascii=i % 2 == 0)
             for i in range(7)]
    jsonl = ("\n".join(lines) + "\n").encode()
    streams = []
    for dtype in ("f32", "f16", "int8", "binary"):
        r = subprocess.run([vec, "import", "--from", "jsonl", "--dtype", dtype, "--force", "--chunk-records", "3"],
                           input=jsonl, capture_output=True, check=True)
        streams.append(r.stdout)
    streams.append(subprocess.run(["zstd", "-dc"], input=streams[0], capture_output=True).stdout or streams[0])
    tsv = b"".join(b"x%d\t1.5\t-2e-3\t3\n" % i for i in range(5))
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype="<f4").reshape(3, 4))
    npy = buf.getvalue()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz.vec")
        for _ in range(args.runs):
            data = bytearray(rng.choice(streams))
            op = rng.randrange(4)
            if op == 0:
                for _ in range(rng.randrange(1, 5)):
                    i = rng.randrange(len(data))
                    data[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                data = data[:rng.randrange(len(data))]
            elif op == 2:
                i = rng.randrange(len(data))
                data[i:i] = os.urandom(rng.randrange(1, 20))
            else:
                data[rng.randrange(min(64, len(data)))] = rng.randrange(256)
            with open(path, "wb") as f:
                f.write(data)
            for cmd in (["verify", path], ["export", "--to", "tsv", path], ["cat", "--dtype", "int8", "--force", path]):
                check([vec] + cmd, b"")

            fmt, base = rng.choice([("jsonl", jsonl), ("tsv", tsv), ("npy", npy), ("fvecs", npy[128:])])
            data = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(data))
                op = rng.randrange(3)
                if op == 0:
                    data[i] = rng.randrange(256)
                elif op == 1:
                    del data[i:i + rng.randrange(1, 8)]
                else:
                    data[i:i] = rng.choice([b"\\u", b"\\ud800", b'"', b"[", b"\xff", b"\t", b"\n", b"1e999", b"-", b"\\"])
            check([vec, "import", "--from", fmt, "--force"], bytes(data))
    print(f"{args.runs} mutated streams and {args.runs} mutated imports: {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
