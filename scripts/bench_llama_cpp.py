"""llama.cpp's prefill and decode speed on a GGUF, measured as `latam bench generate` measures
ours: the same Spanish prompt cut to --prompt-tokens, then --tokens single-token decode steps
(greedy), median of --repeat runs.

Needs llama-cpp-python (see docs/serve.md for the build used in the README's figures).
Usage: python scripts/bench_llama_cpp.py MODEL.gguf --threads 1
"""

import argparse
import statistics
import time

import llama_cpp

PROMPT_TEXT = (
    "La cordillera de los Andes recorre Chile de norte a sur y separa el país de Argentina. "
    "En el valle central se cultivan uvas, trigo y frutas que se exportan a todo el mundo. "
    "Santiago, la capital, reúne a casi la mitad de la población y concentra la actividad "
    "económica, política y cultural. "
)

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--prompt-tokens", type=int, default=128)
parser.add_argument("--tokens", type=int, default=128)
parser.add_argument("--repeat", type=int, default=3)
args = parser.parse_args()

llm = llama_cpp.Llama(
    args.model, n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads,
    n_batch=512, verbose=False,
)
text = PROMPT_TEXT * (args.prompt_tokens // 40 + 2)
prompt = llm.tokenize(text.encode(), add_bos=True)[: args.prompt_tokens]


def run(generate):
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    prefilled = time.perf_counter()
    token = llm.sample(temp=0.0)
    first = time.perf_counter()
    for _ in range(generate - 1):
        llm.eval([token])
        token = llm.sample(temp=0.0)
    end = time.perf_counter()
    return prefilled - start, first - start, end - first


run(4)
prefill, ttft, decode = [], [], []
for _ in range(args.repeat):
    p, f, d = run(args.tokens)
    prefill.append(len(prompt) / p)
    ttft.append(f)
    decode.append((args.tokens - 1) / d)
print(f"llama.cpp (llama-cpp-python {llama_cpp.__version__}): {args.threads} threads, "
      f"prompt {len(prompt)} tokens, {args.tokens} generated, median of {args.repeat}")
print(f"  prefill             {statistics.median(prefill):8.1f} tokens/s")
print(f"  time to first token {statistics.median(ttft) * 1000:8.1f} ms")
print(f"  decode              {statistics.median(decode):8.1f} tokens/s")
