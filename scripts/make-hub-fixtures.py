#!/usr/bin/env python3
"""Writes the fixtures of the hub download tests (Tests/RuEmbedTests/HubTests.swift):

  Tests/RuEmbedTests/Fixtures/hub/repo/            a tiny sentence-transformers model folder
                                                  (deterministic: same bytes on every run)
  Tests/RuEmbedTests/Fixtures/hub/python-cache.json
                                                  the cache tree huggingface_hub makes of it

The second is what the tests hold our cache to: the script serves the folder with
scripts/hub-server.py on 127.0.0.1, runs `huggingface_hub.snapshot_download` against it
(HF_ENDPOINT pointing there, a fresh HF_HUB_CACHE) for revision main and then v1.0, and
records every entry of the cache: path, kind, symlink target, size and sha256 of files, the
text of refs.

    pip install huggingface_hub   # comes with transformers
    python3 scripts/make-hub-fixtures.py
"""
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "RuEmbedTests", "Fixtures", "hub")
REPO = os.path.join(OUT, "repo")
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def write(rel, data):
    path = os.path.join(REPO, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def dumps(value):
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def safetensors(rng):
    """A proper safetensors file of a few KB: header length, JSON header, random F32 data."""
    tensors = [("embeddings.word_embeddings.weight", [16, 32]), ("pooler.dense.bias", [32]),
               ("encoder.layer.0.output.dense.weight", [8, 32])]
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, shape in tensors:
        n = 4
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        blobs.append(rng.randbytes(n))
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def make_repo():
    shutil.rmtree(REPO, ignore_errors=True)
    rng = random.Random(20261129)
    with open(os.path.join(ROOT, "Tests", "RuEmbedTests", "Fixtures", "tokenizers", "bert-uncased.json"), "rb") as f:
        write("tokenizer.json", f.read())
    write("config.json", dumps({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
        "vocab_size": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "torch_dtype": "float32"}))
    write("tokenizer_config.json", dumps({
        "do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer",
        "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"}))
    write("special_tokens_map.json", dumps({
        "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"}))
    write("modules.json", dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    write("sentence_bert_config.json", dumps({"max_seq_length": 64, "do_lower_case": False}))
    write("config_sentence_transformers.json", dumps({
        "__version__": {"sentence_transformers": "3.0.1"},
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
        "similarity_fn_name": "cosine"}))
    write("1_Pooling/config.json", dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_embedding": False}))
    write("model.safetensors", safetensors(rng))
    # Files a model download skips: the model card and other formats' weights.
    write("README.md", "---\nlibrary_name: sentence-transformers\n---\n# tiny\n\nA fake model for tests.\n")
    write("onnx/model.onnx", rng.randbytes(300))


def record(cache):
    entries = []
    for root, dirs, files in os.walk(cache):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, cache)
            if os.path.islink(full):
                entries.append({"path": rel, "kind": "symlink", "target": os.readlink(full)})
            elif os.path.isdir(full):
                entries.append({"path": rel, "kind": "dir"})
            else:
                with open(full, "rb") as f:
                    data = f.read()
                e = {"path": rel, "kind": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                if "/refs/" in "/" + rel:
                    e["text"] = data.decode()
                entries.append(e)
    entries.sort(key=lambda e: e["path"])
    return entries


def main():
    make_repo()
    import importlib
    hub_server = importlib.import_module("hub-server")
    hub_url, _, state = hub_server.start(REPO)
    cache = tempfile.mkdtemp(prefix="hub-fixture-")
    env = dict(os.environ, HF_ENDPOINT=hub_url, HF_HUB_CACHE=cache, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_OFFLINE="0", HF_HOME=os.path.join(cache, "home"))
    env.pop("HF_TOKEN", None)
    code = (
        "import huggingface_hub as h, sys\n"
        "for rev in ('main', 'v1.0'):\n"
        "    print(h.snapshot_download('test/tiny', revision=rev))\n"
        "print(h.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    version = out.strip().splitlines()[-1]
    shutil.rmtree(os.path.join(cache, "home"), ignore_errors=True)
    fixture = {
        "generator": "scripts/make-hub-fixtures.py",
        "huggingface_hub": version,
        "repo": "test/tiny",
        "commit": state.repo.commit,
        "revisions": ["main", "v1.0"],
        "entries": record(cache),
    }
    with open(os.path.join(OUT, "python-cache.json"), "w") as f:
        f.write(json.dumps(fixture, indent=1) + "\n")
    shutil.rmtree(cache)
    print(f"wrote {os.path.relpath(OUT, ROOT)}: repo/ ({len(state.repo.files)} files), "
          f"python-cache.json ({len(fixture['entries'])} entries, huggingface_hub {version})")


if __name__ == "__main__":
    main()
