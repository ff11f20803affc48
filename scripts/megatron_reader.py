#!/usr/bin/env python3
"""An independent reader of Megatron-LM indexed datasets (MMIDIDX), written from the format
Megatron publishes (megatron/core/datasets/indexed_dataset.py), with numpy only:

    python3 scripts/megatron_reader.py PREFIX          # prints a JSON summary

.idx: b"MMIDIDX\\x00\\x00", version <Q (1), dtype code <B, sequence count <Q, document count <Q,
then sequence lengths int32[n], sequence pointers int64[n] (byte offsets into .bin), document
indices int64[d]. .bin: the tokens.
"""

import json
import sys

import numpy as np

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


def read(prefix):
    with open(prefix + ".idx", "rb") as f:
        assert f.read(9) == b"MMIDIDX\x00\x00", "not an MMIDIDX index"
        (version,) = np.frombuffer(f.read(8), dtype="<u8")
        assert version == 1
        (code,) = np.frombuffer(f.read(1), dtype="<u1")
        (sequences,) = np.frombuffer(f.read(8), dtype="<u8")
        (documents,) = np.frombuffer(f.read(8), dtype="<u8")
        offset = f.tell()
    index = np.memmap(prefix + ".idx", mode="r", order="C")
    lengths = np.frombuffer(index, dtype=np.int32, count=int(sequences), offset=offset)
    offset += lengths.nbytes
    pointers = np.frombuffer(index, dtype=np.int64, count=int(sequences), offset=offset)
    offset += pointers.nbytes
    doc_idx = np.frombuffer(index, dtype=np.int64, count=int(documents), offset=offset)
    dtype = DTYPES[int(code)]
    data = np.memmap(prefix + ".bin", mode="r", order="C")
    seqs = [np.frombuffer(data, dtype=dtype, count=int(n), offset=int(p)) for n, p in zip(lengths, pointers)]
    return dtype, lengths, doc_idx, seqs


def main():
    dtype, lengths, doc_idx, seqs = read(sys.argv[1])
    print(json.dumps({
        "dtype": np.dtype(dtype).name,
        "sequences": len(seqs),
        "document_indices": [int(x) for x in doc_idx[:5]] + [int(doc_idx[-1])],
        "tokens": int(lengths.sum()),
        "first": [int(x) for x in seqs[0][:16]],
        "last": [int(x) for x in seqs[-1][-16:]],
        "sum": int(sum(int(s.astype(np.int64).sum()) for s in seqs)),
    }))


if __name__ == "__main__":
    main()
