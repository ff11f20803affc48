//! The labelled evaluation: real sentences with synthetic personal data of every kind inserted
//! in natural Spanish and Portuguese phrases, beside numbers that are not personal (laws,
//! prices, populations, dates, ISBNs, articles, percentages, altitudes, file numbers) and must
//! survive. [`build`] makes the records, [`score`] measures an anonymizer on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Anonymize;
use crate::detect::{ALL_KINDS, Finding, PiiType};
use crate::fake::{Rng, value};

/// A span of text that must not be redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepSpan {
    /// What it is (`law`, `price`, ...).
    pub kind: String,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// One labelled record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The text.
    pub text: String,
    /// The personal data in it.
    pub pii: Vec<Finding>,
    /// Numbers that are not personal.
    pub keep: Vec<KeepSpan>,
}

/// Phrases that carry a value of a kind (`{}`), as people write them.
fn phrases(kind: PiiType) -> &'static [&'static str] {
    match kind {
        PiiType::Email => &[
            "Escríbame a {} para coordinar.",
            "Contato: {}.",
            "Enviar el formulario firmado a {} antes del lunes.",
        ],
        PiiType::Phone => &[
            "Llamar al {} después de las 18 horas.",
            "Meu WhatsApp é {}.",
            "Teléfono de contacto: {}.",
            "Qualquer coisa me liga no {} à noite.",
            "Llamame al {} cuando llegues.",
            "Escríbeme al WhatsApp {} y te paso la dirección.",
            "whats: {}",
            "Cel. {} (solo mensajes).",
            "Fono {}, horario de oficina.",
            "Contato: {}.",
            "Ligue para {} e agende.",
        ],
        PiiType::Ip => &[
            "El acceso se registró desde la IP {} a medianoche.",
            "O servidor {} caiu ontem.",
        ],
        PiiType::Card => &[
            "Pagó con la tarjeta {} y pidió factura.",
            "Cartão de crédito {} recusado.",
        ],
        PiiType::Iban => &[
            "Deposite en la cuenta IBAN {} a nombre del titular.",
            "Transferência para o IBAN {}.",
        ],
        PiiType::ArCbu => &["Transferir a la CBU {} antes del viernes."],
        _ => identifier_phrases(kind),
    }
}

/// Phrases that carry an identifier or a name (the contact kinds are in [`phrases`]).
fn identifier_phrases(kind: PiiType) -> &'static [&'static str] {
    match kind {
        PiiType::ClRut => &[
            "El contribuyente, RUT {}, presentó su declaración.",
            "Mi RUN es {} y vivo en Arica.",
            "RUT núm. {} del arrendatario.",
        ],
        PiiType::ArCuit => &[
            "Facturar a la CUIT {} por los servicios.",
            "CUIL del trabajador: {}.",
            "CUIT Nro. {} (monotributo).",
        ],
        PiiType::BrCpf => &[
            "Meu CPF é {} e moro em Salvador.",
            "Informe o CPF {} no cadastro.",
            "portador do CPF n.º {}, residente em Belém.",
        ],
        PiiType::BrCnpj => &[
            "A empresa, inscrita no CNPJ sob o nº {}, declarou falência.",
            "CNPJ {} (matriz).",
        ],
        PiiType::MxCurp => &[
            "Su CURP es {} según el registro.",
            "Presentó la CURP {} en la ventanilla.",
        ],
        PiiType::MxRfc => &[
            "RFC del emisor: {}.",
            "Dado de alta con el RFC {} en el SAT.",
        ],
        PiiType::CoNit => &[
            "La empresa con NIT {} ganó la licitación.",
            "NIT {}, régimen común.",
        ],
        PiiType::PeDni => &[
            "Identificado con DNI {} en Lima.",
            "El titular (DNI {}) firmó el contrato.",
        ],
        PiiType::PeRuc => &[
            "Razón social con RUC {} en Arequipa.",
            "RUC {}, contribuyente activo.",
            "con RUC N° {} y domicilio fiscal en Lima.",
        ],
        PiiType::UyCi => &[
            "La cédula {} figura en el padrón de Montevideo.",
            "Con C.I. {} se inscribió.",
        ],
        PiiType::UyRut => &["RUT uruguayo {} de la cooperativa.", "Empresa con RUT {}."],
        PiiType::EcCedula => &[
            "Ciudadana con cédula {} de Quito.",
            "Número de cédula: {}.",
            "con cédula No. {}, domiciliado en Cuenca.",
        ],
        PiiType::EcRuc => &["El RUC {} pertenece al comercio de Guayaquil.", "RUC {}."],
        PiiType::VeRif => &["Proveedor con RIF {} en Caracas.", "RIF: {}."],
        PiiType::PyRuc => &["Contribuyente con RUC {} de Asunción.", "RUC paraguayo {}."],
        PiiType::GtCui => &["Presentó su DPI {} en la municipalidad.", "CUI {}."],
        PiiType::GtNit => &["Factura a nombre de NIT {} en Guatemala.", "NIT: {}."],
        PiiType::DoCedula => &[
            "Su cédula {} está vigente en Santo Domingo.",
            "Cédula de identidad y electoral {}.",
        ],
        PiiType::DoRnc => &["La empresa con RNC {} fue sancionada.", "RNC {}."],
        PiiType::SvDui => &["Con DUI {} votó en San Salvador.", "DUI: {}."],
        PiiType::NiCedula => &[
            "Cédula nicaragüense {} de Managua.",
            "Identificado con cédula {}.",
        ],
        PiiType::CuCi => &[
            "Carné de identidad {} de La Habana.",
            "Su número de identidad es {}.",
        ],
        PiiType::Name => &[
            "La Sra. {} firmó el acta.",
            "Meu nome é {} e moro em Recife.",
        ],
        PiiType::IdDocument => &[
            "Su DNI N° {} figura en el padrón.",
            "Identificado con C.C. {} de Bogotá.",
            "Con cédula de identidad {} se presentó.",
            "CI {} LP, La Paz.",
            "identificado con DNI N.º {}, con domicilio en Lima.",
            "con CI Nº {} expedido en Cochabamba.",
            "C.C. No. {} de Medellín.",
            "DNI nro. {}.",
            "titular del documento número {}.",
        ],
        _ => &[],
    }
}

/// Non-personal numbers, by kind, with `#` for digits.
const KEEP: &[(&str, &[&str])] = &[
    (
        "law",
        &[
            "la Ley ##.###",
            "el Decreto ###/20##",
            "a Lei nº #.###/19##",
        ],
    ),
    ("price", &["$ ##.###,##", "R$ #.###,##", "US$ ###.###"]),
    (
        "population",
        &[
            "#.###.### habitantes",
            "##.### pessoas",
            "el contacto con #.###.### votantes",
        ],
    ),
    (
        "date",
        &["el ##/##/19##", "em ##/##/20##", "el # de marzo de 19##"],
    ),
    ("year", &["en 19##", "no ano de 20##"]),
    (
        "isbn",
        &["ISBN 978-#-##-######-#", "ISBN 978-##-####-###-#"],
    ),
    (
        "article",
        &[
            "el artículo ###",
            "o artigo ##",
            "el artículo N.º ##",
            "o artigo n.º ###",
            "la Resolución Nro. ###-20##",
            "el inciso núm. #",
        ],
    ),
    (
        "number",
        &[
            "la edición N° ###",
            "el boletín No. ####",
            "la casa # ####",
            "la llamada número ##",
            "los ### contactos",
            "la línea de contacto ### de la serie",
        ],
    ),
    ("percentage", &["un ##,# %", "##% dos votos"]),
    ("altitude", &["a #.### m de altitud", "a ### metros"]),
    (
        "file",
        &[
            "el Expediente N° #####-20##",
            "o processo nº #######-##.20##.#.##.####",
        ],
    ),
];

fn fill_digits(pattern: &str, rng: &mut Rng) -> String {
    pattern
        .chars()
        .map(|c| {
            if c == '#' {
                char::from(b'0' + rng.below(10) as u8)
            } else {
                c
            }
        })
        .collect()
}

/// `per_kind` records for every kind but names (measured on real text instead): a real
/// sentence, a phrase with the value, and a phrase of non-personal numbers, in a shuffled order.
pub fn build(sentences: &[&str], per_kind: usize, seed: u64) -> Vec<EvalRecord> {
    let mut rng = Rng::new(seed);
    let mut records = Vec::new();
    for &kind in ALL_KINDS.iter().filter(|&&k| k != PiiType::Name) {
        for _ in 0..per_kind {
            let real = sentences[rng.below(sentences.len())].trim();
            let phrase = rng.pick(phrases(kind));
            // Half the phones in national format.
            let value = if kind == PiiType::Phone && rng.below(2) == 0 {
                crate::fake::national_phone(&mut rng)
            } else {
                value(kind, &mut rng)
            };
            let (keep_kind, keep_patterns) = KEEP[rng.below(KEEP.len())];
            let keep_pattern = rng.pick(keep_patterns);
            let keep_text = fill_digits(keep_pattern, &mut rng);
            let keep_sentence = format!("Se menciona {keep_text} en el informe.");
            let mut text = String::new();
            let mut pii = Vec::new();
            let mut keep = Vec::new();
            let pii_first = rng.below(2) == 0;
            text.push_str(real);
            text.push(' ');
            for part in if pii_first { [0, 1] } else { [1, 0] } {
                if part == 0 {
                    let (before, after) = phrase.split_once("{}").expect("a placeholder");
                    text.push_str(before);
                    pii.push(Finding {
                        kind,
                        start: text.len(),
                        end: text.len() + value.len(),
                    });
                    text.push_str(&value);
                    text.push_str(after);
                } else {
                    let start = text.len() + "Se menciona ".len();
                    // The number part of the phrase: from its first digit to its last.
                    let first = keep_text.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
                    let last = keep_text
                        .rfind(|c: char| c.is_ascii_digit())
                        .map_or(keep_text.len(), |i| i + 1);
                    keep.push(KeepSpan {
                        kind: keep_kind.to_owned(),
                        start: start + first,
                        end: start + last,
                    });
                    text.push_str(&keep_sentence);
                }
                text.push(' ');
            }
            text.truncate(text.trim_end().len());
            records.push(EvalRecord { text, pii, keep });
        }
    }
    records
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindScore {
    /// Found with the right kind and span.
    pub true_positives: u64,
    /// Found where there is none of this kind.
    pub false_positives: u64,
    /// Missed.
    pub false_negatives: u64,
}

/// `part / whole`, 1 for an empty whole.
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

impl KindScore {
    /// TP / (TP + FP); 1 when nothing was found.
    pub fn precision(&self) -> f64 {
        share(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// TP / (TP + FN); 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        share(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

/// The result of an evaluation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Per kind.
    pub kinds: BTreeMap<PiiType, KindScore>,
    /// Non-personal numbers in the set, by kind.
    pub keep_total: BTreeMap<String, u64>,
    /// Those changed (overlapped by a finding), by kind.
    pub keep_changed: BTreeMap<String, u64>,
}

impl Report {
    /// Share of non-personal numbers changed.
    pub fn keep_changed_rate(&self) -> f64 {
        let total: u64 = self.keep_total.values().sum();
        let changed: u64 = self.keep_changed.values().sum();
        if total == 0 {
            0.0
        } else {
            changed as f64 / total as f64
        }
    }
}

/// Scores an anonymizer on labelled records. Only the kinds the records label are scored: a
/// finding of another kind (a name in a real sentence of a set without names) is no error.
pub fn score(anonymize: &Anonymize, records: &[EvalRecord]) -> Report {
    let labelled: std::collections::BTreeSet<PiiType> = records
        .iter()
        .flat_map(|r| r.pii.iter().map(|p| p.kind))
        .collect();
    let mut report = Report::default();
    for record in records {
        let (_, found) = anonymize.redact(&record.text);
        for gold in &record.pii {
            let hit = found.iter().any(|f| f == gold);
            let entry = report.kinds.entry(gold.kind).or_default();
            if hit {
                entry.true_positives += 1;
            } else {
                entry.false_negatives += 1;
            }
        }
        for f in found.iter().filter(|f| labelled.contains(&f.kind)) {
            if !record.pii.contains(f) {
                report.kinds.entry(f.kind).or_default().false_positives += 1;
            }
        }
        for keep in &record.keep {
            *report.keep_total.entry(keep.kind.clone()).or_default() += 1;
            if found
                .iter()
                .any(|f| f.start < keep.end && keep.start < f.end)
            {
                *report.keep_changed.entry(keep.kind.clone()).or_default() += 1;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AnonymizeConfig;

    #[test]
    fn gold_spans_hold_the_values() {
        let records = build(&["Había una vez un pueblo."], 3, 1);
        assert_eq!(records.len(), 3 * (ALL_KINDS.len() - 1));
        for r in &records {
            for p in &r.pii {
                assert!(r.text.is_char_boundary(p.start) && r.text.is_char_boundary(p.end));
            }
            for k in &r.keep {
                assert!(
                    r.text[k.start..k.end].starts_with(|c: char| c.is_ascii_digit()),
                    "{}",
                    &r.text[k.start..k.end]
                );
            }
        }
    }

    #[test]
    fn scoring_counts_hits_misses_and_changes() {
        let records = build(&["Había una vez un pueblo."], 20, 2);
        let report = score(&AnonymizeConfig::default().build().unwrap(), &records);
        let cpf = report.kinds[&PiiType::BrCpf];
        assert_eq!(cpf.true_positives + cpf.false_negatives, 20);
        assert!(
            !report.kinds.contains_key(&PiiType::Name),
            "names are not labelled in the set"
        );
        assert!(cpf.recall() > 0.9, "{cpf:?}");
        assert_eq!(
            report.keep_total.values().sum::<u64>(),
            20 * (ALL_KINDS.len() as u64 - 1)
        );
    }
}
