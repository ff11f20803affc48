//! Finding personal data in text: candidate patterns, then validation (check digits, octet
//! ranges, issuer prefixes); identifiers without a check digit only next to their keyword.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::checks;
use crate::normalize;

/// The kinds of personal data found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiType {
    /// E-mail address.
    Email,
    /// Phone number in international format (`+CC ...`) of a country of the region.
    Phone,
    /// IPv4 or IPv6 address.
    Ip,
    /// Payment card number (Luhn and issuer prefix).
    Card,
    /// IBAN (mod 97).
    Iban,
    /// Argentina CBU.
    ArCbu,
    /// Chile RUT/RUN.
    ClRut,
    /// Argentina CUIT/CUIL.
    ArCuit,
    /// Brazil CPF.
    BrCpf,
    /// Brazil CNPJ (numeric or alphanumeric).
    BrCnpj,
    /// Mexico CURP.
    MxCurp,
    /// Mexico RFC.
    MxRfc,
    /// Colombia NIT.
    CoNit,
    /// Peru DNI with its check character.
    PeDni,
    /// Peru RUC.
    PeRuc,
    /// Uruguay CI.
    UyCi,
    /// Uruguay RUT.
    UyRut,
    /// Ecuador cédula.
    EcCedula,
    /// Ecuador RUC.
    EcRuc,
    /// Venezuela RIF.
    VeRif,
    /// Paraguay RUC.
    PyRuc,
    /// Guatemala CUI/DPI.
    GtCui,
    /// Guatemala NIT.
    GtNit,
    /// Dominican Republic cédula.
    DoCedula,
    /// Dominican Republic RNC.
    DoRnc,
    /// El Salvador DUI.
    SvDui,
    /// Nicaragua cédula.
    NiCedula,
    /// Cuba carné de identidad.
    CuCi,
    /// A person's name after an honorific or a self-introduction (`Sr.`, `Doña`, `Dr.`,
    /// `me llamo`, `meu nome é`), its first word a known first or last name. On by default
    /// (`names = false` turns it off).
    Name,
    /// A document number without a check digit, next to its keyword (`DNI`, `C.C.`, `cédula`,
    /// `CI`): Argentina and Peru DNI, Colombia CC, Venezuela, Costa Rica and Panama cédula,
    /// Bolivia CI, Honduras DNI.
    IdDocument,
}

/// Every kind, in declaration order.
pub const ALL_KINDS: &[PiiType] = &[
    PiiType::Email,
    PiiType::Phone,
    PiiType::Ip,
    PiiType::Card,
    PiiType::Iban,
    PiiType::ArCbu,
    PiiType::ClRut,
    PiiType::ArCuit,
    PiiType::BrCpf,
    PiiType::BrCnpj,
    PiiType::MxCurp,
    PiiType::MxRfc,
    PiiType::CoNit,
    PiiType::PeDni,
    PiiType::PeRuc,
    PiiType::UyCi,
    PiiType::UyRut,
    PiiType::EcCedula,
    PiiType::EcRuc,
    PiiType::VeRif,
    PiiType::PyRuc,
    PiiType::GtCui,
    PiiType::GtNit,
    PiiType::DoCedula,
    PiiType::DoRnc,
    PiiType::SvDui,
    PiiType::NiCedula,
    PiiType::CuCi,
    PiiType::IdDocument,
    PiiType::Name,
];

impl PiiType {
    /// The placeholder written in `tag` mode: `[CPF]`, `[EMAIL]`, ...
    pub fn tag(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::Ip => "[IP]",
            Self::Card => "[CARD]",
            Self::Iban => "[IBAN]",
            Self::ArCbu => "[CBU]",
            Self::ClRut | Self::UyRut => "[RUT]",
            Self::ArCuit => "[CUIT]",
            Self::BrCpf => "[CPF]",
            Self::BrCnpj => "[CNPJ]",
            Self::MxCurp => "[CURP]",
            Self::MxRfc => "[RFC]",
            Self::CoNit | Self::GtNit => "[NIT]",
            Self::PeDni => "[DNI]",
            Self::PeRuc | Self::EcRuc | Self::PyRuc => "[RUC]",
            Self::UyCi | Self::CuCi => "[CI]",
            Self::EcCedula | Self::DoCedula | Self::NiCedula => "[CEDULA]",
            Self::VeRif => "[RIF]",
            Self::GtCui => "[CUI]",
            Self::DoRnc => "[RNC]",
            Self::SvDui => "[DUI]",
            Self::IdDocument => "[ID]",
            Self::Name => "[NAME]",
        }
    }
}

/// One piece of personal data: its kind and byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: PiiType,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// How a match is confirmed.
enum Check {
    /// The pattern is enough (e-mail, a number next to its keyword).
    Pattern,
    /// A validator of the normalized match (check digits).
    Normalized(fn(&str) -> bool),
    /// A validator of the match in its text (`text`, `start`, `end`).
    InContext(fn(&str, usize, usize) -> bool),
    /// A name whose first word is a known first or last name.
    KnownName,
    /// A phone number in national format, valid by libphonenumber's metadata for the
    /// document's country (or any country of the region); the detector wants a phone keyword.
    NationalPhone,
}

/// A pattern and the validation of what it matches.
struct Detector {
    kind: PiiType,
    pattern: Regex,
    check: Check,
    /// The capture group holding the value (1 for keyword patterns, 0 otherwise).
    group: usize,
    /// Only after one of its keywords: kinds whose own check is weak (a date, a phone plan).
    needs_keyword: bool,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid built-in pattern")
}

/// All detectors, most specific first: a span found by an earlier one is not claimed again.
/// Word boundaries are ASCII (`(?-u:\b)`): Unicode ones would keep the regex engine off its
/// fast DFA on Spanish and Portuguese text; letters next to digits are rare in identifiers.
/// All patterns in one set: one pass over a text tells which detectors can match at all, and
/// only those run (most texts have no personal data).
static DETECTOR_SET: LazyLock<regex::RegexSet> = LazyLock::new(|| {
    regex::RegexSet::new(DETECTORS.iter().map(|d| d.pattern.as_str()))
        .expect("valid built-in patterns")
});

static DETECTORS: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    let d = |kind, pattern: String, check: fn(&str) -> bool| Detector {
        kind,
        pattern: re(&pattern),
        check: Check::Normalized(check),
        group: 0,
        needs_keyword: false,
    };
    let in_context = |pattern: &str, check| Detector {
        kind: PiiType::Ip,
        pattern: re(pattern),
        check: Check::InContext(check),
        group: 0,
        needs_keyword: false,
    };
    vec![
        Detector { kind: PiiType::Email, pattern: re(r"[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*\.[A-Za-z]{2,}"), check: Check::Pattern, group: 0, needs_keyword: false },
        d(PiiType::Iban, r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[0-9A-Z]{4}){2,7}(?: ?[0-9A-Z]{1,4})?(?-u:\b)".into(), checks::iban),
        d(PiiType::MxCurp, r"(?-u:\b)[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[0-9A-Z]\d(?-u:\b)".into(), checks::mx_curp),
        d(PiiType::MxRfc, r"(?-u:\b)[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{2}[0-9A](?-u:\b)".into(), checks::mx_rfc),
        d(PiiType::BrCnpj, r"(?-u:\b)[0-9A-Z]{2}\.?[0-9A-Z]{3}\.?[0-9A-Z]{3}/?[0-9A-Z]{4}-?\d{2}(?-u:\b)".into(), checks::br_cnpj),
        d(PiiType::Card, r"(?-u:\b)\d(?:[ \-]?\d){12,18}(?-u:\b)".into(), checks::payment_card),
        d(PiiType::ArCbu, r"(?-u:\b)\d{22}(?-u:\b)".into(), checks::ar_cbu),
        d(PiiType::GtCui, r"(?-u:\b)\d{4} ?\d{5} ?\d{4}(?-u:\b)".into(), checks::gt_cui),
        d(PiiType::EcRuc, r"(?-u:\b)\d{13}(?-u:\b)".into(), checks::ec_ruc),
        d(PiiType::NiCedula, r"(?-u:\b)\d{3}-?\d{6}-?\d{4}[A-Y](?-u:\b)".into(), checks::ni_cedula),
        d(PiiType::UyRut, r"(?-u:\b)\d{2}-?\d{6}-?\d{3}-?\d(?-u:\b)".into(), checks::uy_rut),
        d(PiiType::BrCpf, r"(?-u:\b)\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?-u:\b)".into(), checks::br_cpf),
        d(PiiType::ArCuit, r"(?-u:\b)(?:20|23|24|27|30|33|34|50|51|55)-?\d{8}-?\d(?-u:\b)".into(), checks::ar_cuit),
        d(PiiType::PeRuc, r"(?-u:\b)(?:10|15|17|20)\d{9}(?-u:\b)".into(), checks::pe_ruc),
        d(PiiType::DoCedula, r"(?-u:\b)\d{3}-?\d{7}-?\d(?-u:\b)".into(), checks::do_cedula),
        d(PiiType::VeRif, r"(?-u:\b)[VEJPG]-?\d{8}-?\d(?-u:\b)".into(), checks::ve_rif),
        d(PiiType::ClRut, r"(?-u:\b)\d{1,2}\.?\d{3}\.?\d{3}-[\dkK](?-u:\b)|(?-u:\b)\d{7,8}-[\dkK](?-u:\b)".into(), checks::cl_rut),
        // A 7-digit NIT body is written with separators (`1.234.567-8`); undotted, `1234567-8` is
        // more often a Guatemalan NIT or a Paraguayan RUC.
        d(PiiType::CoNit, r"(?-u:\b)\d{1,3}[.\- ]\d{3}[.\- ]\d{3}-\d(?-u:\b)|(?-u:\b)\d{8,15}-\d(?-u:\b)".into(), checks::co_nit),
        d(PiiType::EcCedula, r"(?-u:\b)\d{9}-?\d(?-u:\b)".into(), checks::ec_cedula),
        d(PiiType::PeDni, r"(?-u:\b)\d{8}-[0-9A-K](?-u:\b)".into(), checks::pe_dni_check),
        d(PiiType::UyCi, r"(?-u:\b)(?:\d\.?)?\d{3}\.?\d{3}-\d(?-u:\b)".into(), checks::uy_ci),
        d(PiiType::SvDui, r"(?-u:\b)\d{8}-\d(?-u:\b)".into(), checks::sv_dui),
        d(PiiType::GtNit, r"(?-u:\b)\d{5,10}-[\dK](?-u:\b)".into(), checks::gt_nit),
        d(PiiType::PyRuc, r"(?-u:\b)\d{5,8}-\d(?-u:\b)".into(), checks::py_ruc),
        d(PiiType::DoRnc, r"(?-u:\b)\d-?\d{2}-?\d{5}-?\d(?-u:\b)".into(), checks::do_rnc),
        // A Cuban carné has no check digit, only a date.
        Detector { needs_keyword: true, ..d(PiiType::CuCi, r"(?-u:\b)\d{11}(?-u:\b)".into(), checks::cu_ni) },
        in_context(r"(?-u:\b)(?:\d{1,3}\.){3}\d{1,3}(?-u:\b)", is_ipv4),
        in_context(r"(?i)(?:(?-u:\b)[0-9a-f]{1,4})?(?::{1,2}[0-9a-f]{1,4}){2,7}(?:::)?", is_ipv6),
        d(PiiType::Phone, r"\+\d{1,3}[ \-.]?(?:\(?\d{1,4}\)?[ \-.]?){2,5}\d{2,4}(?-u:\b)".into(), checks::phone_latam),
        Detector {
            kind: PiiType::Phone,
            pattern: re(r"(?:\(\d{1,4}\) ?|(?-u:\b)\d{1,4}[ .\-])(?:\d{2,5}[ .\-]?){1,3}\d{2,5}(?-u:\b)"),
            check: Check::NationalPhone,
            group: 0, needs_keyword: true,
        },
        Detector {
            kind: PiiType::IdDocument,
            pattern: re(concat!(
                r"(?i)(?-u:\b)(?:D\.?\s?N\.?\s?I\.?|documento(?:\s+nacional)?(?:\s+de\s+identidad)?|c[ée]dula(?:\s+de\s+(?:identidad|ciudadan[íi]a))?|C\.\s?C\.|CC|C\.\s?I\.|CI|carn[ée]t?)",
                // An abbreviation of "number" may stand between: N.º, Nº, N°, No., nro., núm.,
                // número, n., # (Spanish and Portuguese).
                r"(?:\s*:?\s+(?:n\s?\.?\s?[°ºo]\.?|n[úu]m(?:ero|\.)?|nro\.?|n\.)|\s*#)?\s*:?\s*",
                r"(?-i:([VE]-?\d{1,2}\.?\d{3}\.?\d{3}|\d{4}-\d{4}-\d{5}|\d{1,2}-\d{1,4}-\d{1,6}|\d{1,3}(?:\.\d{3}){1,3}|\d{5,10}))",
                r"(?-u:\b)"
            )),
            check: Check::Pattern,
            group: 1, needs_keyword: false,
        },
        Detector {
            kind: PiiType::Name,
            pattern: re(concat!(
                r"(?:(?-u:\b)(?:Sr|Sra|Srta|Sres|Dr|Dra|Lic|Ing|Prof|Profa)\.|(?-u:\b)(?:[Dd]on|[Dd]oña|[Dd]ona|[Ss]eñor|[Ss]eñora|[Ss]enhor|[Ss]enhora)|",
                r"(?-u:\b)(?:[Mm]e llamo|[Mm]i nombre es|[Mm]eu nome é|[Mm]e chamo))\s+",
                r"(\p{Lu}\p{Ll}+(?:\s+(?:(?:de|del|da|do|dos|das|la|y|e)\s+)?\p{Lu}\p{Ll}+){0,3})"
            )),
            check: Check::KnownName,
            group: 1, needs_keyword: false,
        },
    ]
});

/// An IPv4 address, not inside a longer dotted number (a version, a section number).
fn is_ipv4(text: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    let dotted_before = text[..start].ends_with('.');
    let dotted_after =
        text[end..].starts_with('.') && text[end + 1..].starts_with(|c: char| c.is_ascii_digit());
    value.parse::<std::net::Ipv4Addr>().is_ok() && !dotted_before && !dotted_after
}

/// An IPv6 address with at least four hex digits (times such as 10:30:00 do not parse).
fn is_ipv6(text: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    value.parse::<std::net::Ipv6Addr>().is_ok()
        && value.chars().filter(char::is_ascii_hexdigit).count() >= 4
}

/// What "cédula" announces, with or without its accent.
const CEDULA: &[PiiType] = &[
    PiiType::UyCi,
    PiiType::EcCedula,
    PiiType::DoCedula,
    PiiType::NiCedula,
    PiiType::IdDocument,
];

/// Keywords people write before an identifier, and the kinds they announce.
const KEYWORDS: &[(&str, &[PiiType])] = &[
    ("RUT", &[PiiType::ClRut, PiiType::UyRut]),
    ("RUN", &[PiiType::ClRut]),
    ("CUIT", &[PiiType::ArCuit]),
    ("CUIL", &[PiiType::ArCuit]),
    ("CPF", &[PiiType::BrCpf]),
    ("CNPJ", &[PiiType::BrCnpj]),
    ("CURP", &[PiiType::MxCurp]),
    ("RFC", &[PiiType::MxRfc]),
    ("NIT", &[PiiType::CoNit, PiiType::GtNit]),
    ("DNI", &[PiiType::PeDni, PiiType::IdDocument]),
    ("RUC", &[PiiType::PeRuc, PiiType::EcRuc, PiiType::PyRuc]),
    ("RIF", &[PiiType::VeRif]),
    ("DPI", &[PiiType::GtCui]),
    ("CUI", &[PiiType::GtCui]),
    ("RNC", &[PiiType::DoRnc]),
    ("DUI", &[PiiType::SvDui]),
    ("CBU", &[PiiType::ArCbu]),
    ("IBAN", &[PiiType::Iban]),
    ("TARJETA", &[PiiType::Card]),
    ("CARTÃO", &[PiiType::Card]),
    ("CÉDULA", CEDULA),
    ("CEDULA", CEDULA),
    ("C.I.", &[PiiType::UyCi, PiiType::IdDocument]),
    ("CI", &[PiiType::UyCi, PiiType::IdDocument]),
    ("IDENTIDAD", &[PiiType::CuCi, PiiType::IdDocument]),
    ("CARNÉ", &[PiiType::CuCi, PiiType::IdDocument]),
    ("CARNET", &[PiiType::IdDocument]),
    ("DOCUMENTO", &[PiiType::IdDocument]),
    ("ELECTORAL", &[PiiType::DoCedula]),
    // Phones: the words and phrases that announce one in Spanish and Portuguese.
    ("TEL", &[PiiType::Phone]),
    ("TELF", &[PiiType::Phone]),
    ("TLF", &[PiiType::Phone]),
    ("TFNO", &[PiiType::Phone]),
    ("FONO", &[PiiType::Phone]),
    ("CELU", &[PiiType::Phone]),
    ("WHATS", &[PiiType::Phone]),
    ("WSP", &[PiiType::Phone]),
    ("WPP", &[PiiType::Phone]),
    ("ZAP", &[PiiType::Phone]),
    ("CONTACTO", &[PiiType::Phone]),
    ("CONTATO", &[PiiType::Phone]),
    ("LLAMAME", &[PiiType::Phone]),
    ("LLÁMENOS", &[PiiType::Phone]),
    ("LLAMENOS", &[PiiType::Phone]),
    ("LLÁMANOS", &[PiiType::Phone]),
    ("LLAMANOS", &[PiiType::Phone]),
    ("LLAMA AL", &[PiiType::Phone]),
    ("MARCAR", &[PiiType::Phone]),
    ("MARQUE", &[PiiType::Phone]),
    ("MARCÁ", &[PiiType::Phone]),
    ("ESCRÍBEME", &[PiiType::Phone]),
    ("ESCRIBEME", &[PiiType::Phone]),
    ("ESCRIBIME", &[PiiType::Phone]),
    ("ESCRÍBENOS", &[PiiType::Phone]),
    ("ESCRIBINOS", &[PiiType::Phone]),
    ("MI NÚMERO", &[PiiType::Phone]),
    ("MI NUMERO", &[PiiType::Phone]),
    ("MEU NÚMERO", &[PiiType::Phone]),
    ("MEU NUMERO", &[PiiType::Phone]),
    ("ME LIGA", &[PiiType::Phone]),
    ("LIGA PRA", &[PiiType::Phone]),
    ("LIGA PARA", &[PiiType::Phone]),
    ("LIGUEM", &[PiiType::Phone]),
    ("ME CHAMA", &[PiiType::Phone]),
    ("CHAMA NO", &[PiiType::Phone]),
    ("TEL.", &[PiiType::Phone]),
    ("TELÉFONO", &[PiiType::Phone]),
    ("TELEFONO", &[PiiType::Phone]),
    ("TELEFONE", &[PiiType::Phone]),
    ("CELULAR", &[PiiType::Phone]),
    ("CEL", &[PiiType::Phone]),
    ("MÓVIL", &[PiiType::Phone]),
    ("MOVIL", &[PiiType::Phone]),
    ("FONE", &[PiiType::Phone]),
    ("WHATSAPP", &[PiiType::Phone]),
    ("FAX", &[PiiType::Phone]),
    ("LLAMAR", &[PiiType::Phone]),
    ("LLAME", &[PiiType::Phone]),
    ("LLÁMAME", &[PiiType::Phone]),
    ("LIGUE", &[PiiType::Phone]),
    ("LIGAR", &[PiiType::Phone]),
];

/// First and last names of the region (Faker's lists, MIT; see `data/README.md`).
static NAMES: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../data/names.txt").lines().collect());

/// The region's countries, for phones in national format when a document's country is unknown.
const PHONE_REGIONS: [&str; 21] = [
    "AR", "BO", "BR", "CL", "CO", "CR", "CU", "DO", "EC", "SV", "GT", "HT", "HN", "MX", "NI", "PA",
    "PY", "PE", "UY", "VE", "PR",
];

/// A quantity written with thousands dots (`1.234.567`): never read as a phone.
static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{1,3}(?:\.\d{3})+$"));

/// A phone number in national format, valid in `country` (ISO 3166-1 alpha-2) or, without one,
/// in some country of the region.
pub(crate) fn national_phone(value: &str, country: Option<&str>) -> bool {
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=12).contains(&digits) || THOUSANDS.is_match(value) {
        return false;
    }
    let valid_in = |region: &str| {
        region.parse::<phonenumber::country::Id>().is_ok_and(|id| {
            phonenumber::parse(Some(id), value).is_ok_and(|n| phonenumber::is_valid(&n))
        })
    };
    match country {
        Some(c) if PHONE_REGIONS.contains(&c) => valid_in(c),
        _ => PHONE_REGIONS.iter().any(|r| valid_in(r)),
    }
}

/// How far before a value its keyword is looked for, in bytes.
const KEYWORD_WINDOW: usize = 48;

/// The text just before `start`, upper-cased, on a character boundary.
fn window_before(text: &str, start: usize) -> String {
    let mut from = start.saturating_sub(KEYWORD_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..start].to_uppercase()
}

/// Where `word` occurs in `window` as a whole word: the end of its last occurrence.
fn word_end(window: &str, word: &str) -> Option<usize> {
    window
        .match_indices(word)
        .filter(|(i, _)| {
            let before = window[..*i].chars().next_back();
            let after = window[i + word.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
        .map(|(i, _)| i + word.len())
        .last()
}

/// How strongly the keywords before a value announce its kind: 2 for the nearest keyword, 1
/// for others in the window, summed; `None` when the value is part of an ISBN.
fn announced(text: &str, start: usize, kind: PiiType) -> Option<u8> {
    let window = window_before(text, start);
    if let Some(end) = word_end(&window, "ISBN")
        && window[end..]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | ':' | 'X'))
    {
        return None;
    }
    let found: Vec<(usize, &[PiiType])> = KEYWORDS
        .iter()
        .filter_map(|(word, kinds)| word_end(&window, word).map(|end| (end, *kinds)))
        .collect();
    let nearest = found.iter().map(|(end, _)| *end).max();
    Some(
        found
            .iter()
            .filter(|(_, kinds)| kinds.contains(&kind))
            .map(|(end, _)| if Some(*end) == nearest { 2 } else { 1 })
            .sum(),
    )
}

/// A number glued to more digit groups (`978-3-16-148410-0`, `1.2.3.4.5`) is part of something
/// longer, not an identifier of its own.
fn embedded(text: &str, start: usize, end: usize) -> bool {
    let before = &text.as_bytes()[..start];
    let after = &text.as_bytes()[end..];
    let sep = |b: u8| matches!(b, b'.' | b'-' | b'/');
    (before.len() >= 2
        && sep(before[before.len() - 1])
        && before[before.len() - 2].is_ascii_digit())
        || (after.len() >= 2 && sep(after[0]) && after[1].is_ascii_digit())
}

struct Candidate {
    finding: Finding,
    announced: u8,
    priority: usize,
}

/// Finds the personal data of a text, non-overlapping and in order. Where several kinds
/// validate overlapping text (a 7-digit number with a check digit can be a Paraguayan RUC, a
/// Guatemalan NIT and a Salvadoran DUI), the one its keyword announces wins, then the longest,
/// then the more specific detector.
pub fn find(text: &str, country: Option<&str>, enabled: &dyn Fn(PiiType) -> bool) -> Vec<Finding> {
    let mut candidates: Vec<Candidate> = Vec::new();
    let possible = DETECTOR_SET.matches(text);
    for (priority, detector) in DETECTORS
        .iter()
        .enumerate()
        .filter(|(i, d)| possible.matched(*i) && enabled(d.kind))
    {
        for caps in detector.pattern.captures_iter(text) {
            let Some(m) = caps.get(detector.group) else {
                continue;
            };
            let (start, end) = (m.start(), m.end());
            // A required keyword is looked for first: it is cheaper than some checks.
            let keyword = if detector.needs_keyword {
                match announced(text, start, detector.kind) {
                    Some(score) if score > 0 => Some(score),
                    _ => continue,
                }
            } else {
                None
            };
            let ok = match detector.check {
                Check::Pattern => true,
                Check::Normalized(check) => {
                    !embedded(text, start, end) && check(&normalize(m.as_str()))
                }
                Check::InContext(check) => check(text, start, end),
                Check::KnownName => {
                    let first = m.as_str().split_whitespace().next().unwrap_or_default();
                    NAMES.contains(first)
                }
                Check::NationalPhone => national_phone(m.as_str(), country),
            };
            if !ok {
                continue;
            }
            let Some(announced) = keyword.or_else(|| announced(text, start, detector.kind)) else {
                continue;
            };
            candidates.push(Candidate {
                finding: Finding {
                    kind: detector.kind,
                    start,
                    end,
                },
                announced,
                priority,
            });
        }
    }
    candidates.sort_by_key(|c| (c.finding.start, c.priority));
    let mut found: Vec<Finding> = Vec::new();
    let mut i = 0;
    while i < candidates.len() {
        // A group: candidates overlapping the first or each other.
        let mut group_end = candidates[i].finding.end;
        let mut j = i + 1;
        while j < candidates.len() && candidates[j].finding.start < group_end {
            group_end = group_end.max(candidates[j].finding.end);
            j += 1;
        }
        let best = candidates[i..j]
            .iter()
            .max_by_key(|c| {
                (
                    c.announced,
                    c.finding.end - c.finding.start,
                    std::cmp::Reverse(c.priority),
                )
            })
            .expect("a group is not empty");
        found.push(best.finding);
        i = j;
    }
    found
}
