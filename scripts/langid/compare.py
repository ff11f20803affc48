#!/usr/bin/env python3
"""latam's language identifier side by side with lingua and whatlang.

    pip install lingua-language-detector==2.1.1
    python3 scripts/langid/compare.py --data target/langid/data \
        --benchmarks ../shared/data/benchmarks --corpus ../shared/data/corpus/latam-open.jsonl.zst

Accuracy on Spanish, Portuguese, English and French texts of 20-100 characters:
- `short.jsonl` of the dataset (held-out test sentences, cut; same sources as training);
- questions of benchmarks no model here was trained on (CHOCLO and UNMSM in Spanish, OAB in
  Portuguese), cut the same way: an unseen domain.
lingua runs with all its 75 languages (as a corpus pipeline would) and restricted to the four;
latam and whatlang run through `latam langid`. Speed: lingua (one thread, in-process) on the
first --speed-docs documents of the corpus, next to `latam bench langid` on the same documents.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from lingua import Language, LanguageDetectorBuilder

FOUR = {"spa", "por", "eng", "fra"}


def cut(text):
    text = " ".join(text.split())
    if len(text) <= 100:
        return text if len(text) >= 20 else None
    limit = 20 + int(hashlib.sha1(("cut:" + text).encode()).hexdigest(), 16) % 81
    text = text[:limit].rsplit(" ", 1)[0]
    return text if len(text) >= 20 else None


def unseen(benchmarks):
    import csv

    rows = []
    with open(os.path.join(benchmarks, "choclo/choclo_latam_sample.csv"), encoding="utf-8") as f:
        rows += [("spa", "choclo", r["question"]) for r in csv.DictReader(f)]
    for q in json.load(open(os.path.join(benchmarks, "peru-unmsm/cuestionario.json"), encoding="utf-8")):
        text = q.get("question") or q.get("pregunta") or ""
        rows.append(("spa", "unmsm", text))
    for q in json.load(open(os.path.join(benchmarks, "oab/oab.json"), encoding="utf-8")):
        rows.append(("por", "oab", q["enum"]))
    out = []
    for label, source, text in rows:
        text = cut(text or "")
        if text:
            out.append({"text": text, "label": label, "source": source})
    return out


def latam_labels(latam, rows, engine):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": str(i), "text": r["text"]}, ensure_ascii=False) + "\n")
    out = subprocess.run([latam, "langid", "--engine", engine, "--input", f.name],
                         check=True, capture_output=True).stdout.decode("utf-8")
    os.unlink(f.name)
    return [json.loads(l)["metadata"]["language"] for l in out.splitlines()]


def lingua_labels(detector, rows):
    labels = []
    for r in rows:
        found = detector.detect_language_of(r["text"])
        labels.append(found.iso_code_639_3.name.lower() if found else "und")
    return labels


def accuracy(rows, labels):
    per = {}
    for r, l in zip(rows, labels):
        ok, n = per.get(r["label"], (0, 0))
        per[r["label"]] = (ok + (l == r["label"]), n + 1)
    total = sum(ok for ok, _ in per.values()) / len(rows)
    return total, {k: ok / n for k, (ok, n) in sorted(per.items())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--benchmarks", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--latam", default="target/release/latam")
    ap.add_argument("--speed-docs", type=int, default=2000)
    args = ap.parse_args()

    sets = {
        "held-out sentences (short.jsonl)": [json.loads(l) for l in open(os.path.join(args.data, "short.jsonl"), encoding="utf-8")],
        "unseen benchmarks (CHOCLO, UNMSM, OAB)": unseen(args.benchmarks),
    }
    lingua_all = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
    lingua_four = LanguageDetectorBuilder.from_languages(
        Language.SPANISH, Language.PORTUGUESE, Language.ENGLISH, Language.FRENCH).build()
    print("| texts of 20-100 chars | n | latam | lingua (75 languages) | lingua (4 languages) | whatlang |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows in sets.items():
        results = [
            accuracy(rows, latam_labels(args.latam, rows, "latam")),
            accuracy(rows, lingua_labels(lingua_all, rows)),
            accuracy(rows, lingua_labels(lingua_four, rows)),
            accuracy(rows, latam_labels(args.latam, rows, "whatlang")),
        ]
        cells = " | ".join(
            f"{total:.2%} ({', '.join(f'{k} {v:.1%}' for k, v in per.items())})" for total, per in results)
        print(f"| {name} | {len(rows)} | {cells} |")

    # Speed: the same documents for lingua (here) and for latam/whatlang (latam bench langid).
    out = subprocess.run(["zstdcat", args.corpus], check=True, capture_output=True).stdout.decode("utf-8")
    docs = [json.loads(l) for l in out.splitlines()[: args.speed_docs]]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    start = time.perf_counter()
    for d in docs:
        lingua_all.detect_language_of(d["text"])
    lingua_s = time.perf_counter() - start
    bench = json.loads(subprocess.run([args.latam, "bench", "langid", "--input", f.name, "--workers", "1", "--json"],
                                      check=True, capture_output=True).stdout)
    os.unlink(f.name)
    print()
    print(f"Speed on {len(docs)} documents of {os.path.basename(args.corpus)} ({mb:.1f} MB), one core:")
    print(f"latam {bench['latam_mb_per_s_1_threads']:.1f} MB/s, whatlang {bench['whatlang_mb_per_s_1_threads']:.1f} MB/s, "
          f"lingua (75 languages) {mb / lingua_s:.2f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
