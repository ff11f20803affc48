//! The LDNOOBW lexicons with our context rules (`data/rules.toml`): text folding, one
//! Aho-Corasick automaton over every list, word boundaries, allowed phrases and clinical
//! contexts.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use serde::Deserialize;

/// The lists, by ISO 639-3 code of the documents they apply to.
const LISTS: [(&str, &str); 3] = [
    ("spa", include_str!("../data/ldnoobw/es.txt")),
    ("por", include_str!("../data/ldnoobw/pt.txt")),
    ("eng", include_str!("../data/ldnoobw/en.txt")),
];

/// Our rules over the lists.
const RULES: &str = include_str!("../data/rules.toml");

/// The languages with a list, in the order of [`LangSet`]'s bits.
pub const LANGUAGES: [&str; 3] = ["spa", "por", "eng"];

/// A set of lists, one bit per entry of [`LANGUAGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LangSet(u8);

impl LangSet {
    /// Every list.
    pub const ALL: Self = Self(0b111);

    /// The list of `code`, if there is one.
    pub fn of(code: &str) -> Option<Self> {
        LANGUAGES
            .iter()
            .position(|l| *l == code)
            .map(|i| Self(1 << i))
    }

    /// The union of two sets.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether no list is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

/// What an entry of a list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// An insult aimed at a person.
    Insult,
    /// A slur against a group.
    Slur,
    /// Swearing.
    Profanity,
    /// Sexual or pornographic language.
    Sexual,
    /// Instructions to harm.
    Violence,
    /// A body part or fluid: toxic only outside a clinical context.
    Anatomy,
}

impl Category {
    /// The name written to `metadata.toxicity_labels`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Insult => "insult",
            Self::Slur => "slur",
            Self::Profanity => "profanity",
            Self::Sexual => "sexual",
            Self::Violence => "violence",
            Self::Anatomy => "anatomy",
        }
    }

    /// A category of `rules.toml`; `ignored` is `None`.
    fn parse(name: &str, code: &str) -> Result<Option<Self>, String> {
        Ok(Some(match name {
            "insult" => Self::Insult,
            "slur" => Self::Slur,
            "profanity" => Self::Profanity,
            "sexual" => Self::Sexual,
            "violence" => Self::Violence,
            "anatomy" => Self::Anatomy,
            "ignored" => return Ok(None),
            _ => return Err(format!("{code}: unknown category `{name}`")),
        }))
    }
}

/// One pattern of the automaton (a folded string): what it is in each list, and whether it is
/// an allowed phrase or a clinical word.
#[derive(Debug, Clone, Default)]
struct Pattern {
    /// Its category in each list of [`LANGUAGES`]; `None`: not in that list, or ignored there.
    categories: [Option<Category>; 3],
    allow: bool,
    clinical: bool,
    /// Whether the first and last characters are letters or digits (then the match must start
    /// and end at a word boundary).
    word_start: bool,
    word_end: bool,
}

/// The lexicons, built once from the embedded lists and rules.
#[derive(Debug)]
pub struct Lexicon {
    automaton: AhoCorasick,
    patterns: Vec<Pattern>,
    window: usize,
}

/// What the lexicons found in a text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Matches counted, after the context rules.
    pub hits: usize,
    /// Words of the text (runs of letters and digits).
    pub words: usize,
    /// The categories of the counted matches, each once, in [`Category`] order.
    pub categories: Vec<Category>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    spa: ListRules,
    por: ListRules,
    eng: ListRules,
    common: Common,
    clinical: Clinical,
}

#[derive(Deserialize)]
struct ListRules {
    default: String,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(flatten)]
    categories: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Clinical {
    window_bytes: usize,
    context: Vec<String>,
}

/// Lower case without accents (`ñ` kept, `ç` to `c`), every run of whitespace one space.
/// Returns the folded text and its number of words (runs of letters and digits).
pub fn fold(text: &str, out: &mut String) -> usize {
    out.clear();
    out.reserve(text.len());
    let mut words = 0;
    let mut in_word = false;
    let mut in_space = false;
    for c in text.chars() {
        let folded = if c.is_ascii() {
            c.to_ascii_lowercase()
        } else if c.is_whitespace() {
            ' '
        } else {
            fold_char(c)
        };
        if folded == ' ' || folded.is_ascii_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
            in_word = false;
            continue;
        }
        in_space = false;
        let alnum = folded.is_alphanumeric();
        if alnum && !in_word {
            words += 1;
        }
        in_word = alnum;
        out.push(folded);
    }
    words
}

/// One non-ASCII character folded: lower case, Latin accents removed except on `ñ`.
fn fold_char(c: char) -> char {
    let lower = c.to_lowercase().next().unwrap_or(c);
    match lower {
        'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ý' | 'ÿ' => 'y',
        // Typographic hyphens and apostrophes, as the lists write them.
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' => '-',
        '\u{2019}' => '\'',
        other => other,
    }
}

fn folded(s: &str) -> String {
    let mut out = String::new();
    fold(s.trim(), &mut out);
    out
}

/// The patterns being built, by folded string.
#[derive(Default)]
struct Table {
    index: HashMap<String, usize>,
    patterns: Vec<Pattern>,
    strings: Vec<String>,
}

impl Table {
    /// The pattern of a folded string, added when new.
    fn get(&mut self, s: String) -> &mut Pattern {
        let next = self.patterns.len();
        let p = *self.index.entry(s.clone()).or_insert(next);
        if p == next {
            self.patterns.push(Pattern::default());
            self.strings.push(s);
        }
        &mut self.patterns[p]
    }
}

impl Lexicon {
    /// The lexicons of the binary.
    pub fn embedded() -> &'static Self {
        static EMBEDDED: LazyLock<Lexicon> =
            LazyLock::new(|| Lexicon::build().expect("the embedded lists and rules are valid"));
        &EMBEDDED
    }

    fn build() -> Result<Self, String> {
        let rules: Rules = toml::from_str(RULES).map_err(|e| e.to_string())?;
        let mut table = Table::default();
        for (i, ((code, list), rules)) in LISTS
            .iter()
            .zip([&rules.spa, &rules.por, &rules.eng])
            .enumerate()
        {
            let default = Category::parse(&rules.default, code)?;
            let mut named: HashMap<String, Option<Category>> = HashMap::new();
            for (name, terms) in &rules.categories {
                let category = Category::parse(name, code)?;
                for term in terms {
                    named.insert(folded(term), category);
                }
            }
            let entries: Vec<String> = list.lines().map(folded).filter(|s| !s.is_empty()).collect();
            if let Some(missing) = named.keys().find(|t| !entries.contains(t)) {
                return Err(format!("{code}: `{missing}` is not an entry of the list"));
            }
            for entry in entries {
                let category = named.get(&entry).copied().unwrap_or(default);
                table.get(entry).categories[i] = category;
            }
            for phrase in &rules.allow {
                table.get(folded(phrase)).allow = true;
            }
        }
        for phrase in &rules.common.allow {
            table.get(folded(phrase)).allow = true;
        }
        for word in &rules.clinical.context {
            table.get(folded(word)).clinical = true;
        }
        let Table {
            mut patterns,
            strings,
            ..
        } = table;
        for (pattern, s) in patterns.iter_mut().zip(&strings) {
            pattern.word_start = s.chars().next().is_some_and(char::is_alphanumeric);
            pattern.word_end = s.chars().next_back().is_some_and(char::is_alphanumeric);
        }
        let automaton = AhoCorasick::new(&strings).map_err(|e| e.to_string())?;
        Ok(Self {
            automaton,
            patterns,
            window: rules.clinical.window_bytes,
        })
    }

    /// Finds the entries of the lists in `langs` in `text`, with the context rules; `buffer`
    /// holds the folded text (reused between calls).
    pub fn scan(&self, text: &str, langs: LangSet, buffer: &mut String) -> Findings {
        let words = fold(text, buffer);
        let folded = buffer.as_str();
        let mut terms: Vec<(usize, usize, Category)> = Vec::new();
        let mut allowed: Vec<(usize, usize)> = Vec::new();
        let mut clinical: Vec<usize> = Vec::new();
        for m in self.automaton.find_overlapping_iter(folded) {
            let pattern = &self.patterns[m.pattern().as_usize()];
            let (start, end) = (m.start(), m.end());
            if (pattern.word_start
                && folded[..start]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric))
                || (pattern.word_end
                    && folded[end..]
                        .chars()
                        .next()
                        .is_some_and(char::is_alphanumeric))
            {
                continue;
            }
            if pattern.allow {
                allowed.push((start, end));
            }
            if pattern.clinical {
                clinical.push(start);
            }
            // The most severe category among the lists that apply (lists agree on most).
            if let Some(category) = (0..LANGUAGES.len())
                .filter(|&i| langs.has(i))
                .filter_map(|i| pattern.categories[i])
                .min()
            {
                terms.push((start, end, category));
            }
        }
        if terms.is_empty() {
            return Findings {
                words,
                ..Findings::default()
            };
        }
        // Longest match first at each start; a match inside a longer one counts once.
        terms.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut findings = Findings {
            words,
            ..Findings::default()
        };
        let mut covered_until = 0;
        for (start, end, category) in terms {
            if end <= covered_until {
                continue;
            }
            if allowed.iter().any(|&(a, b)| a <= start && end <= b) {
                continue;
            }
            if category == Category::Anatomy
                && clinical.iter().any(|&p| p.abs_diff(start) <= self.window)
            {
                continue;
            }
            covered_until = covered_until.max(end);
            findings.hits += 1;
            if !findings.categories.contains(&category) {
                findings.categories.push(category);
            }
        }
        findings.categories.sort_unstable();
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, lang: &str) -> Findings {
        Lexicon::embedded().scan(text, LangSet::of(lang).unwrap(), &mut String::new())
    }

    #[test]
    fn rules_name_only_entries_of_the_lists() {
        // Building checks every name of rules.toml against its list.
        assert!(Lexicon::build().is_ok(), "{:?}", Lexicon::build().err());
    }

    #[test]
    fn folding_ignores_case_accents_and_spacing_but_keeps_enye() {
        let mut out = String::new();
        assert_eq!(fold("  HIJO  de\n\tPUTA, Coño Ação ", &mut out), 5);
        assert_eq!(out, " hijo de puta, coño acao ");
    }

    #[test]
    fn words_boundaries_and_multiword_entries() {
        assert_eq!(scan("Eres un IMBÉCIL.", "spa").hits, 1);
        // "culo" inside "artículo" and "vehículo" is no match.
        assert_eq!(scan("El artículo 3 del vehículo.", "spa").hits, 0);
        // One multi-word entry counts once, not once per word inside it.
        let f = scan("¡Hijo de\nputa!", "spa");
        assert_eq!((f.hits, f.categories.clone()), (1, vec![Category::Insult]));
        assert_eq!(scan("vai tomar no cu", "por").hits, 1);
        assert_eq!(scan("puta puta", "spa").hits, 2);
    }

    #[test]
    fn lists_follow_the_language() {
        assert_eq!(scan("what a fucking mess", "eng").hits, 1);
        assert_eq!(scan("what a fucking mess", "spa").hits, 0);
        assert_eq!(scan("que merda", "por").hits, 1);
    }
}
