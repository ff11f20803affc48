#!/usr/bin/env python3
"""Evaluate `classify_toxicity` on ToLD-Br and HateBR (Portuguese), python3 stdlib only.

    python3 scripts/toxicity_eval.py ../shared/data/toxicity target/release/latam /tmp/toxeval

1. Reads ToLD-Br (`told-br/ToLD-BR.csv`: per-category vote counts 0-3 of three annotators;
   toxic = at least one vote in any category, the dataset's `annotator1` binary convention)
   and HateBR (`hatebr/HateBR.csv`: `label_final`, 1 offensive, 0 not).
2. Splits each set 80/20 by the SHA-256 of the text (the first 8 bytes, big-endian, modulo 100
   below 80: train), so a text and its duplicates always fall on the same side, and writes
   WORK/<set>/{train,test}.jsonl (`{"id", "text", "label": "toxic"|"clean",
   "metadata": {"language": "por"}}`).
3. Trains one model on both training splits with the project's classifier:
   `latam classifier train --input told-br/train.jsonl --input hatebr/train.jsonl
   --output WORK/toxicity.lcm` (default settings).
4. Scores each test split with the real step through `latam corpus run` (a pipeline holding
   only `classify_toxicity`): (a) lexicons alone, (b) the model alone (`latam classifier
   predict`: the probability of `toxic`), (c) the step with the model (the larger of the two).
5. Prints precision, recall and F1 of the toxic class at the default threshold 0.5 and at
   others (Markdown), and writes WORK/results.json.

The data's licences (CC BY-SA 4.0, CC BY-NC 4.0) do not let us ship it or a model trained on
it: everything stays under WORK.
"""

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
DEFAULT = 0.5


def split_of(text):
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return "train" if h % 100 < 80 else "test"


def told_br(path):
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            votes = [float(row[c]) for c in row if c != "text"]
            yield row["text"], any(v > 0 for v in votes)


def hatebr(path):
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield row["comentario"], row["label_final"].strip() == "1"


def write_splits(name, rows, work):
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    files = {s: open(out / f"{s}.jsonl", "w", encoding="utf-8") for s in ("train", "test")}
    counts = {s: [0, 0] for s in files}
    for i, (text, toxic) in enumerate(rows):
        text = text.strip()
        if not text:
            continue
        split = split_of(text)
        record = {
            "id": f"{name}-{i}",
            "text": text,
            "label": "toxic" if toxic else "clean",
            "metadata": {"language": "por"},
        }
        files[split].write(json.dumps(record, ensure_ascii=False) + "\n")
        counts[split][int(toxic)] += 1
    for f in files.values():
        f.close()
    return counts


def run(cmd):
    print("$", " ".join(str(c) for c in cmd), file=sys.stderr)
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL)


def step_scores(latam, test, work, tag, model=None):
    pipeline = work / f"{tag}.toml"
    lines = ['[output]\ncompression = "none"\n', '[[steps]]\ntype = "classify_toxicity"\n']
    if model:
        lines.append(f'model = "{model}"\n')
    pipeline.write_text("".join(lines))
    out = work / f"out-{tag}"
    run([latam, "corpus", "run", pipeline, "--input", test, "--output", out, "--overwrite"])
    scores = {}
    for part in sorted((out / "documents").glob("*.jsonl")):
        for line in part.open(encoding="utf-8"):
            doc = json.loads(line)
            scores[doc["id"]] = doc["metadata"]["toxicity_score"]
    return scores


def model_scores(latam, test, model, work, tag):
    out = work / f"pred-{tag}.jsonl"
    run([latam, "classifier", "predict", "--model", model, "--input", test, "--output", out])
    scores = {}
    for line in out.open(encoding="utf-8"):
        doc = json.loads(line)
        p = doc["metadata"]["label_score"]
        scores[doc["id"]] = p if doc["metadata"]["label"] == "toxic" else 1.0 - p
    return scores


def prf(gold, scores, threshold):
    tp = fp = fn = 0
    for i, toxic in gold.items():
        flagged = scores[i] >= threshold
        tp += flagged and toxic
        fp += flagged and not toxic
        fn += toxic and not flagged
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "flagged": tp + fp}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    data, latam, work = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    sets = {
        "told-br": told_br(data / "told-br" / "ToLD-BR.csv"),
        "hatebr": hatebr(data / "hatebr" / "HateBR.csv"),
    }
    counts = {name: write_splits(name, rows, work) for name, rows in sets.items()}
    model = work / "toxicity.lcm"
    run(
        [latam, "classifier", "train"]
        + [a for name in sets for a in ("--input", work / name / "train.jsonl")]
        + [a for name in sets for a in ("--valid", work / name / "test.jsonl")]
        + ["--output", model, "--card", "ToLD-Br (CC BY-SA 4.0) + HateBR (CC BY-NC 4.0)"]
    )
    results = {}
    for name in sets:
        test = work / name / "test.jsonl"
        gold = {}
        for line in test.open(encoding="utf-8"):
            doc = json.loads(line)
            gold[doc["id"]] = doc["label"] == "toxic"
        systems = {
            "lexicon": step_scores(latam, test, work, f"{name}-lexicon"),
            "classifier": model_scores(latam, test, model, work, name),
            "combined": step_scores(latam, test, work, f"{name}-combined", model),
        }
        results[name] = {
            "train": {"clean": counts[name]["train"][0], "toxic": counts[name]["train"][1]},
            "test": {"clean": counts[name]["test"][0], "toxic": counts[name]["test"][1]},
            "systems": {
                system: {str(t): prf(gold, scores, t) for t in THRESHOLDS}
                for system, scores in systems.items()
            },
        }
    (work / "results.json").write_text(json.dumps(results, indent=2))

    print("| set (test: toxic / clean) | system | precision | recall | F1 | flagged |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in results.items():
        for system, by_t in r["systems"].items():
            m = by_t[str(DEFAULT)]
            print(
                f"| {name} ({r['test']['toxic']} / {r['test']['clean']}) | {system} | "
                f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['flagged']} |"
            )
    print()
    print("F1 of the toxic class by threshold:")
    print()
    print("| set | system | " + " | ".join(str(t) for t in THRESHOLDS) + " |")
    print("|---|---|" + "---:|" * len(THRESHOLDS))
    for name, r in results.items():
        for system, by_t in r["systems"].items():
            cells = " | ".join(f"{by_t[str(t)]['f1']:.3f}" for t in THRESHOLDS)
            print(f"| {name} | {system} | {cells} |")


if __name__ == "__main__":
    main()
