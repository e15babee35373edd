#!/usr/bin/env python3
"""Reference vectors for `ru-embed --split TOKENS[:OVERLAP]` (issue 13, long documents).

Writes Tests/RuEmbedTests/Fixtures/split/expected.json from the deberta-abs fixture model
(scripts/make-model-fixtures.py) with sentence-transformers, cutting each text into windows
the way docs/EMBED.md describes:

  * prompt + text is tokenized whole by the model's own tokenizer, special tokens added,
    no truncation;
  * content tokens are those the post-processor did not add (special_tokens_mask 0) and that
    do not lie wholly inside the prompt (offset end <= len(prompt));
  * windows of at most TOKENS content tokens, each starting TOKENS - OVERLAP after the last,
    the last one ending at the last content token;
  * each window is leading special tokens + prompt tokens + window tokens + trailing special
    tokens, run through the SentenceTransformer's modules (Transformer, Pooling) as token ids,
    then L2-normalised.

Made with transformers 5.24, sentence-transformers 6.2, torch 2.13.
"""
import json
import os

import torch
from sentence_transformers import SentenceTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "Tests/RuEmbedTests/Fixtures/models/deberta-abs")
OUT = os.path.join(ROOT, "Tests/RuEmbedTests/Fixtures/split")

LONG = ("Договор аренды заключён на один год. Арендатор платит каждый месяц до пятого числа, "
        "а арендодатель отвечает за ремонт крыши и труб. Если платёж опоздал больше чем на десять дней, "
        "начисляется пеня. Стороны могут продлить договор, предупредив друг друга за месяц. "
        "Споры решаются в суде по месту нахождения квартиры.")
SHORT = "Короткий абзац."
TEXTS = [LONG, SHORT, ""]
# (tokens, overlap, prompt name or None)
CASES = [(16, 4, "query"), (40, 0, None), (12, 11, "passage")]


def windows(tokenizer, prompt, text, tokens, overlap):
    enc = tokenizer(prompt + text, add_special_tokens=True, truncation=False,
                    return_offsets_mapping=True, return_special_tokens_mask=True)
    ids, mask, offsets = enc["input_ids"], enc["special_tokens_mask"], enc["offset_mapping"]
    lead = 0
    while lead < len(ids) and mask[lead]:
        lead += 1
    trail = len(ids)
    while trail > lead and mask[trail - 1]:
        trail -= 1
    p = lead
    while p < trail and offsets[p][1] <= len(prompt):
        p += 1
    head, content, tail = ids[:p], ids[p:trail], ids[trail:]
    out, start = [], 0
    while True:
        end = min(start + tokens, len(content))
        out.append(head + content[start:end] + tail)
        if end >= len(content):
            break
        start += tokens - overlap
    return out, len(content)


def main():
    model = SentenceTransformer(MODEL, device="cpu")
    model.eval()
    tokenizer = model.tokenizer
    cases = []
    for tokens, overlap, prompt_name in CASES:
        prompt = model.prompts[prompt_name] if prompt_name else ""
        docs = []
        for text in TEXTS:
            ids, n = windows(tokenizer, prompt, text, tokens, overlap)
            vectors = []
            with torch.no_grad():
                for w in ids:
                    t = torch.tensor([w])
                    features = {"input_ids": t, "attention_mask": torch.ones_like(t)}
                    v = model(features)["sentence_embedding"]
                    v = torch.nn.functional.normalize(v, dim=1)
                    vectors.append(v[0].tolist())
            docs.append({"content_tokens": n, "windows": ids, "vectors": vectors})
        cases.append({"tokens": tokens, "overlap": overlap, "prompt": prompt_name, "documents": docs})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"texts": TEXTS, "cases": cases}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
