//! A fast byte-level BPE encoder (the tiktoken approach: split with the pre-tokenizer's regex,
//! then merge byte pairs of each piece by rank) for the `tokenizer.json` files of Llama 3,
//! GPT-2 and their kin, giving the same ids as the `tokenizers` library: added tokens matched
//! in the raw text first, `ignore_merges` honoured, merges applied by their rank in the file.

use fancy_regex::Regex;
use latam_core::{BYTE_CHARS, byte_of};

use crate::split::Llama3Split;
use rustc_hash::FxHashMap;
use serde_json::Value;

/// GPT-2's pre-tokenizer, used by `ByteLevel` with `use_regex: true`.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// A byte-level BPE model read from a `tokenizer.json`.
pub struct ByteLevelBpe {
    split: Splitter,
    /// Token bytes → id.
    vocab: FxHashMap<Vec<u8>, u32>,
    /// (left id, right id) → (rank, merged id).
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// Id of each single byte.
    byte_ids: [u32; 256],
    ignore_merges: bool,
    /// Added tokens, longest first, matched in the raw text.
    added: Vec<(String, u32)>,
    /// Bytes an added token can begin with.
    added_first: [bool; 256],
}

/// The pre-tokenizer: Llama 3's written by hand, any other through the regex engine.
enum Splitter {
    Llama3(Llama3Split),
    Regex(Regex),
}

/// Why a `tokenizer.json` cannot use the fast encoder (the `tokenizers` library then runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl ByteLevelBpe {
    /// The encoder of a parsed `tokenizer.json`, if its normalizer, pre-tokenizer and model are
    /// those of a byte-level BPE.
    pub fn from_json(json: &Value) -> Result<Self, Unsupported> {
        let no = |why: &str| Unsupported(why.to_owned());
        if !json["normalizer"].is_null() {
            return Err(no("a normalizer"));
        }
        let model = &json["model"];
        if model["type"] != "BPE" {
            return Err(no("a model other than BPE"));
        }
        if model["byte_fallback"] == Value::Bool(true)
            || !model["continuing_subword_prefix"].is_null()
                && model["continuing_subword_prefix"] != ""
        {
            return Err(no("byte fallback or subword prefixes"));
        }
        let split = pre_tokenizer(&json["pre_tokenizer"])
            .ok_or_else(|| no("a pre-tokenizer other than a regex split followed by ByteLevel"))?;
        let decode = |token: &str| -> Option<Vec<u8>> { token.chars().map(byte_of).collect() };
        let mut vocab = FxHashMap::default();
        let mut by_string: FxHashMap<&str, u32> = FxHashMap::default();
        for (token, id) in model["vocab"]
            .as_object()
            .ok_or_else(|| no("no vocabulary"))?
        {
            let id = id.as_u64().ok_or_else(|| no("a non-numeric id"))? as u32;
            by_string.insert(token.as_str(), id);
            if let Some(bytes) = decode(token) {
                vocab.insert(bytes, id);
            }
        }
        let mut byte_ids = [0u32; 256];
        for (b, c) in BYTE_CHARS.iter().enumerate() {
            byte_ids[b] = *by_string
                .get(c.to_string().as_str())
                .ok_or_else(|| no("a vocabulary without every byte"))?;
        }
        let mut merge_ranks = FxHashMap::default();
        for (rank, merge) in model["merges"]
            .as_array()
            .ok_or_else(|| no("no merges"))?
            .iter()
            .enumerate()
        {
            let (left, right) = match merge {
                Value::String(s) => s.split_once(' ').ok_or_else(|| no("a malformed merge"))?,
                Value::Array(pair) if pair.len() == 2 => (
                    pair[0].as_str().ok_or_else(|| no("a malformed merge"))?,
                    pair[1].as_str().ok_or_else(|| no("a malformed merge"))?,
                ),
                _ => return Err(no("a malformed merge")),
            };
            let id = |t: &str| {
                by_string
                    .get(t)
                    .copied()
                    .ok_or_else(|| no("a merge of unknown tokens"))
            };
            let joined = format!("{left}{right}");
            merge_ranks.insert((id(left)?, id(right)?), (rank as u32, id(&joined)?));
        }
        let (added, added_first) = added_tokens(json).map_err(no)?;
        Ok(Self {
            split,
            vocab,
            merges: merge_ranks,
            byte_ids,
            ignore_merges: model["ignore_merges"] == Value::Bool(true),
            added,
            added_first,
        })
    }

    /// The ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) {
        let mut rest = text;
        while !rest.is_empty() {
            let (before, special) = self.next_added(rest);
            self.encode_ordinary(&rest[..before], out);
            match special {
                Some((len, id)) => {
                    out.push(id);
                    rest = &rest[before + len..];
                }
                None => break,
            }
        }
    }

    /// Where the first added token of `text` starts, with its length and id (the longest when
    /// several start there): one pass over the bytes, tokens tried only where one can begin.
    fn next_added(&self, text: &str) -> (usize, Option<(usize, u32)>) {
        let bytes = text.as_bytes();
        for (at, b) in bytes.iter().enumerate() {
            if !self.added_first[*b as usize] {
                continue;
            }
            if let Some((content, id)) = self
                .added
                .iter()
                .find(|(c, _)| bytes[at..].starts_with(c.as_bytes()))
            {
                return (at, Some((content.len(), *id)));
            }
        }
        (text.len(), None)
    }

    fn encode_ordinary(&self, text: &str, out: &mut Vec<u32>) {
        match &self.split {
            Splitter::Llama3(split) => {
                split.split(text, |piece| self.encode_piece(piece.as_bytes(), out));
            }
            Splitter::Regex(regex) => {
                let mut last = 0;
                for found in regex.find_iter(text) {
                    let Ok(found) = found else {
                        // The regex engine gave up (backtracking limit): the rest as one piece.
                        break;
                    };
                    if found.start() > last {
                        self.encode_piece(&text.as_bytes()[last..found.start()], out);
                    }
                    self.encode_piece(found.as_str().as_bytes(), out);
                    last = found.end();
                }
                if last < text.len() {
                    self.encode_piece(&text.as_bytes()[last..], out);
                }
            }
        }
    }

    /// One pre-token: its id when the vocabulary has it whole (`ignore_merges`), else its bytes
    /// merged pair by pair, lowest rank first.
    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.is_empty() {
            return;
        }
        if (self.ignore_merges || piece.len() == 1)
            && let Some(id) = self.vocab.get(piece)
        {
            out.push(*id);
            return;
        }
        let mut symbols: Vec<u32> = piece.iter().map(|b| self.byte_ids[*b as usize]).collect();
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..symbols.len().saturating_sub(1) {
                if let Some(&(rank, merged)) = self.merges.get(&(symbols[i], symbols[i + 1]))
                    && best.is_none_or(|(r, _, _)| rank < r)
                {
                    best = Some((rank, i, merged));
                }
            }
            let Some((_, i, merged)) = best else { break };
            symbols[i] = merged;
            symbols.remove(i + 1);
        }
        out.extend_from_slice(&symbols);
    }
}

/// Added tokens (longest first) and the bytes they can begin with.
type AddedTokens = (Vec<(String, u32)>, [bool; 256]);

/// The added tokens of a `tokenizer.json`, longest first, and the bytes they can begin with.
fn added_tokens(json: &Value) -> Result<AddedTokens, &'static str> {
    let mut added: Vec<(String, u32)> = Vec::new();
    for token in json["added_tokens"].as_array().into_iter().flatten() {
        if [&token["lstrip"], &token["rstrip"], &token["single_word"]]
            .iter()
            .any(|v| **v == Value::Bool(true))
            || token["normalized"] == Value::Bool(true) && token["special"] != Value::Bool(true)
        {
            return Err("added tokens with lstrip, rstrip, single_word or normalization");
        }
        let content = token["content"]
            .as_str()
            .ok_or("an added token without content")?;
        let id = token["id"].as_u64().ok_or("an added token without id")? as u32;
        added.push((content.to_owned(), id));
    }
    added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
    let mut added_first = [false; 256];
    for (content, _) in &added {
        if let Some(b) = content.as_bytes().first() {
            added_first[*b as usize] = true;
        }
    }
    Ok((added, added_first))
}

/// The split regex of a supported pre-tokenizer: `Sequence[Split(Regex, Isolated), ByteLevel
/// (use_regex: false)]`, or `ByteLevel(use_regex: true)` alone; no prefix space.
fn pre_tokenizer(value: &Value) -> Option<Splitter> {
    let byte_level =
        |v: &Value| v["type"] == "ByteLevel" && v["add_prefix_space"] != Value::Bool(true);
    match value["type"].as_str()? {
        "ByteLevel" if byte_level(value) && value["use_regex"] != Value::Bool(false) => {
            Regex::new(GPT2_PATTERN).ok().map(Splitter::Regex)
        }
        "Sequence" => {
            let steps = value["pretokenizers"].as_array()?;
            let [split, last] = steps.as_slice() else {
                return None;
            };
            let plain = split["type"] == "Split"
                && split["behavior"] == "Isolated"
                && split["invert"] != Value::Bool(true);
            if !plain || !byte_level(last) || last["use_regex"] == Value::Bool(true) {
                return None;
            }
            let pattern = split["pattern"]["Regex"].as_str()?;
            if pattern == crate::LLAMA3_PATTERN {
                return Some(Splitter::Llama3(Llama3Split::new()));
            }
            Regex::new(pattern).ok().map(Splitter::Regex)
        }
        _ => None,
    }
}
