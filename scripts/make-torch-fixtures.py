#!/usr/bin/env python3
"""Builds the PyTorch-checkpoint fixtures of ru-embed's tests (TorchCheckpointTests).

ru-embed reads `pytorch_model.bin` (torch.save's zip container, torch >= 1.6) only through a
restricted reader: stored zip entries, and a pickle interpreter that knows the handful of
opcodes and globals a state dict of float tensors needs and refuses everything else by name.
These fixtures are real torch.save output and hostile copies of it:

  state.bin        torch.save of an nn.Module's state_dict (OrderedDict with `_metadata`,
                   as Module.state_dict() returns it): f32, f16 and bf16 tensors, a tensor
                   that is a view at an offset into a shared storage, a 0-d tensor, an empty
                   one. state.json holds their shapes and values.
  labse-dense/     the Dense(48->32, Tanh) head of Fixtures/models/bert-labse saved the way
                   sentence-transformers 2.x's Dense.save did (torch.save(self.state_dict(),
                   "pytorch_model.bin")), and expected.json: sentence-transformers' encode of
                   the bert-labse texts with that folder whose Dense has only the .bin.
  hostile/*.bin    each broken in one way; cases.json maps file -> a phrase the error must
                   contain. Pickles are written byte by byte here (never by pickling objects,
                   and never unpickled): e.g. one that calls os.system.

    python3 scripts/make-torch-fixtures.py   # after make-family-fixtures.py

Made with torch 2.13, sentence-transformers 6.2.
"""
import io
import json
import os
import shutil
import struct
import tempfile
import zipfile

import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from sentence_transformers import models as st_models

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "RuEmbedTests", "Fixtures", "torch")
LABSE = os.path.join(HERE, "..", "Tests", "RuEmbedTests", "Fixtures", "models", "bert-labse")


class Holder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.linear = torch.nn.Linear(3, 2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(2, 3, generator=g))
            self.linear.bias.copy_(torch.randn(2, generator=g))
        self.register_buffer("f16", torch.randn(2, 2, generator=g).half())
        self.register_buffer("b16", torch.randn(3, generator=g).bfloat16())
        self.register_buffer("scalar", torch.tensor(1.5))
        self.register_buffer("empty", torch.zeros(0, 4))
        base = torch.randn(10, generator=g)
        # Two views of one storage: torch.save writes the storage once; the second view starts
        # at element 4 (storage_offset 4), so offsets are exercised.
        self.register_buffer("view_a", base[0:4].view(2, 2))
        self.register_buffer("view_b", base[4:10].view(3, 2))


def write_state():
    m = Holder()
    sd = m.state_dict()
    torch.save(sd, os.path.join(OUT, "state.bin"))
    # The views really do share a storage in the file.
    assert sd["view_b"].storage_offset() == 4 and sd["view_a"].untyped_storage().data_ptr() == sd["view_b"].untyped_storage().data_ptr()
    desc = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                "values": [float(x) for x in v.float().flatten().tolist()]} for k, v in sd.items()}
    with open(os.path.join(OUT, "state.json"), "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")
    # A transposed tensor keeps its storage and gets strides (1, 2): not row-major.
    torch.save({"t": torch.arange(6, dtype=torch.float32).view(2, 3).t()}, os.path.join(OUT, "hostile", "transposed.bin"))
    return os.path.join(OUT, "state.bin")


def write_labse_dense():
    folder = os.path.join(OUT, "labse-dense")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    weights = load_file(os.path.join(LABSE, "2_Dense", "model.safetensors"))
    head = st_models.Dense(48, 32, bias=True, activation_function=torch.nn.Tanh())
    head.linear.weight.data.copy_(weights["linear.weight"])
    head.linear.bias.data.copy_(weights["linear.bias"])
    # sentence-transformers 2.x Dense.save: torch.save(self.state_dict(), <dir>/pytorch_model.bin).
    torch.save(head.state_dict(), os.path.join(folder, "pytorch_model.bin"))
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "bert-labse-bin")
        shutil.copytree(LABSE, model)
        os.remove(os.path.join(model, "2_Dense", "model.safetensors"))
        shutil.copy(os.path.join(folder, "pytorch_model.bin"), os.path.join(model, "2_Dense"))
        st = SentenceTransformer(model).eval()
        texts = json.load(open(os.path.join(LABSE, "expected.json")))["texts"]
        out = {"texts": texts}
        for key, norm in (("vectors", True), ("raw", False)):
            v = st.encode(texts, normalize_embeddings=norm, convert_to_numpy=True, batch_size=3, prompt="")
            out[key] = [[float(x) for x in row] for row in v]
    # The same weights as bert-labse's safetensors head: sentence-transformers did read the .bin.
    labse = json.load(open(os.path.join(LABSE, "expected.json")))["vectors"]["none"]
    assert max(abs(a - b) for r, s in zip(out["vectors"], labse) for a, b in zip(r, s)) < 1e-6
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


# --- hostile copies ----------------------------------------------------------------------

def zip_bytes(entries, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compress)
    return buf.getvalue()


def pickle_archive(pkl, data=None, byteorder=b"little"):
    entries = [("archive/data.pkl", pkl), ("archive/byteorder", byteorder), ("archive/version", b"3\n")]
    for key, blob in (data or {"0": struct.pack("<4f", 1, 2, 3, 4)}).items():
        entries.append(("archive/data/" + key, blob))
    return zip_bytes(entries)


def u(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def k(n):
    return b"K" + bytes([n])


def tensor_pickle(size=b"K\x02K\x02\x86", stride=b"K\x02K\x01\x86", offset=k(0), numel=k(4), storage="FloatStorage"):
    """{"w": _rebuild_tensor_v2(persistent storage "0", offset, size, stride, False, OrderedDict())}"""
    od = glob("collections", "OrderedDict") + b")R"
    pid = b"(" + u("storage") + glob("torch", storage) + u("0") + u("cpu") + numel + b"tQ"
    t = glob("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + offset + size + stride + b"\x89" + od + b"tR"
    return b"\x80\x02" + od + b"(" + u("w") + t + b"u."


def write_hostile(state_path):
    h = os.path.join(OUT, "hostile")
    real = open(state_path, "rb").read()
    cases = {}

    def put(name, data, phrase):
        with open(os.path.join(h, name), "wb") as f:
            f.write(data)
        cases[name] = phrase

    # The hand-made pickle is well formed: it must load, else the hostile variants prove nothing.
    put("good-handmade.bin", pickle_archive(tensor_pickle()), "")
    assert torch.load(os.path.join(h, "good-handmade.bin"), weights_only=True)["w"].tolist() == [[1, 2], [3, 4]]

    # Container.
    put("truncated.bin", real[: len(real) // 2], "no zip end of central directory")
    put("legacy-not-zip.bin", b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\0" * 64, "end of central directory")
    cd = real.rfind(b"PK\x01\x02")
    put("bad-central-directory.bin", real[:cd] + b"PK\x01\x03" + real[cd + 4:], "central directory record")
    # The entry data/0: its sizes (central directory, compressed and uncompressed) made huge.
    name = b"state/data/0"
    at = real.find(name, real.find(b"PK\x01\x02"))
    hdr = at - 46
    assert real[hdr:hdr + 4] == b"PK\x01\x02"
    past = bytearray(real)
    past[hdr + 20:hdr + 28] = struct.pack("<II", 0x7FFFFF00, 0x7FFFFF00)
    put("entry-past-end.bin", bytes(past), "run past the end of the file")
    off = bytearray(real)
    off[hdr + 42:hdr + 46] = struct.pack("<I", 0x7FFFFF00)
    put("entry-offset-past-end.bin", bytes(off), "local header at 2147483392 is past the end")
    put("compressed.bin", zip_bytes([("archive/data.pkl", tensor_pickle()), ("archive/data/0", b"\0" * 16)],
                                    zipfile.ZIP_DEFLATED), "is compressed (method 8)")
    # Counts: an end record claiming 65535 entries in a 46-byte directory.
    eocd = bytearray(pickle_archive(tensor_pickle()))
    e = eocd.rfind(b"PK\x05\x06")
    eocd[e + 8:e + 12] = struct.pack("<HH", 0xFFFE, 0xFFFE)
    put("huge-count.bin", bytes(eocd), "claims 65534 entries")
    put("big-endian.bin", pickle_archive(tensor_pickle(), byteorder=b"big"), "only little-endian")
    put("no-data-pkl.bin", zip_bytes([("archive/data/0", b"\0" * 16)]), "no <name>/data.pkl")

    # Pickle.
    put("global-os-system.bin", pickle_archive(b"\x80\x02" + glob("os", "system") + u("touch /tmp/pwned") + b"\x85R."),
        "refuses the global os.system")
    put("global-builtins-eval.bin",
        pickle_archive(b"\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00" + b"\x8c\x08builtins\x8c\x04eval\x93"
                       + u("1") + b"\x85R."), "refuses the global builtins.eval")
    put("global-long-storage.bin", pickle_archive(tensor_pickle(storage="LongStorage")), "refuses the global torch.LongStorage")
    put("opcode-inst.bin", pickle_archive(b"\x80\x02(ios\nsystem\n."), "opcode 0x69 INST")
    put("opcode-unknown.bin", pickle_archive(b"\x80\x02\xff."), "opcode 0xff")
    put("memo-out-of-range.bin", pickle_archive(b"\x80\x02}q\x00h\x07."), "memo index 7 was never set")
    put("stack-underflow.bin", pickle_archive(b"\x80\x02R."), "stack underflow")
    put("setitems-no-mark.bin", pickle_archive(b"\x80\x02}" + u("a") + u("b") + b"u."), "needs a MARK")
    put("deep-nesting.bin", pickle_archive(b"\x80\x02)" + b"\x85" * 3000 + b"."), "nest more than 64 deep")
    put("no-stop.bin", pickle_archive(b"\x80\x02}"), "ends without STOP")
    put("not-a-dict.bin", pickle_archive(b"\x80\x02K\x05."), "holds an int, not a dict of tensors")
    put("shape-overflow.bin", pickle_archive(tensor_pickle(
        size=b"\x8a\x08" + struct.pack("<q", 1 << 62) + b"\x8a\x08" + struct.pack("<q", 1 << 62) + b"\x86",
        stride=k(1) + k(1) + b"\x86")), "element count overflows")
    put("shape-negative.bin", pickle_archive(tensor_pickle(size=b"J\xff\xff\xff\xffK\x02\x86")), "negative dimension")
    put("storage-short.bin", pickle_archive(tensor_pickle(size=b"K\x04K\x04\x86", stride=b"K\x04K\x01\x86",
                                                          numel=k(16))), "needs more bytes than archive/data/0 has (16)")
    put("offset-past-storage.bin", pickle_archive(tensor_pickle(offset=k(3))), "runs past its storage of 4 elements")
    put("strided.bin", pickle_archive(tensor_pickle(stride=b"K\x01K\x02\x86")), "not contiguous row-major")
    cases["transposed.bin"] = "size [3, 2] with stride [1, 3] is not contiguous"
    put("missing-storage.bin", pickle_archive(tensor_pickle(), data={"7": b"\0" * 16}), "archive/data/0, which the archive lacks")
    put("string-past-end.bin", pickle_archive(b"\x80\x02X\xff\xff\xff\x7fab"), "runs past the end of the pickle")
    with open(os.path.join(h, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    shutil.rmtree(os.path.join(OUT, "hostile"), ignore_errors=True)
    os.makedirs(os.path.join(OUT, "hostile"))
    state = write_state()
    write_labse_dense()
    write_hostile(state)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
