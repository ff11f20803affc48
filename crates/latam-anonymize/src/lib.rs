//! Personal data of Latin America and the Caribbean, found and redacted: national identifiers
//! validated by their check digits (a number with a wrong check digit is not that identifier),
//! identifiers without one only next to their keyword (`DNI`, `C.C.`, `cédula`, `CI`), e-mail
//! addresses, phone numbers of the region in international format, IP addresses, payment cards,
//! IBANs and Argentine CBUs.
//!
//! ```
//! use latam_anonymize::AnonymizeConfig;
//!
//! let anonymize = AnonymizeConfig::default().build();
//! let (text, found) = anonymize.redact("Mi CPF é 384.951.276-28 e o e-mail ana@exemplo.com.br.");
//! assert_eq!(text, "Mi CPF é [CPF] e o e-mail [EMAIL].");
//! // Byte offsets into the original text (`é` is two bytes).
//! assert_eq!((found[0].start, found[0].end), (10, 24));
//! ```

pub mod checks;
mod detect;
pub mod eval;
pub mod fake;

use latam_core::{Document, Step, Verdict};
use serde::{Deserialize, Serialize};

pub use detect::{ALL_KINDS, Finding, PiiType, find};

/// Strips the separators people write in identifiers (`.`, `-`, `/`, spaces, no-break spaces)
/// and upper-cases letters.
pub fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, '.' | '-' | '/' | ' ' | '\u{a0}' | '\u{202f}'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// How found data is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactMode {
    /// A tag naming the kind: `[CPF]`, `[EMAIL]` (readable, and models learn the slot).
    Tag,
    /// Every letter and digit becomes `*`, separators stay: `***.***.***-**`.
    Mask,
}

/// Settings of the `anonymize` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymizeConfig {
    /// `tag` or `mask`.
    pub mode: RedactMode,
    /// Kinds left as they are (e.g. `["ip"]`); every other kind is redacted.
    pub skip: Vec<PiiType>,
}

impl Default for AnonymizeConfig {
    fn default() -> Self {
        Self {
            mode: RedactMode::Tag,
            skip: Vec::new(),
        }
    }
}

impl AnonymizeConfig {
    /// Builds the step.
    pub fn build(&self) -> Anonymize {
        Anonymize {
            config: self.clone(),
        }
    }
}

/// The `anonymize` step: redacts the text and records what it found in `metadata.pii` as
/// `{type, start, end}` byte offsets into the text before redaction. It rejects nothing.
#[derive(Debug, Clone)]
pub struct Anonymize {
    config: AnonymizeConfig,
}

impl Anonymize {
    /// The redacted text and what was found (offsets into `text`).
    pub fn redact(&self, text: &str) -> (String, Vec<Finding>) {
        let found = find(text, &|kind| !self.config.skip.contains(&kind));
        if found.is_empty() {
            return (text.to_owned(), found);
        }
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for f in &found {
            out.push_str(&text[copied..f.start]);
            match self.config.mode {
                RedactMode::Tag => out.push_str(f.kind.tag()),
                RedactMode::Mask => out.extend(
                    text[f.start..f.end]
                        .chars()
                        .map(|c| if c.is_alphanumeric() { '*' } else { c }),
                ),
            }
            copied = f.end;
        }
        out.push_str(&text[copied..]);
        (out, found)
    }
}

impl Step for Anonymize {
    fn process(&self, doc: &mut Document) -> Verdict {
        let (text, found) = self.redact(&doc.text);
        doc.text = text;
        doc.metadata.insert(
            "pii".into(),
            serde_json::to_value(&found).expect("findings serialize"),
        );
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> String {
        AnonymizeConfig::default().build().redact(text).0
    }

    #[test]
    fn identifiers_in_sentences() {
        let cases = [
            (
                "Mi RUT es 23.456.781-0 y vivo en Arica.",
                "Mi RUT es [RUT] y vivo en Arica.",
            ),
            (
                "CUIT 20-34567891-4, responsable inscripto.",
                "CUIT [CUIT], responsable inscripto.",
            ),
            (
                "CNPJ 12.ABC.345/00FG-88 (novo formato).",
                "CNPJ [CNPJ] (novo formato).",
            ),
            ("Su CURP es GOMA850101HDFRRN00.", "Su CURP es [CURP]."),
            ("RFC: GOMA850101ABA", "RFC: [RFC]"),
            (
                "NIT 900.123.456-8 de la empresa.",
                "NIT [NIT] de la empresa.",
            ),
            ("DNI 45678912-4, Lima.", "DNI [DNI], Lima."),
            ("RUC 20456789120.", "RUC [RUC]."),
            (
                "Cédula 171234567-5 del titular.",
                "Cédula [CEDULA] del titular.",
            ),
            ("RIF J-12345670-9.", "RIF [RIF]."),
            ("DPI 2345 67899 0101.", "DPI [CUI]."),
            (
                "Cédula 402-0012345-9, Santo Domingo.",
                "Cédula [CEDULA], Santo Domingo.",
            ),
            (
                "Tarjeta 4000 0012 3456 7899 vence pronto.",
                "Tarjeta [CARD] vence pronto.",
            ),
            (
                "Escribime a juan.perez@correo.com.ar o llamame al +54 9 11 2345 6789.",
                "Escribime a [EMAIL] o llamame al [PHONE].",
            ),
            (
                "Acceso desde 192.168.10.254 y 2001:db8::8a2e:370:7334.",
                "Acceso desde [IP] y [IP].",
            ),
            (
                "Su DNI N° 30.123.456 figura en el padrón.",
                "Su DNI N° [ID] figura en el padrón.",
            ),
            ("C.C. 1.020.304.050 de Bogotá.", "C.C. [ID] de Bogotá."),
            ("cédula V-12.345.678", "cédula [ID]"),
        ];
        for (input, expected) in cases {
            assert_eq!(tags(input), expected, "{input}");
        }
    }

    #[test]
    fn numbers_that_are_not_personal_survive() {
        for text in [
            "La Ley 27.430 y el Decreto 1.170/2018 rigen desde el 1 de enero.",
            "Costó $ 45.999,00 o R$ 1.234,56; la población era de 1.234.567 habitantes.",
            "ISBN 978-3-16-148410-0, artículo 62, altitud 3.640 m, 45,3 %.",
            "Expediente N° 12345-2020, versión 1.2.3.4.5, a las 10:30:00.",
            "Nacido el 12/03/1985, en el año 1999.",
            "El CPF 384.951.276-29 tiene un dígito errado.",
        ] {
            assert_eq!(tags(text), text);
        }
    }

    #[test]
    fn offsets_are_bytes_of_the_original_text() {
        let text = "Ñandú: correo ñandu@correo.com, RUT 23.456.781-0.";
        let anonymize = AnonymizeConfig::default().build();
        let (redacted, found) = anonymize.redact(text);
        assert_eq!(redacted, "Ñandú: correo [EMAIL], RUT [RUT].");
        assert_eq!(&text[found[0].start..found[0].end], "ñandu@correo.com");
        assert_eq!(&text[found[1].start..found[1].end], "23.456.781-0");
    }

    #[test]
    fn mask_mode_and_skips() {
        let config = AnonymizeConfig {
            mode: RedactMode::Mask,
            skip: vec![PiiType::Email],
        };
        let (text, found) = config.build().redact("CPF 384.951.276-28, ana@x.com");
        assert_eq!(text, "CPF ***.***.***-**, ana@x.com");
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn the_step_records_pii_in_metadata() {
        let mut doc = Document::new("d", "RUT 23.456.781-0");
        assert_eq!(
            AnonymizeConfig::default().build().process(&mut doc),
            Verdict::Keep
        );
        assert_eq!(doc.text, "RUT [RUT]");
        assert_eq!(
            doc.metadata["pii"],
            serde_json::json!([{"type": "cl_rut", "start": 4, "end": 16}])
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no crate and fails the
    /// same way every time.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn any_text_gives_valid_offsets_and_valid_utf8() {
        // Pieces that make identifiers, near-identifiers and multi-byte text.
        let pieces = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", "-", "/", " ", "@", ":", "+",
            "K", "A", "Ñ", "é", "日本", "😀", "\u{a0}", "\n", "RUT ", "DNI ", "C.C. ", "cédula ",
            "ana", ".com", "::", "(", ")",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for mode in [RedactMode::Tag, RedactMode::Mask] {
            let anonymize = AnonymizeConfig {
                mode,
                skip: Vec::new(),
            }
            .build();
            for _ in 0..3000 {
                let len = (rng.next() % 60) as usize;
                let text: String = (0..len)
                    .map(|_| pieces[(rng.next() % pieces.len() as u64) as usize])
                    .collect();
                let (redacted, found) = anonymize.redact(&text);
                let mut last_end = 0;
                for f in &found {
                    assert!(
                        f.start >= last_end && f.start < f.end && f.end <= text.len(),
                        "{text:?}: {f:?}"
                    );
                    assert!(
                        text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                        "{text:?}: {f:?}"
                    );
                    last_end = f.end;
                }
                if found.is_empty() {
                    assert_eq!(redacted, text);
                }
                if mode == RedactMode::Mask {
                    assert_eq!(
                        redacted.chars().count(),
                        text.chars().count(),
                        "masking keeps the length"
                    );
                }
            }
        }
    }
}
