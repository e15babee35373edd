#!/usr/bin/env python3
"""Writes broken model folders for ru-embed's tests: each is a case an attacker (or a bad
upload) could publish, and each must give exit status 2 and one line on stderr naming the
file at fault — never a trap, an over-read, NaN vectors or an allocation the files do not
justify (issue 11).

Every case is a folder under Tests/RuEmbedTests/Fixtures/hostile/models/ holding only what
differs from the good fixture model deberta-abs (made by make-model-fixtures.py); the other
files are relative symbolic links to it, so the corpus stays small. A broken safetensors
file is written as a few bytes of its own (the loader refuses it before it needs tensors).
cases.json lists every case: the tools to run on it, the input (given as a file named
input.txt), and the file the message must name. HostileModelTests.swift runs them.

    python3 scripts/make-hostile-models.py     # stdlib only
"""
import json
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "RuEmbedTests", "Fixtures")
GOOD = os.path.join(ROOT, "models", "deberta-abs")
OUT = os.path.join(ROOT, "hostile", "models")

cases = []


def load(name):
    with open(os.path.join(GOOD, name), encoding="utf-8") as f:
        return json.load(f)


def case(name, files, tools=("ru-embed", "ru-tok"), names=None, stdin="привет\n", args=(), drop=(),
         expect=None, forbid=None, base="deberta-abs"):
    """A folder with `files` (name → bytes, str or JSON value) written, `drop` left out and
    everything else linked to `base`. `names`: what the one stderr line must contain;
    `expect`: more it must contain (the specific refusal)."""
    folder = os.path.join(OUT, name)
    os.makedirs(folder)
    link_base = os.path.join("..", "..", "..", "models", base)
    for f in sorted(os.listdir(os.path.join(ROOT, "models", base))):
        if f == "expected.json":
            continue
        # A file written here (or inside a folder written here) is never a link: writing
        # through a link would change the good fixture.
        if f in drop or any(w == f or w.startswith(f + "/") for w in files):
            continue
        os.symlink(os.path.join(link_base, f), os.path.join(folder, f))
    for f, content in files.items():
        path = os.path.join(folder, f)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, bytes):
            data = content
        elif isinstance(content, str):
            data = content.encode()
        else:
            data = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
        with open(path, "wb") as out:
            out.write(data)
    entry = {"name": name, "tools": list(tools), "names": names, "stdin": stdin, "args": list(args)}
    if expect:
        entry["expect"] = expect
    if forbid:
        entry["forbid"] = forbid
    cases.append(entry)


def safetensors(header, data=b"\0" * 16, length=None):
    """A safetensors file: u64 header length, the JSON header, the data."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def config(**changes):
    """config.json with `changes` spliced in as raw JSON text (1e999 is no Python float)."""
    c = load("config.json")
    for key, raw in changes.items():
        c.pop(key, None)
    body = json.dumps(c, indent=1)[:-2]
    body += "".join(f',\n "{key}": {raw}' for key, raw in changes.items()) + "\n}"
    return body


def tiny_tokenizer(**changes):
    """A tokenizer.json of a few tokens (WordPiece, BERT template), with changes."""
    t = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [
            {"id": 0, "content": "[PAD]", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
            {"id": 1, "content": "[CLS]", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
            {"id": 2, "content": "[SEP]", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
            {"id": 3, "content": "[UNK]", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
        "decoder": None,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "при": 4, "##вет": 5}},
    }
    t.update(changes)
    return t


def added(token_id, content="zzz"):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": False}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    embed = ("ru-embed",)

    # Item 4 and 10: safetensors headers. Each file is a few bytes: refused while mapping.
    f32 = lambda shape, offsets: {"t": {"dtype": "F32", "shape": shape, "data_offsets": offsets}}
    st = "model.safetensors"
    case("st-header-length-2p63", {st: safetensors({}, length=1 << 63)}, embed, st, expect="header length")
    case("st-header-length-max", {st: safetensors({}, length=(1 << 64) - 1)}, embed, st, expect="header length")
    case("st-header-past-end", {st: safetensors(f32([4], [0, 16]), length=4096)}, embed, st, expect="header length")
    case("st-header-not-json", {st: safetensors(b"{\"t\": [")}, embed, st, expect="not valid JSON")
    offsets = "data_offsets"
    case("st-offsets-1e30", {st: safetensors(b'{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1e30]}}')}, embed, st, expect=offsets)
    case("st-offsets-negative", {st: safetensors(f32([4], [-16, 0]))}, embed, st, expect=offsets)
    case("st-offsets-reversed", {st: safetensors(f32([0], [16, 0]))}, embed, st, expect=offsets)
    case("st-offsets-past-data", {st: safetensors(f32([8], [0, 32]))}, embed, st, expect=offsets)
    case("st-offsets-wrong-size", {st: safetensors(f32([2], [0, 16]))}, embed, st, expect=offsets)
    notint = "is not an integer"
    case("st-shape-1e19", {st: safetensors(b'{"t": {"dtype": "F32", "shape": [1e19, 64], "data_offsets": [0, 16]}}')}, embed, st, expect=notint)
    case("st-shape-overflow", {st: safetensors(f32([1 << 32, 1 << 32, 4], [0, 16]))}, embed, st, expect="more elements")
    case("st-shape-bytes-overflow", {st: safetensors(f32([1 << 62], [0, 16]))}, embed, st, expect="more bytes")
    case("st-shape-fraction", {st: safetensors(f32([2.5, 1.6], [0, 16]))}, embed, st, expect=notint)
    case("st-shape-negative", {st: safetensors(f32([-4, -1], [0, 16]))}, embed, st, expect=notint)
    case("st-shape-string", {st: safetensors(f32(["4"], [0, 16]))}, embed, st, expect=notint)
    case("st-overlap", {st: safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})}, embed, st, expect="overlap")
    case("st-dtype-unknown", {st: safetensors({"t": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})}, embed, st, expect="F64")
    case("st-too-short", {st: b"\x10\0\0"}, embed, st, expect="too short")

    # Whole models whose one defect used to be accepted: the second shard of deberta-rel
    # with its header changed (the data as it was). A fractional dimension (64.4) was read
    # as 64; a tensor sharing bytes with another loaded as that other tensor.
    shard = "model-00002-of-00002.safetensors"
    with open(os.path.join(ROOT, "models", "deberta-rel", shard), "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    weights = data[8 + n:]
    norm = "deberta.encoder.layer.1.output.LayerNorm."
    fraction = json.loads(json.dumps(header))
    fraction[norm + "bias"]["shape"] = [fraction[norm + "bias"]["shape"][0] + 0.4]
    case("st-shard-shape-fraction", {shard: safetensors(fraction, weights)}, embed, shard, base="deberta-rel", expect=notint)
    overlap = json.loads(json.dumps(header))
    overlap[norm + "bias"]["data_offsets"] = overlap[norm + "weight"]["data_offsets"]
    case("st-shard-overlap", {shard: safetensors(overlap, weights)}, embed, shard, base="deberta-rel", expect="overlap")

    # Item 4 and 6: config.json numbers. Each must be refused naming config.json.
    cj = "config.json"
    for name, key, raw in [
        ("cfg-heads-0", "num_attention_heads", "0"),
        ("cfg-heads-not-divisor", "num_attention_heads", "5"),
        ("cfg-layers-negative", "num_hidden_layers", "-1"),
        ("cfg-layers-1e30", "num_hidden_layers", "1e30"),
        ("cfg-hidden-1e999", "hidden_size", "1e999"),
        ("cfg-hidden-fraction", "hidden_size", "64.5"),
        ("cfg-hidden-string", "hidden_size", '"64"'),
        ("cfg-vocab-1e19", "vocab_size", "1e19"),
        ("cfg-intermediate-negative", "intermediate_size", "-128"),
        ("cfg-positions-0", "max_position_embeddings", "0"),
        ("cfg-eps-negative", "layer_norm_eps", "-1"),
        ("cfg-eps-zero", "layer_norm_eps", "0"),
        ("cfg-eps-huge", "layer_norm_eps", "1e300"),
        ("cfg-relative-bool", "relative_attention", '"yes"'),
        ("cfg-pos-att-number", "pos_att_type", '["c2p", 1]'),
        ("cfg-pos-att-object", "pos_att_type", '{"c2p": true}'),
    ]:
        case(name, {cj: config(**{key: raw})}, embed, cj)
    # Sizes the weights do not back: refused naming the weights, before anything is allocated.
    case("cfg-hidden-unbacked", {cj: config(hidden_size="65536", num_attention_heads="4")}, embed, st)
    case("cfg-vocab-unbacked", {cj: config(vocab_size="800")}, embed, st)

    # sentence_bert_config.json max_seq_length: bad data in a file (exit 2) in both tools.
    sb = "sentence_bert_config.json"
    for name, raw in [("sbert-max-1e30", "1e30"), ("sbert-max-negative", "-3"), ("sbert-max-fraction", "6.5"),
                      ("sbert-max-1", "1"), ("sbert-max-string", '"512"')]:
        case(name, {sb: '{"max_seq_length": %s, "do_lower_case": false}' % raw}, names=sb)

    # config_sentence_transformers.json: prompts and the default prompt.
    cst = "config_sentence_transformers.json"
    case("prompt-default-missing", {cst: {"prompts": {"query": "query: "}, "default_prompt_name": "nope"}}, names=cst)
    case("prompt-default-number", {cst: {"prompts": {"query": "query: "}, "default_prompt_name": 1}}, names=cst)
    case("prompts-not-object", {cst: {"prompts": ["query: "], "default_prompt_name": None}}, names=cst)
    case("prompt-not-string", {cst: {"prompts": {"query": 7}}}, names=cst)

    # The Pooling module's config and modules.json: values of the wrong kind.
    pc = "1_Pooling/config.json"
    case("pooling-include-prompt-string", {pc: {"embedding_dimension": 64, "pooling_mode": "mean", "include_prompt": "no"}}, embed, pc)
    case("pooling-mode-number", {pc: {"embedding_dimension": 64, "pooling_mode": ["mean", 1]}}, embed, pc)
    case("pooling-2x-flag-string", {pc: {"word_embedding_dimension": 64, "pooling_mode_mean_tokens": "true"}}, embed, pc)
    modules = load("modules.json")
    modules[1]["path"] = 1
    case("modules-path-number", {"modules.json": modules}, embed, "modules.json")

    # tokenizer_config.json model_max_length (read when nothing else sets a length).
    tc = "tokenizer_config.json"
    case("tokcfg-max-negative", {tc: {"model_max_length": -5}}, names=tc, drop=(sb,))
    case("tokcfg-max-fraction", {tc: {"model_max_length": 100.5}}, names=tc, drop=(sb,))

    # tokenizer.json: ids that would make the token table gigabytes, ids past u32, lengths.
    tj = "tokenizer.json"
    t = tiny_tokenizer()
    case("tok-added-id-2p40", {tj: tiny_tokenizer(added_tokens=t["added_tokens"] + [added(1 << 40)])}, names=tj)
    case("tok-added-id-4e9", {tj: tiny_tokenizer(added_tokens=t["added_tokens"] + [added(4_000_000_000)])}, names=tj)
    case("tok-added-id-negative", {tj: tiny_tokenizer(added_tokens=t["added_tokens"] + [added(-1)])}, names=tj)
    case("tok-added-id-fraction", {tj: tiny_tokenizer(added_tokens=t["added_tokens"] + [added(6.5)])}, names=tj)
    vocab = dict(t["model"]["vocab"], big=3_999_999_999)
    case("tok-vocab-id-4e9-1", {tj: tiny_tokenizer(model=dict(t["model"], vocab=vocab))}, names=tj)
    case("tok-processor-id-1e30", {tj: tiny_tokenizer(post_processor={"type": "BertProcessing", "sep": ["[SEP]", 1e30], "cls": ["[CLS]", 1]})}, names=tj)
    case("tok-template-id-negative", {tj: tiny_tokenizer(post_processor={
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [-1], "tokens": ["[CLS]"]}}})}, names=tj)
    case("tok-truncation-0", {tj: tiny_tokenizer(truncation={"direction": "Right", "max_length": 0, "strategy": "LongestFirst", "stride": 0})},
         names=tj, drop=(sb,))
    case("tok-wordpiece-chars-1e30", {tj: tiny_tokenizer(model=dict(t["model"], max_input_chars_per_word=1e30))}, names=tj)

    # Item 1: no tokens to pool. A tokenizer without a post-processor and an empty line
    # without a prompt: zero tokens, in every pooling mode, is an error naming the record.
    bare = load(tj)
    bare["post_processor"] = None
    for mode in ["cls", "max", "mean", "lasttoken"]:
        pooling = {"embedding_dimension": 64, "pooling_mode": mode, "include_prompt": True}
        case(f"pool-{mode}-empty-record", {tj: bare, "1_Pooling/config.json": pooling}, embed, "input.txt: line 2",
             stdin="привет\n\n", args=["--no-prompt"])

    # Item 10: an id from the folder's own tokenizer outside config.json's vocab_size. The
    # message must not blame a token stream ("another tokenizer") for text input.
    oov = load(tj)
    oov["added_tokens"].append(added(750, "зззз"))
    case("tok-id-outside-model", {tj: oov}, embed, "input.txt: line 1", stdin="зззз\n",
         expect="does not fit its config.json vocab_size", forbid="another tokenizer")

    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases in {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
