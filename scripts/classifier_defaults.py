#!/usr/bin/env python3
"""The figures behind `latam classifier train`'s default epochs and learning rate: held-out
accuracy and macro-F1 of several settings on four real sets, mean of seeds 1-3.

    python3 scripts/classifier_defaults.py ../shared/data target/debug/latam /tmp/cdef

Sets (each split by a rule stated below, written under WORK):
  sample      the bundled sample's sources, first 400 characters of each document, every fifth
              held out (as crates/latam-cli/tests/classifier.rs): 544 / 136, 4 labels
  americasnlp AmericasNLP 2021 dev sentences, 90/10 by a hash of the line
              (as scripts/americasnlp_split.py): 16,362 / 1,869, 11 labels
  hatebr      HateBR comments, offensive or not, 90/10 by a hash of the text
  toldbr      ToLD-Br tweets, the category with most votes or `none`, 90/10 by a hash (7
              labels, 56% `none`, 56 `racism`)
"""

import csv
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

SETTINGS = [(5, 0.5), (10, 0.5), (25, 0.5), (10, 1.0), (25, 1.0), (50, 1.0)]
SEEDS = [1, 2, 3]


def held_out(text):
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 10 == 0


def write(work, name, rows, is_test=None):
    """Writes NAME_train.jsonl and NAME_test.jsonl from (text, label) rows."""
    with open(os.path.join(work, f"{name}_train.jsonl"), "w", encoding="utf-8") as train, open(
        os.path.join(work, f"{name}_test.jsonl"), "w", encoding="utf-8"
    ) as test:
        for i, (text, label) in enumerate(rows):
            text = text.strip()
            if not text:
                continue
            out = test if (is_test(i) if is_test else held_out(text)) else train
            out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def sample(repo):
    raw = subprocess.run(
        ["zstd", "-dc", os.path.join(repo, "data/sample/latam-sample.jsonl.zst")],
        check=True,
        capture_output=True,
    ).stdout.decode()
    docs = [json.loads(line) for line in raw.splitlines()]
    return [(d["text"][:400], d["metadata"]["source"]) for d in docs]


def americasnlp(shared):
    rows = []
    for path in sorted(glob.glob(os.path.join(shared, "langid/americasnlp2021-dev/*.dev.*"))):
        label = path.rsplit(".", 1)[1]
        label = "spa" if label == "es" else label
        rows += [(line.strip(), label) for line in open(path, encoding="utf-8") if line.strip()]
    return rows


def hatebr(shared):
    with open(os.path.join(shared, "toxicity/hatebr/HateBR.csv"), encoding="utf-8") as f:
        return [
            (r["comentario"], "offensive" if r["label_final"] == "1" else "none")
            for r in csv.DictReader(f)
        ]


def toldbr(shared):
    cats = ["homophobia", "obscene", "insult", "racism", "misogyny", "xenophobia"]
    rows = []
    with open(os.path.join(shared, "toxicity/told-br/ToLD-BR.csv"), encoding="utf-8") as f:
        for r in csv.DictReader(f):
            votes = [float(r[c] or 0) for c in cats]
            rows.append((r["text"], "none" if max(votes) == 0 else cats[votes.index(max(votes))]))
    return rows


def train(latam, work, name, epochs, lr, seed):
    out = subprocess.run(
        [latam, "classifier", "train", "--input", f"{work}/{name}_train.jsonl", "--valid",
         f"{work}/{name}_test.jsonl", "--output", f"{work}/m.lcm", "--epochs", str(epochs),
         "--lr", str(lr), "--seed", str(seed)],
        check=True, capture_output=True, text=True,
    ).stdout
    m = re.search(r"accuracy ([0-9.]+)%, macro-F1 ([0-9.]+)", out)
    return float(m.group(1)), float(m.group(2))


def main():
    shared, latam, work = sys.argv[1], sys.argv[2], sys.argv[3]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(work, exist_ok=True)
    write(work, "sample", sample(repo), is_test=lambda i: i % 5 == 0)
    write(work, "americasnlp", americasnlp(shared))
    write(work, "hatebr", hatebr(shared))
    write(work, "toldbr", toldbr(shared))
    sets = ["sample", "americasnlp", "hatebr", "toldbr"]
    print("| epochs | lr | " + " | ".join(f"{s} acc. | {s} macro-F1" for s in sets) + " |")
    print("|---:|---:|" + "---:|---:|" * len(sets))
    for epochs, lr in SETTINGS:
        cells = []
        for name in sets:
            runs = [train(latam, work, name, epochs, lr, seed) for seed in SEEDS]
            acc = sum(r[0] for r in runs) / len(runs)
            f1 = sum(r[1] for r in runs) / len(runs)
            cells.append(f"{acc:.2f}% | {f1:.4f}")
        print(f"| {epochs} | {lr} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
