//! Stop words per language (ISO 639-3), for the Gopher "has stop words" rule.
//!
//! English is Gopher's own list; the others are the most frequent function words of the
//! language, chosen the same way (short, frequent, present in almost any running text).

/// The built-in stop words of a language, if there is a list for it.
pub fn stop_words(language: &str) -> Option<&'static [&'static str]> {
    Some(match language {
        "eng" => &["the", "be", "to", "of", "and", "that", "have", "with"],
        "spa" => &[
            "de", "la", "que", "el", "en", "y", "a", "los", "se", "del", "las", "un", "por", "con",
            "no", "una", "su", "para", "es", "al", "lo", "como",
        ],
        "por" => &[
            "de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "é", "com", "não", "uma",
            "os", "no", "se", "na", "por", "mais", "as", "dos", "como",
        ],
        "fra" => &[
            "le", "de", "un", "être", "et", "à", "il", "avoir", "ne", "je", "son", "que", "se",
            "qui", "ce", "dans", "en", "du", "elle", "au", "la", "les", "des", "est",
        ],
        "hat" => &[
            "nan", "ak", "pou", "li", "yo", "la", "ki", "se", "pa", "sou", "ou", "mwen", "nou",
            "gen", "ke", "te", "yon",
        ],
        _ => return None,
    })
}
