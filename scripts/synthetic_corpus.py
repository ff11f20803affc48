#!/usr/bin/env python3
"""A corpus of many short documents for memory measurements of deduplication at scale: each
document joins 4 random sentences drawn from a real corpus; one in 20 is a near-copy of an
earlier one (a word replaced). Deterministic for a seed.

    python3 scripts/synthetic_corpus.py ../shared/data/corpus/latam-open.jsonl.zst \
        --docs 10000000 | zstd -1 -q -o /tmp/10m.jsonl.zst
"""

import argparse
import io
import json
import random
import re
import sys

import zstandard


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--docs", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sentences = []
    with open(args.source, "rb") as raw:
        text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        for line in text:
            doc = json.loads(line)["text"]
            sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", doc) if 40 <= len(s) <= 300)
            if len(sentences) > 200_000:
                break
    rng = random.Random(args.seed)
    out = sys.stdout
    recent = []
    for i in range(args.docs):
        if recent and i % 20 == 19:
            words = rng.choice(recent).split(" ")
            words[rng.randrange(len(words))] = "variante"
            text = " ".join(words)
        else:
            text = " ".join(rng.choice(sentences) for _ in range(4))
            recent.append(text)
            if len(recent) > 1000:
                recent.pop(0)
        out.write(json.dumps({"id": f"doc-{i}", "text": text}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
