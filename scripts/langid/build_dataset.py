#!/usr/bin/env python3
"""Builds the training, validation and test sets of latam's language identifier.

    python3 scripts/langid/build_dataset.py SHARED_DATA DEBIAN_DIR OUT

SHARED_DATA is the project's `shared/data` folder (AmericasNLP dev sets, UDHR, Mapudungun,
latam-open); DEBIAN_DIR holds Debian packages unpacked one per folder (`scripts/langid/train.sh`
downloads them at pinned versions): fortunes, the Debian Reference and other manuals in English,
French, Spanish, Portuguese, Italian, German and Catalan, and message catalogues for Galician,
Catalan and Portuguese. OUT receives `train.jsonl`, `valid.jsonl`, `test.jsonl` (`text`, `label`, `source`),
`short.jsonl` (test sentences of spa/por/eng/fra cut to 20-100 characters, for the comparison
with lingua) and `dataset.json` (counts by split, label and source).

Units are sentences (paragraphs for UDHR articles and parallel lines), deduplicated, and each
goes to a split by a hash of its text: 10% test, 10% validation, 80% training, so a sentence and
its copies never cross splits. Large sources are capped by the same hash (deterministic), and
training examples of small languages are repeated up to MIN_TRAIN so that every label weighs.
"""

import glob
import gzip
import hashlib
import html
import json
import os
import re
import struct
import subprocess
import sys
from collections import Counter, defaultdict

# Regional labels and the UDHR files (shared/data/langid/udhr/index.tsv) that train them.
UDHR_LABELS = {
    "spa": "spa", "por_BR": "por", "por_PT": "por", "eng": "eng", "fra": "fra",
    "hat_kreyol": "hat", "hat_popular": "hat", "quy": "quy", "quz": "quy", "qxa": "quy",
    "qul": "quy", "gug": "gug", "ayr": "aym", "nhn": "nah", "arn": "arn", "yua": "yua",
    "quc": "quc", "guc": "guc", "shp": "shp", "ote": "oto", "cni": "cni",
}
# UDHR files that are neither a label nor `und`: Quechua and Guaraní varieties close enough
# to a label that calling them "other" would be wrong, and too far to call them the label.
UDHR_SKIP = {"qud", "qug", "qva", "qvc", "qvh", "qvm", "qvn", "qwh", "qxn", "gnw", "acu_1"}
# AmericasNLP 2021 dev files: extension -> label.
AMERICASNLP = {
    "aym": "aym", "bzd": "bzd", "cni": "cni", "gn": "gug", "hch": "hch", "nah": "nah",
    "oto": "oto", "quy": "quy", "shp": "shp", "tar": "tar",
}
TEST, VALID = 10, 10  # percent
MIN_TRAIN = 3000
CAPS = {  # most sentences a source gives (all splits)
    "latam-open-spa": 30000, "latam-open-por": 20000, "debian-faq": 4000, "americasnlp-es": 12000, "mapudungun-es": 4000,
    "fortunes": 25000, "fortunes-es": 12000, "fortunes-br": 6000, "fortunes-de": 9000,
    "fortunes-it": 9000, "debian-reference": 15000, "installation-guide": 8000,
    "maint-guide": 6000, "messages": 6000, "code": 4000, "manpages": 10000,
    "mapudungun": 10000,
}
# Function words that a sentence of a translated manual must contain (two of them) to count as
# that language: manuals leave English phrases untranslated.
STOPWORDS = {
    "eng": "the of and to is in for that with you this are be it on or as",
    "fra": "le la les des de du et est un une pour dans que qui sur avec vous pas au",
    "spa": "el la los las de del y es un una para en que con por se no lo",
    "por": "o a os as de do da e é um uma para em que com por se não no na",
    "ita": "il la le gli di del della e è un una per in che con non si da",
    "deu": "der die das und ist ein eine zu in mit für nicht den von auf sie",
    "cat": "el la els les de del i és un una per en que amb no es al",
    "glg": "o a os as de do da e é un unha para en que con por se non no na",
}
STOPWORDS = {k: set(v.split()) for k, v in STOPWORDS.items()}
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[¿¡\"«“'(A-ZÀ-ÖØ-Þ])")
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def digest(text):
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def tidy(text):
    return re.sub(r"\s+", " ", text).strip()


def sentences(paragraph, lo=15, hi=400):
    """The sentences of a paragraph that read as text: mostly letters, within lo..hi chars."""
    for s in SENTENCE_END.split(tidy(paragraph)):
        letters = sum(c.isalpha() for c in s)
        if lo <= len(s) <= hi and letters >= 0.6 * len(s):
            yield s


def speaks(sentence, lang):
    words = [w.lower() for w in WORD.findall(sentence)]
    return sum(w in STOPWORDS[lang] for w in words) >= 2


def paragraphs(text):
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def html_text(path):
    raw = open(path, encoding="utf-8", errors="replace").read()
    raw = re.sub(r"(?is)<(script|style|pre|code|tt|kbd|span class=\"command\")[^>]*>.*?</\1>", " ", raw)
    raw = re.sub(r"(?i)</?(p|div|li|h\d|td|tr|br|dt|dd|table|title)[^>]*>", "\n\n", raw)
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def fortunes(folder):
    """The fortune cookies of every plain file in a folder (not its subfolders: `off`)."""
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        if os.path.isdir(path) or os.path.islink(path) or path.endswith((".dat", ".u8")):
            continue
        raw = open(path, "rb").read()
        text = raw.decode("utf-8") if is_utf8(raw) else raw.decode("latin-1")
        for cookie in re.split(r"\n%\n", text):
            # Attributions ("-- Author") and indented verse lines stay part of the cookie.
            yield from sentences(re.sub(r"\n\s*--.*$", "", cookie, flags=re.S))


def is_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def mo_messages(path):
    """Translated strings of a gettext catalogue, decoded with its declared charset."""
    data = open(path, "rb").read()
    order = "<" if data[:4] == b"\xde\x12\x04\x95" else ">"
    _, count, _, trans = struct.unpack(order + "4I", data[4:20])
    strings = []
    for i in range(count):
        length, offset = struct.unpack(order + "2I", data[trans + 8 * i : trans + 8 * i + 8])
        strings.append(data[offset : offset + length])
    header = strings[0].decode("ascii", "replace") if strings else ""
    charset = re.search(r"charset=([\w-]+)", header)
    charset = charset.group(1) if charset else "utf-8"
    for raw in strings[1:]:
        for text in raw.decode(charset, "replace").split("\x00"):
            # Drop format directives and option names, then read what is left as prose.
            text = re.sub(r"%[-#0 +'I]*\d*(\.\d+)?[hlLqjzt]*[diouxXeEfgGcsp%]|--?[\w-]+", " ", text)
            yield from sentences(text.replace("\n", " "), lo=30)


def manpage_text(path):
    """The prose of a troff manual page: requests dropped, font and character escapes undone."""
    text = gzip.open(path, "rt", encoding="utf-8", errors="replace").read()
    lines = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            lines.append("" if line[1:3] in ("PP", "P", "LP", "SH", "SS", "TP", "IP") else " ")
            continue
        line = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", line)
        line = re.sub(r"\\\*?\(..|\\\*?\[[^]]*\]|\\[&|^%,/]|\\s[-+]?\d", "", line).replace("\\ ", " ")
        lines.append(line.replace("\\-", "-").replace("\\e", "\\"))
    return "\n".join(lines)


# Program code for `und` comes from this repository at a fixed commit, so that the training set
# does not change as the code does.
CODE_COMMIT = "50a811c"


def code_chunks(repo):
    """Rust code of this repository at CODE_COMMIT in chunks of 6 lines: the `und` of program text."""
    names = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "--name-only", CODE_COMMIT, "crates"],
                           check=True, capture_output=True, text=True).stdout.split()
    for path in sorted(n for n in names if n.endswith(".rs") and "/src/" in n):
        source = subprocess.run(["git", "-C", repo, "show", f"{CODE_COMMIT}:{path}"],
                                check=True, capture_output=True, text=True).stdout
        lines = [l.rstrip() for l in source.splitlines() if l.strip()]
        for i in range(0, len(lines), 6):
            yield "\n".join(lines[i : i + 6])


class Collector:
    def __init__(self):
        self.units = {}  # text -> (label, source); the first source of a text wins
        self.ambiguous = set()  # texts found under two labels ("Articulo 1"): dropped

    def add(self, label, source, texts):
        for text in texts:
            text = text.strip()
            if len(text) < 10 or text in self.ambiguous:
                continue
            if text not in self.units:
                self.units[text] = (label, source)
            elif self.units[text][0] != label:
                self.ambiguous.add(text)
                del self.units[text]


def collect(shared, debian, repo):
    c = Collector()
    langid = os.path.join(shared, "langid")
    # UDHR: one article per line.
    index = [l.rstrip("\n").split("\t") for l in open(os.path.join(langid, "udhr/index.tsv"))][1:]
    for name, iso, *_ in index:
        if name in UDHR_SKIP:
            continue
        label = UDHR_LABELS.get(name, "und")
        lines = open(os.path.join(langid, "udhr/txt", name + ".txt"), encoding="utf-8")
        c.add(label, "udhr-" + name, (tidy(l) for l in lines))
    # AmericasNLP 2021 dev: parallel lines, the Spanish side is Spanish.
    for path in sorted(glob.glob(os.path.join(langid, "americasnlp2021-dev/*.dev.*"))):
        ext = path.rsplit(".", 1)[1]
        lines = [tidy(l) for l in open(path, encoding="utf-8")]
        if ext == "es":
            c.add("spa", "americasnlp-es", capped("americasnlp-es", lines, share=10))
        else:
            c.add(AMERICASNLP[ext], "americasnlp-" + ext, lines)
    # AmericasNLP 2024: Chatino (ctp) and Yucatec Maya (yua, both columns of the tsv).
    ctp = os.path.join(langid, "americasnlp2024-dev/chatino-spanish.dev.ctp")
    c.add("ctp", "americasnlp-ctp", (tidy(l) for l in open(ctp, encoding="utf-8")))
    for name in ("maya-train.tsv", "maya-dev.tsv"):
        rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(langid, "americasnlp2024-dev", name), encoding="utf-8")][1:]
        c.add("yua", "americasnlp-yua", (tidy(r[i]) for r in rows for i in (1, 3) if len(r) > 3))
    # Mapudungun: `M:` lines are Mapudungun, `C:` lines their Spanish translation.
    arn, es = [], []
    for path in sorted(glob.glob(os.path.join(langid, "mapudungun/translation-clean/*.txt"))):
        for line in open(path, encoding="utf-8", errors="replace"):
            if line.startswith("M:"):
                arn.append(tidy(line[2:]))
            elif line.startswith("C:"):
                es.append(tidy(line[2:]))
    c.add("arn", "mapudungun", capped("mapudungun", [s for s in arn if len(WORD.findall(s)) >= 3]))
    c.add("spa", "mapudungun-es", capped("mapudungun-es", [s for s in es if len(WORD.findall(s)) >= 3]))
    # latam-open: Spanish and Portuguese documents, split into sentences.
    corpus = os.path.join(shared, "corpus/latam-open.jsonl.zst")
    spa, por = [], []
    out = subprocess.run(["zstdcat", corpus], check=True, capture_output=True).stdout
    for line in out.decode("utf-8").splitlines():
        doc = json.loads(line)
        lang = doc.get("metadata", {}).get("language")
        for p in paragraphs(doc["text"]):
            (spa if lang == "es" else por).extend(sentences(p))
    c.add("spa", "latam-open", capped("latam-open-spa", spa))
    c.add("por", "latam-open", capped("latam-open-por", por))
    # Debian: fortunes and manuals, sentences checked for function words of their language.
    games = os.path.join(debian, "{}/usr/share/games/fortunes")
    for package, sub, label, lang in [
        ("fortunes", "", "eng", "eng"), ("fortunes-es", "es", "spa", "spa"),
        ("fortunes-br", "", "por", "por"), ("fortunes-de", "de", "und", "deu"),
        ("fortunes-it", "it", "und", "ita"),
    ]:
        found = (s for s in fortunes(os.path.join(games.format(package), sub)) if speaks(s, lang))
        c.add(label, package, capped(package, found))
    for lang, label in [("en", "eng"), ("fr", "fra"), ("es", "spa"), ("pt", "por"), ("it", "und"), ("de", "und")]:
        code = {"en": "eng", "fr": "fra", "es": "spa", "pt": "por", "it": "ita", "de": "deu"}[lang]
        path = os.path.join(debian, f"debian-reference-{lang}/usr/share/doc/debian-reference-{lang}/docs/debian-reference.{lang}.txt.gz")
        text = gzip.open(path, "rt", encoding="utf-8").read()
        found = (s for p in paragraphs(text) for s in sentences(p) if speaks(s, code))
        c.add(label, "debian-reference", capped("debian-reference", found, share=1 / 6))
    guide = os.path.join(debian, "installation-guide-amd64/usr/share/doc/installation-guide-amd64")
    for lang, label, code in [("en", "eng", "eng"), ("fr", "fra", "fra"), ("ca", "und", "cat"), ("it", "und", "ita"), ("pt", "por", "por")]:
        pages = sorted(glob.glob(os.path.join(guide, lang, "*.html")))
        found = (s for page in pages for p in paragraphs(html_text(page)) for s in sentences(p) if speaks(s, code))
        c.add(label, "installation-guide", capped("installation-guide", found, share=1 / 5))
    for lang, label, code in [("ca", "und", "cat"), ("fr", "fra", "fra"), ("it", "und", "ita"), ("de", "und", "deu")]:
        pages = sorted(glob.glob(os.path.join(debian, f"maint-guide-{lang}/usr/share/doc/maint-guide-{lang}/html/*.html")))
        found = (s for page in pages for p in paragraphs(html_text(page)) for s in sentences(p) if speaks(s, code))
        c.add(label, "maint-guide", capped("maint-guide", found, share=1 / 4))
    pages = sorted(glob.glob(os.path.join(debian, "manpages-fr/usr/share/man/fr/man*/*.gz")))
    found = (s for page in pages for p in paragraphs(manpage_text(page)) for s in sentences(p) if speaks(s, "fra"))
    c.add("fra", "manpages", capped("manpages", found))
    faq = os.path.join(debian, "debian-faq-pt/usr/share/doc/debian/FAQ/debian-faq.pt.txt.gz")
    text = gzip.open(faq, "rt", encoding="utf-8").read()
    c.add("por", "debian-faq", capped("debian-faq", (s for p in paragraphs(text) for s in sentences(p) if speaks(s, "por"))))
    for lang, code, label in [("gl", "glg", "und"), ("ca", "cat", "und"), ("pt_BR", "por", "por"), ("pt", "por", "por")]:
        catalogues = sorted(glob.glob(os.path.join(debian, f"*/usr/share/locale/{lang}/LC_MESSAGES/*.mo")))
        found = (s for mo in catalogues for s in mo_messages(mo) if speaks(s, code))
        c.add(label, "messages", capped("messages", found, share=1 / 2))
    c.add("und", "code", capped("code", code_chunks(repo)))
    return c.units


def capped(source, texts, share=1.0):
    """At most CAPS[source] × share of the texts, chosen by hash (the same on every run)."""
    texts = list(dict.fromkeys(texts))
    cap = int(CAPS[source] * share)
    return sorted(texts, key=digest)[:cap] if len(texts) > cap else texts


def split_of(text):
    h = digest("split:" + text) % 100
    return "test" if h < TEST else "valid" if h < TEST + VALID else "train"


def short_text(text):
    """A test sentence as a 20-100 character text: itself, or cut at a word boundary."""
    if len(text) <= 100:
        return text if len(text) >= 20 else None
    limit = 20 + digest("cut:" + text) % 81
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut if len(cut) >= 20 else None


def main():
    shared, debian, out = sys.argv[1:4]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    units = collect(shared, debian, repo)
    os.makedirs(out, exist_ok=True)
    splits = defaultdict(list)
    for text, (label, source) in sorted(units.items(), key=lambda kv: digest(kv[0])):
        splits[split_of(text)].append({"text": text, "label": label, "source": source})
    # Small languages: repeat training examples up to MIN_TRAIN.
    by_label = defaultdict(list)
    for example in splits["train"]:
        by_label[example["label"]].append(example)
    train = []
    for label in sorted(by_label):
        examples = by_label[label]
        repeats = max(1, -(-MIN_TRAIN // len(examples)))
        train.extend(examples * repeats)
    splits["train"] = sorted(train, key=lambda e: digest(e["text"]))
    short = []
    for example in splits["test"]:
        if example["label"] in ("spa", "por", "eng", "fra"):
            text = short_text(example["text"])
            if text:
                short.append({**example, "text": text})
    splits["short"] = short
    counts = {}
    for name, examples in splits.items():
        with open(os.path.join(out, name + ".jsonl"), "w", encoding="utf-8") as f:
            for e in examples:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
        counts[name] = {
            "examples": len(examples),
            "labels": dict(sorted(Counter(e["label"] for e in examples).items())),
            "sources": dict(sorted(Counter(e["source"] for e in examples).items())),
        }
    with open(os.path.join(out, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(counts, f, indent=2, ensure_ascii=False)
    for name in ("train", "valid", "test", "short"):
        print(name, counts[name]["examples"], counts[name]["labels"])


if __name__ == "__main__":
    main()
