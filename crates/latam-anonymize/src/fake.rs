//! Realistic synthetic values of every kind, valid by the same checks the detector applies:
//! for the labelled evaluation set and for `pseudonym` mode. A value is drawn from a template
//! (`d` digit, `x` digit 0–5, `L` letter, `C` consonant, `V` vowel, `w` letter or digit, `D` a
//! date YYMMDD, `E` a date DDMMYY, `?` a check character) and its check characters are found by
//! trying the alphabet until the validator accepts the whole.

use std::fmt::Write;

pub use latam_core::Rng;

use crate::checks;
use crate::detect::PiiType;
use crate::normalize;

struct Template {
    patterns: &'static [&'static str],
    checks: &'static str,
    valid: fn(&str) -> bool,
}

const DIGITS: &str = "0123456789";

fn template(kind: PiiType) -> Option<Template> {
    let t = |patterns, checks, valid| {
        Some(Template {
            patterns,
            checks,
            valid,
        })
    };
    match kind {
        PiiType::ClRut => t(
            &["dd.ddd.ddd-?", "d.ddd.ddd-?", "dddddddd-?"],
            "0123456789K",
            checks::cl_rut,
        ),
        PiiType::ArCuit => t(
            &[
                "20-dddddddd-?",
                "27-dddddddd-?",
                "30-dddddddd-?",
                "23dddddddd?",
            ],
            DIGITS,
            checks::ar_cuit,
        ),
        PiiType::BrCpf => t(&["ddd.ddd.ddd-??", "ddddddddd??"], DIGITS, checks::br_cpf),
        PiiType::BrCnpj => t(
            &["dd.ddd.ddd/0001-??", "dd.LLL.ddd/00ww-??", "dddddddd0001??"],
            DIGITS,
            checks::br_cnpj,
        ),
        PiiType::MxCurp => t(
            &["LVLLDHDFCCCd?", "LVLLDMJCCCCd?", "LVLLDHNLCCCd?"],
            DIGITS,
            checks::mx_curp,
        ),
        PiiType::MxRfc => t(&["LLLLDww?", "LLLDww?"], "0123456789A", checks::mx_rfc),
        PiiType::CoNit => t(&["9dd.ddd.ddd-?", "8ddddddd-?"], DIGITS, checks::co_nit),
        PiiType::PeDni => t(&["dddddddd-?"], DIGITS, checks::pe_dni_check),
        PiiType::PeRuc => t(&["20dddddddd?", "10dddddddd?"], DIGITS, checks::pe_ruc),
        PiiType::UyCi => t(&["d.ddd.ddd-?", "ddd.ddd-?"], DIGITS, checks::uy_ci),
        PiiType::UyRut => t(&["21dddddd001?", "21-dddddd-001-?"], DIGITS, checks::uy_rut),
        PiiType::EcCedula => t(&["17xdddddd?", "09xdddddd-?"], DIGITS, checks::ec_cedula),
        PiiType::EcRuc => t(&["17xdddddd?001", "179dddddd?001"], DIGITS, checks::ec_ruc),
        PiiType::VeRif => t(
            &["J-dddddddd-?", "V-dddddddd-?", "G-dddddddd-?"],
            DIGITS,
            checks::ve_rif,
        ),
        PiiType::PyRuc => t(&["ddddddd-?", "80dddddd-?"], DIGITS, checks::py_ruc),
        PiiType::GtCui => t(
            &["dddd dddd? 0101", "dddd dddd? 1502", "dddddddd?0901"],
            DIGITS,
            checks::gt_cui,
        ),
        PiiType::GtNit => t(&["dddddd-?", "ddddddd-?"], "0123456789K", checks::gt_nit),
        PiiType::DoCedula => t(
            &["402-ddddddd-?", "001-ddddddd-?"],
            DIGITS,
            checks::do_cedula,
        ),
        PiiType::DoRnc => t(&["1ddddddd?", "1-dd-ddddd-?"], DIGITS, checks::do_rnc),
        PiiType::SvDui => t(&["0ddddddd-?"], DIGITS, checks::sv_dui),
        PiiType::NiCedula => t(
            &["001-E-dddd?", "281-E-dddd?"],
            "ABCDEFGHJKLMNPQRSTUVWXY",
            checks::ni_cedula,
        ),
        PiiType::CuCi => t(&["Dxdddd"], DIGITS, checks::cu_ni),
        PiiType::Card => t(
            &[
                "4ddd dddd dddd ddd?",
                "55dd-dddd-dddd-ddd?",
                "4dddddddddddddd?",
            ],
            DIGITS,
            checks::payment_card,
        ),
        PiiType::Iban => t(
            &[
                "BR??dddddddddddddddddddddddC1",
                "CR??0ddddddddddddddddd",
                "DO??LLLLdddddddddddddddddddd",
            ],
            DIGITS,
            checks::iban,
        ),
        PiiType::ArCbu => t(&["ddddddd?ddddddddddddd?"], DIGITS, checks::ar_cbu),
        _ => None,
    }
}

fn fill(pattern: &str, rng: &mut Rng) -> String {
    const CONSONANTS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            'd' => out.push(char::from(b'0' + rng.below(10) as u8)),
            'x' => out.push(char::from(b'0' + rng.below(6) as u8)),
            'L' => out.push(char::from(b'A' + rng.below(26) as u8)),
            'C' => out.push(char::from(rng.pick(CONSONANTS))),
            'V' => out.push(char::from(rng.pick(b"AEIOU"))),
            'w' => out.push(char::from(rng.pick(b"0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"))),
            'D' | 'E' => {
                let (year, month, day) = (40 + rng.below(60), 1 + rng.below(12), 1 + rng.below(28));
                let (first, last) = if c == 'D' { (year, day) } else { (day, year) };
                let _ = write!(out, "{first:02}{month:02}{last:02}");
            }
            other => out.push(other),
        }
    }
    out
}

/// Tries every combination of check characters at the `?` places.
fn solve(filled: &str, alphabet: &str, valid: fn(&str) -> bool) -> Option<String> {
    let holes: Vec<usize> = filled
        .char_indices()
        .filter(|(_, c)| *c == '?')
        .map(|(i, _)| i)
        .collect();
    let letters: Vec<char> = alphabet.chars().collect();
    let combos = letters.len().pow(holes.len() as u32);
    (0..combos).find_map(|mut n| {
        let mut candidate: Vec<char> = filled.chars().collect();
        for &hole in &holes {
            candidate[hole] = letters[n % letters.len()];
            n /= letters.len();
        }
        let candidate: String = candidate.into_iter().collect();
        valid(&normalize(&candidate)).then_some(candidate)
    })
}

/// A valid, formatted value of a check-digit kind (identifiers, cards, IBAN, CBU), or `None`
/// for kinds without a template (e-mail, phone, IP, keyword documents: see [`contact`]).
pub fn identifier(kind: PiiType, rng: &mut Rng) -> Option<String> {
    let template = template(kind)?;
    for _ in 0..10_000 {
        let pattern = rng.pick(template.patterns);
        let filled = fill(pattern, rng);
        if let Some(value) = solve(&filled, template.checks, template.valid) {
            return Some(value);
        }
    }
    None
}

/// First and last names for synthetic people (e-mail addresses use them folded to ASCII).
const FIRST_NAMES: &[&str] = &[
    "Ana",
    "Juan",
    "María",
    "José",
    "Lucía",
    "Pedro",
    "Camila",
    "Diego",
    "Valentina",
    "João",
    "Fernanda",
    "Luis",
];
const LAST_NAMES: &[&str] = &[
    "González",
    "Silva",
    "Rodríguez",
    "Pérez",
    "Santos",
    "López",
    "Mamani",
    "Quispe",
    "Oliveira",
    "Fernández",
];

/// A name as the local part of an e-mail address: lower case, accents dropped.
fn email_part(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ã' | 'â' => 'a',
            'é' | 'ê' => 'e',
            'í' => 'i',
            'ó' | 'õ' | 'ô' => 'o',
            'ú' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            other => other,
        })
        .collect()
}

const DOMAINS: &[&str] = &[
    "gmail.com",
    "hotmail.com",
    "correo.cl",
    "uol.com.br",
    "yahoo.com.ar",
    "outlook.es",
    "terra.com.br",
    "unam.mx",
];

/// A phone number of a country of the region in international format.
const PHONES: &[&str] = &[
    "+54 9 11 dddd dddd",
    "+55 11 9dddd dddd",
    "+56 9 dddd dddd",
    "+57 3dd ddd dddd",
    "+52 55 dddd dddd",
    "+51 9dd ddd ddd",
    "+593 9d ddd dddd",
    "+598 9d ddd ddd",
    "+595 98d dddddd",
    "+591 7ddddddd",
    "+58 412 ddd dddd",
    "+506 8ddd dddd",
    "+502 5ddd dddd",
    "+503 7ddd dddd",
    "+504 9ddd dddd",
    "+505 8ddd dddd",
    "+507 6ddd dddd",
    "+53 5ddd dddd",
    "+1 809 ddd dddd",
    "+509 3ddd dddd",
];

/// Phone numbers in national format, with their country, as people write them.
const NATIONAL_PHONES: &[(&str, &str)] = &[
    ("BR", "(11) 9dddd-dddd"),
    ("BR", "(21) 9dddd-dddd"),
    ("AR", "011 15 dddd-dddd"),
    ("AR", "(0341) ddd-dddd"),
    ("MX", "55 dddd dddd"),
    ("CO", "3dd ddd dddd"),
    ("PE", "9dd ddd ddd"),
    ("CL", "(2) 2ddd dddd"),
    ("UY", "09d ddd ddd"),
    ("VE", "0412-ddd-dddd"),
    ("EC", "09d ddd dddd"),
    ("CR", "8ddd dddd"),
    ("GT", "5ddd dddd"),
    ("PY", "098d ddd ddd"),
    ("BO", "7ddd dddd"),
    ("DO", "(809) ddd-dddd"),
];

/// A phone number in national format, valid in its country by libphonenumber's metadata.
pub fn national_phone(rng: &mut Rng) -> String {
    loop {
        let (country, pattern) = rng.pick(NATIONAL_PHONES);
        let value = fill(pattern, rng);
        if crate::detect::national_phone(&value, Some(country)) {
            return value;
        }
    }
}

/// A value of a contact kind: e-mail, phone (international format), IP address.
pub fn contact(kind: PiiType, rng: &mut Rng) -> Option<String> {
    Some(match kind {
        PiiType::Email => {
            format!(
                "{}.{}{}@{}",
                email_part(rng.pick(FIRST_NAMES)),
                email_part(rng.pick(LAST_NAMES)),
                rng.below(100),
                rng.pick(DOMAINS)
            )
        }
        PiiType::Phone => {
            let pattern = rng.pick(PHONES);
            fill(pattern, rng)
        }
        PiiType::Ip => {
            if rng.below(4) == 0 {
                format!(
                    "2001:db8:{:x}::{:x}",
                    rng.below(0xffff),
                    1 + rng.below(0xfffe)
                )
            } else {
                format!(
                    "{}.{}.{}.{}",
                    1 + rng.below(222),
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                )
            }
        }
        _ => return None,
    })
}

/// A person's name.
pub fn name(rng: &mut Rng) -> String {
    format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES))
}

/// Any kind, as its detector would find it (`IdDocument` values are the number alone; the
/// keyword belongs to the sentence).
pub fn value(kind: PiiType, rng: &mut Rng) -> String {
    if kind == PiiType::Name {
        return name(rng);
    }
    identifier(kind, rng)
        .or_else(|| contact(kind, rng))
        .unwrap_or_else(|| {
            let pattern = rng.pick(&["dd.ddd.ddd", "d.ddd.ddd", "ddddddddd"]);
            fill(pattern, rng)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_yields_valid_values() {
        let mut rng = Rng::new(7);
        for kind in crate::detect::ALL_KINDS {
            for _ in 0..50 {
                let v = value(*kind, &mut rng);
                if let Some(t) = template(*kind) {
                    assert!((t.valid)(&normalize(&v)), "{kind:?}: {v}");
                }
            }
        }
    }
}
