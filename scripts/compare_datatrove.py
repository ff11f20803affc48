#!/usr/bin/env python3
"""Side by side: datatrove's MinHash deduplication and `latam`'s `dedup_minhash` on the same
input, with the same parameters (5-gram shingles, 14 bands x 8 rows, 64-bit hashes, no
verification of candidate pairs, as datatrove does not verify).

Reports the documents each removes, their overlap, and the wall time of each signature stage.

    python3 -m venv /tmp/dtv && /tmp/dtv/bin/pip install datatrove spacy orjson tokenizers zstandard
    cargo build --release
    /tmp/dtv/bin/python scripts/compare_datatrove.py INPUT.jsonl.zst [INPUT2 ...] \
        --latam target/release/latam --work /tmp/dedup-compare

The inputs are JSONL (plain or .zst) with `id` and `text`; documents are numbered in input order
by both tools, and compared by id.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path


def read_jsonl(path):
    if str(path).endswith(".zst"):
        import zstandard

        with open(path, "rb") as raw:
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
            yield from (json.loads(l) for l in io.TextIOWrapper(stream, encoding="utf-8") if l.strip())
    else:
        with open(path, encoding="utf-8") as f:
            yield from (json.loads(l) for l in f if l.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--latam", default="target/release/latam")
    ap.add_argument("--work", default="/tmp/dedup-compare")
    ap.add_argument("--language", default="spa", help="datatrove word tokenizer language")
    args = ap.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    (work / "input").mkdir(parents=True)
    # One plain JSONL for datatrove (its reader numbers documents in this order).
    ids, total_bytes = [], 0
    with open(work / "input" / "all.jsonl", "w", encoding="utf-8") as out:
        for path in args.inputs:
            for doc in read_jsonl(path):
                ids.append(doc["id"])
                total_bytes += len(doc["text"].encode())
                out.write(json.dumps({"id": doc["id"], "text": doc["text"]}, ensure_ascii=False) + "\n")

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(
        n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1,
        hash_config=HashConfig(precision=64, hash_fc="sha1"),
    )
    reader = JsonlReader(str(work / "input"), compression=None)
    dt = work / "datatrove"
    t = time.time()
    LocalPipelineExecutor(
        pipeline=[reader, MinhashDedupSignature(output_folder=str(dt / "sigs"), config=config, language=args.language)],
        tasks=1, logging_dir=str(dt / "logs/sigs"),
    ).run()
    sig_s = time.time() - t
    t = time.time()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(input_folder=str(dt / "sigs"), output_folder=str(dt / "buckets"), config=config)],
        tasks=config.num_buckets, logging_dir=str(dt / "logs/buckets"),
    ).run()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(input_folder=str(dt / "buckets"), output_folder=str(dt / "remove_ids"), config=config)],
        tasks=1, logging_dir=str(dt / "logs/cluster"),
    ).run()
    LocalPipelineExecutor(
        pipeline=[
            reader,
            MinhashDedupFilter(
                input_folder=str(dt / "remove_ids"),
                exclusion_writer=JsonlWriter(str(dt / "removed"), compression=None),
            ),
            JsonlWriter(str(dt / "kept"), compression=None),
        ],
        tasks=1, logging_dir=str(dt / "logs/filter"),
    ).run()
    dt_total_s = time.time() - t + sig_s
    dt_removed = set()
    for f in (dt / "removed").glob("*.jsonl"):
        dt_removed |= {json.loads(l)["id"] for l in open(f, encoding="utf-8")}

    pipeline = work / "latam.toml"
    pipeline.write_text('[[steps]]\ntype = "dedup_minhash"\nverify = false\n')
    latam_out = work / "latam"
    t = time.time()
    subprocess.run(
        [args.latam, "corpus", "run", str(pipeline), "--progress", "none", "--output", str(latam_out)]
        + sum((["--input", p] for p in args.inputs), []),
        check=True, stderr=subprocess.DEVNULL,
    )
    latam_s = time.time() - t
    stats = json.loads((latam_out / "stats.json").read_text())
    latam_scan_s = stats["run"]["scan_time_s"]["dedup_minhash"]
    latam_removed = set()
    for f in (latam_out / "rejected" / "dedup_minhash").glob("*.jsonl.zst"):
        latam_removed |= {d["id"] for d in read_jsonl(f)}

    both = dt_removed & latam_removed
    union = dt_removed | latam_removed
    mb = total_bytes / 1e6
    report = {
        "documents": len(ids),
        "text_mb": round(mb, 1),
        "datatrove_removed": len(dt_removed),
        "latam_removed": len(latam_removed),
        "removed_by_both": len(both),
        "only_datatrove": sorted(dt_removed - latam_removed)[:20],
        "only_latam": sorted(latam_removed - dt_removed)[:20],
        "agreement_jaccard": round(len(both) / len(union), 4) if union else 1.0,
        "agreement_on_all_documents": round(1 - len(union - both) / len(ids), 6),
        "datatrove_signature_s": round(sig_s, 2),
        "datatrove_signature_mb_per_s": round(mb / sig_s, 2),
        "datatrove_total_s": round(dt_total_s, 2),
        "latam_total_s": round(latam_s, 2),
        "latam_scan_s": round(latam_scan_s, 2),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
