#!/usr/bin/env python3
"""Writes the hostile-stream corpus: small crafted inputs that every reader must refuse.

Each file breaks one rule of docs/FORMAT.md (or of an import format) in the way an attacker
or a broken producer would: truncated frames, bad magic, sizes that do not add up, huge
declared sizes, decompression bombs, NaN and infinity payloads, non-finite int8 calibrations,
id length overflows, changes between chunks, invalid UTF-8, trailing garbage. Every tool that
reads the file must exit 2 with one stderr line that names it
(Tests/RuEmbedTests/HostileStreamTests.swift runs them all).

    scripts/make-hostile-streams.py          # rewrites Tests/RuEmbedTests/Fixtures/hostile/streams/

Python's standard library and the zstd command line only. The files are a few KB in all
(the bombs are zeros, which zstd packs into a few hundred bytes).

Kinds, by extension: .vec vector streams, .tok token streams, .jsonl/.tsv/.npy/.fvecs inputs
of `ru-vec import --from <ext>`.
"""
import json, os, shutil, struct, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "RuEmbedTests", "Fixtures", "hostile", "streams")

MAGIC = b"\x89RUVEC\r\n"
F32, F16, INT8, BINARY, U32 = 1, 2, 3, 4, 5


def align64(n):
    return (n + 63) // 64 * 64


def header(kind, dtype, dim, count, ext_len, ids_len, payload_len, flags=0, major=1, header_size=64):
    h = MAGIC + struct.pack("<HHBBHIIIIQQ", major, 0, kind, dtype, header_size, dim, count, flags,
                            ext_len, ids_len, payload_len)
    return h + bytes(64 - len(h))


def chunk(ids, payload, dim, dtype=F32, kind=1, ext=None, flags=0, **overrides):
    """A chunk as the format defines it; `overrides` replace header fields to break it."""
    ext_bytes = b"" if ext is None else (ext if isinstance(ext, bytes) else json.dumps(ext).encode())
    id_bytes = [i if isinstance(i, bytes) else i.encode() for i in ids]
    ids_section = b"".join(struct.pack("<I", len(i)) for i in id_bytes) + b"".join(id_bytes)
    fields = dict(kind=kind, dtype=dtype, dim=dim, count=len(ids), ext_len=len(ext_bytes),
                  ids_len=len(ids_section), payload_len=len(payload), flags=flags)
    fields.update(overrides)
    head = header(**fields)
    body = head + ext_bytes + ids_section
    return body + bytes(align64(len(body)) - len(body)) + payload


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


def f16(*values):
    return struct.pack(f"<{len(values)}e", *values)


def tokens(*lists):
    return b"".join(struct.pack("<I", len(l)) for l in lists) + b"".join(struct.pack(f"<{len(l)}I", *l) for l in lists)


def zstd(data, sized=True):
    """One zstd frame with the checksum; with the content size unless `sized` is False."""
    args = ["zstd", "-q", "-c"]
    if sized:
        args.append(f"--stream-size={len(data)}")
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def skippable(payload, nibble=0):
    return struct.pack("<II", 0x184D2A50 | nibble, len(payload)) + payload


def good_f32(ids=("a", "b"), dim=2):
    return chunk(list(ids), f32(*[0.5] * (dim * len(ids))), dim)


def int8_chunk(starts, steps, dim=2):
    return chunk(["q"], bytes(dim), dim, dtype=INT8, ext={"int8": {"starts": starts, "steps": steps}})


def npy(shape_text, data=b"", descr="<f4", fortran=False):
    d = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    d += " " * (63 - (10 + len(d)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode() + data


def cases():
    good = zstd(good_f32())
    c = {}
    # --- not a stream, or broken frames
    c["bad-magic.vec"] = b"hello, world\n"
    c["truncated-zstd-frame.vec"] = good[: len(good) // 2]
    c["truncated-zstd-header.vec"] = good[:6]
    c["truncated-raw-chunk.vec"] = good_f32()[:100]
    c["truncated-raw-header.vec"] = good_f32()[:40]
    c["truncated-skippable.vec"] = struct.pack("<II", 0x184D2A5F, 1000) + b"x" * 10
    c["skippable-then-text.vec"] = skippable(b"meta") + b"hello, world\n"
    c["checksum-mismatch.vec"] = good[:-1] + bytes([good[-1] ^ 0xFF])
    c["trailing-garbage.vec"] = good + b"junk"
    c["trailing-partial-magic.vec"] = good + b"\x28\xb5"
    c["second-frame-garbage.vec"] = good + zstd(b"this is not a chunk, just text" * 4)
    # --- decompression bombs: zeros that declare (or decompress to) more than 64 MiB
    bomb = bytes(65 << 20)
    c["bomb-declared.vec"] = zstd(bomb)
    c["bomb-unsized.vec"] = zstd(bomb, sized=False)
    c["raw-chunk-huge-payload.vec"] = header(1, F32, 2, 1, 0, 5, 1 << 62)
    c["raw-chunk-huge-ids.vec"] = header(1, F32, 2, 1, 0, (1 << 64) - 1, 8)
    c["raw-chunk-huge-extension.vec"] = header(1, F32, 2, 1, 0xFFFFFFFF, 5, 8)
    # --- header fields
    c["unknown-major.vec"] = zstd(chunk(["a"], f32(1, 2), 2, major=2))
    c["unknown-kind.vec"] = zstd(chunk(["a"], f32(1, 2), 2, kind=7))
    c["unknown-dtype.vec"] = zstd(chunk(["a"], f32(1, 2), 2, dtype=9))
    c["dtype-u32-for-vectors.vec"] = zstd(chunk(["a"], f32(1, 2), 2, dtype=U32))
    c["unknown-required-flag.vec"] = zstd(chunk(["a"], f32(1, 2), 2, flags=1 << 20))
    c["vector-dim-zero.vec"] = zstd(chunk(["a"], b"", 0))
    c["header-size-too-small.vec"] = zstd(chunk(["a"], f32(1, 2), 2, header_size=16))
    c["header-size-past-chunk.vec"] = zstd(chunk(["a"], f32(1, 2), 2, header_size=0xFFFF))
    # --- sizes that do not add up
    c["count-beyond-ids.vec"] = zstd(chunk(["a", "b"], f32(1, 2, 3, 4), 2, count=3))
    c["count-huge.vec"] = zstd(chunk(["a"], f32(1, 2), 2, count=0xFFFFFFFF))
    c["payload-short.vec"] = zstd(chunk(["a", "b"], f32(1, 2, 3), 2))
    c["payload-len-lies.vec"] = zstd(chunk(["a"], f32(1, 2), 2, payload_len=4))
    c["dim-huge.vec"] = zstd(chunk(["a"], f32(1, 2), 0xFFFFFFFF))
    ids_overflow = bytearray(chunk(["a", "b"], f32(1, 2, 3, 4), 2))
    ids_overflow[64:68] = struct.pack("<I", 0xFFFFFFFF)
    c["id-length-overflow.vec"] = zstd(bytes(ids_overflow))
    ids_past = bytearray(chunk(["a", "b"], f32(1, 2, 3, 4), 2))
    ids_past[68:72] = struct.pack("<I", 200)
    c["id-length-past-section.vec"] = zstd(bytes(ids_past))
    c["ids-len-huge.vec"] = zstd(chunk(["a"], f32(1, 2), 2, ids_len=1 << 40))
    c["extension-len-huge.vec"] = zstd(chunk(["a"], f32(1, 2), 2, ext_len=0xFFFFFFF0))
    c["frame-holds-two-chunks.vec"] = zstd(good_f32() + good_f32())
    # --- content
    c["bad-utf8-id.vec"] = zstd(chunk([b"ok", b"\xff\xfe"], f32(1, 2, 3, 4), 2))
    c["overlong-utf8-id.vec"] = zstd(chunk([b"\xc0\xaf"], f32(1, 2), 2))
    c["extension-bad-json.vec"] = zstd(chunk(["a"], f32(1, 2), 2, ext=b"{\"model\": "))
    c["extension-not-object.vec"] = zstd(chunk(["a"], f32(1, 2), 2, ext=[1, 2]))
    c["extension-deep-nesting.vec"] = zstd(chunk(["a"], f32(1, 2), 2, ext=b"[" * 100000 + b"]" * 100000))
    c["nan-f32.vec"] = zstd(chunk(["a", "b"], f32(1, 2, 3, float("nan")), 2))
    c["inf-f32.vec"] = zstd(chunk(["a"], f32(float("inf"), 0), 2))
    c["neg-inf-f32-raw.vec"] = chunk(["a"], f32(0, float("-inf")), 2)
    c["nan-f16.vec"] = zstd(chunk(["a"], f16(1, float("nan")), 2, dtype=F16))
    c["inf-f16.vec"] = zstd(chunk(["a"], f16(float("inf"), 1), 2, dtype=F16))
    c["nan-second-chunk.vec"] = good + zstd(chunk(["c"], f32(float("nan"), 1), 2))
    c["int8-no-calibration.vec"] = zstd(chunk(["q"], bytes(2), 2, dtype=INT8))
    c["int8-calibration-wrong-length.vec"] = zstd(int8_chunk([0], [0.1]))
    c["int8-calibration-inf-start.vec"] = zstd(int8_chunk([0, 1e39], [0.1, 0.1]).replace(b"1e+39", b"1e999"))
    c["int8-calibration-inf-step.vec"] = zstd(int8_chunk([0, 0], [0.1, 1e39]))
    c["int8-calibration-negative-step.vec"] = zstd(int8_chunk([0, 0], [0.1, -0.5]))
    c["int8-calibration-overflows.vec"] = zstd(int8_chunk([3e38, 0], [1e37, 0.1]))
    c["int8-calibration-not-numbers.vec"] = zstd(int8_chunk(["a", "b"], [0.1, 0.1]))
    # --- changes between chunks
    c["dim-change.vec"] = good + zstd(good_f32(("c",), dim=3))
    c["dtype-change.vec"] = good + zstd(chunk(["c"], f16(1, 2), 2, dtype=F16))
    c["normalization-change.vec"] = good + zstd(chunk(["c"], f32(1, 0), 2, flags=1))
    digest = lambda d: {"model": {"id": "m", "digest": d}}
    c["digest-change.vec"] = zstd(chunk(["a"], f32(1, 0), 2, ext=digest("sha256:1"))) + zstd(chunk(["b"], f32(0, 1), 2, ext=digest("sha256:2")))
    c["vectors-then-tokens.vec"] = good + zstd(chunk(["t"], tokens([1, 2]), 0, dtype=U32, kind=2))

    # --- token streams (ru-embed and ru-tok --decode sniff them)
    c["tok-lengths-past-payload.tok"] = zstd(chunk(["a"], struct.pack("<II", 5, 1), 0, dtype=U32, kind=2))
    c["tok-lengths-overflow.tok"] = zstd(chunk(["a", "b"], struct.pack("<IIII", 0xFFFFFFFF, 1, 7, 7), 0, dtype=U32, kind=2))
    c["tok-payload-unaligned.tok"] = zstd(chunk(["a"], struct.pack("<I", 1) + b"\x01\x02\x03", 0, dtype=U32, kind=2))
    c["tok-nonzero-dim.tok"] = zstd(chunk(["a"], tokens([1]), 3, dtype=U32, kind=2))
    c["tok-f32-dtype.tok"] = zstd(chunk(["a"], tokens([1]), 0, dtype=F32, kind=2))
    c["tok-bad-utf8-id.tok"] = zstd(chunk([b"\xe2\x82"], tokens([1, 2]), 0, dtype=U32, kind=2))
    c["tok-skippable-then-truncated.tok"] = skippable(b"x" * 8) + zstd(chunk(["a"], tokens([1]), 0, dtype=U32, kind=2))[:20]
    c["tok-skippable-then-text.tok"] = skippable(b"") + "Привет, мир!\n".encode()
    c["tok-raw-truncated.tok"] = chunk(["a"], tokens([1, 2, 3]), 0, dtype=U32, kind=2)[:70]
    c["tok-raw-magic-only.tok"] = MAGIC[:5]
    c["tok-then-vectors.tok"] = zstd(chunk(["a"], tokens([1]), 0, dtype=U32, kind=2)) + good
    c["tok-bomb.tok"] = skippable(b"") + zstd(bomb)

    # --- import inputs
    c["nan.jsonl"] = b'{"id": "a", "vector": [1, 2]}\n{"id": "b", "vector": [1e39, 2]}\n'
    c["not-finite-literal.jsonl"] = b'{"id": "a", "vector": [NaN, 2]}\n'
    c["nan.tsv"] = b"a\t1\t2\nb\tnan\t2\n"
    c["inf.tsv"] = b"a\t1\tinf\n"
    c["overflow.tsv"] = b"a\t1\t1e39\n"
    c["dim-change.tsv"] = b"a\t1\t2\nb\t1\t2\t3\n"
    c["bad-utf8-id.tsv"] = b"\xff\t1\t2\n"
    c["nan.npy"] = npy("(2, 2)", f32(1, 2, float("nan"), 4))
    c["inf-f8.npy"] = npy("(1, 2)", struct.pack("<2d", 1e300, 1), descr="<f8")
    c["inf-f2.npy"] = npy("(1, 2)", f16(float("inf"), 1), descr="<f2")
    c["shape-negative.npy"] = npy("(-3, 2)", f32(1, 2))
    c["shape-overflow.npy"] = npy("(4611686018427387904, 4611686018427387904)", f32(1, 2))
    c["shape-bytes-overflow.npy"] = npy("(2305843009213693952, 2)", f32(1, 2))
    c["fortran-bytes-overflow.npy"] = npy("(2305843009213693952, 2)", f32(1, 2), fortran=True)
    c["declares-17M-columns.npy"] = npy("(1, 17000000)", f32(1, 2, 3))
    c["shape-not-integers.npy"] = npy("(2, x)", f32(1, 2))
    c["truncated-data.npy"] = npy("(4, 2)", f32(1, 2, 3))
    c["trailing-data.npy"] = npy("(1, 2)", f32(1, 2, 3))
    c["nan.fvecs"] = struct.pack("<i", 2) + f32(1, 2) + struct.pack("<i", 2) + f32(float("nan"), 1)
    c["inf.fvecs"] = struct.pack("<i", 1) + f32(float("-inf"))
    c["negative-dim.fvecs"] = struct.pack("<i", -5) + f32(1)
    c["huge-dim.fvecs"] = struct.pack("<i", 0x7FFFFFFF) + f32(1)
    c["truncated.fvecs"] = struct.pack("<i", 4) + f32(1, 2)
    return c


def main():
    if shutil.which("zstd") is None:
        sys.exit("make-hostile-streams: needs the zstd command line (apt-get install zstd)")
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    total = 0
    for name, data in sorted(cases().items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"{len(cases())} files, {total} bytes in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
