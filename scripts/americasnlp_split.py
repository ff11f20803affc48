#!/usr/bin/env python3
"""Labelled JSONL from the AmericasNLP 2021 dev sets (each file's extension is its language;
`es` becomes `spa`), split 90/10 by a hash of each line, for `latam classifier`:

    python3 scripts/americasnlp_split.py ../shared/data/langid/americasnlp2021-dev /tmp/anlp
    latam classifier train --input /tmp/anlp/train.jsonl --valid /tmp/anlp/test.jsonl \
        --output /tmp/anlp/model.lcm --epochs 10
"""

import glob
import hashlib
import json
import os
import sys


def main():
    source, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "train.jsonl"), "w", encoding="utf-8") as train, open(
        os.path.join(out, "test.jsonl"), "w", encoding="utf-8"
    ) as test:
        for path in sorted(glob.glob(os.path.join(source, "*.dev.*"))):
            label = path.rsplit(".", 1)[1]
            label = "spa" if label == "es" else label
            for line in open(path, encoding="utf-8"):
                line = line.strip()
                if not line:
                    continue
                held_out = int(hashlib.sha1(line.encode()).hexdigest(), 16) % 10 == 0
                record = json.dumps({"text": line, "label": label}, ensure_ascii=False)
                (test if held_out else train).write(record + "\n")


if __name__ == "__main__":
    main()
