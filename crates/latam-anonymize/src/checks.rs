//! Check-digit validators, one per identifier, on normalized input (see [`crate::normalize`]).
//! Algorithms as documented by the issuing agencies and python-stdnum; each function checks the
//! shape (length, allowed characters, fixed parts) and the check digits.

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

fn all_digits(s: &str, len: usize) -> Option<Vec<u32>> {
    (s.len() == len).then(|| digits(s)).flatten()
}

/// Σ dᵢ·wᵢ, weights aligned from the left.
fn weighted(ds: &[u32], weights: &[u32]) -> u32 {
    ds.iter().zip(weights).map(|(d, w)| d * w).sum()
}

/// Σ dᵢ·wᵢ with the weights `2, 3, 4, ...` cycling up to `max` from the rightmost digit.
fn weighted_from_right(ds: &[u32], max: u32) -> u32 {
    ds.iter()
        .rev()
        .zip((2..=max).cycle())
        .map(|(d, w)| d * w)
        .sum()
}

fn same_digits(ds: &[u32]) -> bool {
    ds.windows(2).all(|w| w[0] == w[1])
}

/// Luhn (ISO/IEC 7812): every second digit from the right doubled, less 9 above 9; the total
/// is a multiple of 10.
pub fn luhn(s: &str) -> bool {
    let Some(ds) = digits(s) else { return false };
    if ds.len() < 2 {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Chile RUT/RUN: a 7–8 digit body and a check character `0-9K` (mod 11, weights 2..7).
pub fn cl_rut(s: &str) -> bool {
    if !s.is_ascii() || !(8..=9).contains(&s.len()) {
        return false;
    }
    let (body, dv) = s.split_at(s.len() - 1);
    let Some(ds) = digits(body) else { return false };
    let r = 11 - weighted_from_right(&ds, 7) % 11;
    let expected = match r {
        11 => '0',
        10 => 'K',
        r => char::from_digit(r, 10).expect("a digit"),
    };
    dv.starts_with(expected)
}

/// Argentina CUIT/CUIL: 11 digits, a known prefix, mod 11 with weights 5,4,3,2,7,6,5,4,3,2.
pub fn ar_cuit(s: &str) -> bool {
    let Some(ds) = all_digits(s, 11) else {
        return false;
    };
    if ![20, 23, 24, 27, 30, 33, 34, 50, 51, 55].contains(&(ds[0] * 10 + ds[1])) {
        return false;
    }
    let r = 11 - weighted(&ds[..10], &[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) % 11;
    match r {
        11 => ds[10] == 0,
        10 => false,
        r => ds[10] == r,
    }
}

/// The mod-11 check digit of CPF and CNPJ: (11 − Σ mod 11) mod 11 mod 10.
fn br_dv(values: &[u32], weights: &[u32]) -> u32 {
    (11 - weighted(values, weights) % 11) % 11 % 10
}

/// Brazil CPF: 11 digits, two check digits, not all the same digit.
pub fn br_cpf(s: &str) -> bool {
    let Some(ds) = all_digits(s, 11) else {
        return false;
    };
    !same_digits(&ds)
        && br_dv(&ds[..9], &[10, 9, 8, 7, 6, 5, 4, 3, 2]) == ds[9]
        && br_dv(&ds[..10], &[11, 10, 9, 8, 7, 6, 5, 4, 3, 2]) == ds[10]
}

/// Brazil CNPJ: 14 characters, the first 12 digits or (from July 2026) letters, valued
/// `ord(c) - 48`; two check digits.
pub fn br_cnpj(s: &str) -> bool {
    const W1: [u32; 12] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    const W2: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    if s.len() != 14
        || !s
            .bytes()
            .take(12)
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        || !s.bytes().skip(12).all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let values: Vec<u32> = s.bytes().map(|b| u32::from(b) - 48).collect();
    if same_digits(&values) {
        return false;
    }
    br_dv(&values[..12], &W1) == values[12] && br_dv(&values[..13], &W2) == values[13]
}

const CURP_ALPHABET: &str = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ";
const MX_STATES: [&str; 33] = [
    "AS", "BC", "BS", "CC", "CL", "CM", "CS", "CH", "DF", "DG", "GT", "GR", "HG", "JC", "MC", "MN",
    "MS", "NT", "NL", "OC", "PL", "QT", "QR", "SP", "SL", "SR", "TC", "TS", "TL", "VZ", "YN", "ZS",
    "NE",
];

/// Four-letter starts that RENAPO never issues, being words (Instructivo Normativo para la
/// Asignación de la CURP, anexo 2): the second letter becomes `X` instead.
const CURP_INCONVENIENT: [&str; 81] = [
    "BACA", "BAKA", "BUEI", "BUEY", "CACA", "CACO", "CAGA", "CAGO", "CAKA", "CAKO", "COGE", "COGI",
    "COJA", "COJE", "COJI", "COJO", "COLA", "CULO", "FALO", "FETO", "GETA", "GUEI", "GUEY", "JETA",
    "JOTO", "KACA", "KACO", "KAGA", "KAGO", "KAKA", "KAKO", "KOGE", "KOGI", "KOJA", "KOJE", "KOJI",
    "KOJO", "KOLA", "KULO", "LILO", "LOCA", "LOCO", "LOKA", "LOKO", "MAME", "MAMO", "MEAR", "MEAS",
    "MEON", "MIAR", "MION", "MOCO", "MOKO", "MULA", "MULO", "NACA", "NACO", "PEDA", "PEDO", "PENE",
    "PIPI", "PITO", "POPO", "PUTA", "PUTO", "QULO", "RATA", "ROBA", "ROBE", "ROBO", "RUIN", "SENO",
    "TETA", "VACA", "VAGA", "VAGO", "VAKA", "VUEI", "VUEY", "WUEI", "WUEY",
];

/// The same for a person's RFC (SAT's table of inconvenient words): the last letter becomes
/// `X` instead.
const RFC_INCONVENIENT: [&str; 41] = [
    "BUEI", "BUEY", "CACA", "CACO", "CAGA", "CAGO", "CAKA", "CAKO", "COGE", "COJA", "COJE", "COJI",
    "COJO", "CULO", "FETO", "GUEY", "JOTO", "KACA", "KACO", "KAGA", "KAGO", "KAKA", "KOGE", "KOJO",
    "KULO", "MAME", "MAMO", "MEAR", "MEAS", "MEON", "MION", "MOCO", "MULA", "PEDA", "PEDO", "PENE",
    "PUTA", "PUTO", "QULO", "RATA", "RUIN",
];

fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn two(ds: &[u32], at: usize) -> u32 {
    ds[at] * 10 + ds[at + 1]
}

/// Mexico CURP: 18 characters — 4 letters (not an inconvenient word), birth date, sex, state,
/// 3 consonants, a homonym character (digit before 2000, letter after) and a check digit
/// (Σ val·(18−i) mod 10).
pub fn mx_curp(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if !s.is_ascii() || chars.len() != 18 {
        return false;
    }
    let letters = |r: std::ops::Range<usize>| chars[r].iter().all(char::is_ascii_uppercase);
    let vowel = matches!(chars[1], 'A' | 'E' | 'I' | 'O' | 'U' | 'X');
    let consonants = chars[13..16]
        .iter()
        .all(|c| c.is_ascii_uppercase() && !"AEIOU".contains(*c));
    let Some(date) = digits(&s[4..10]) else {
        return false;
    };
    let state: String = chars[11..13].iter().collect();
    let (yy, mm, dd) = (two(&date, 0), two(&date, 2), two(&date, 4));
    let century = if chars[16].is_ascii_digit() {
        1900
    } else {
        2000
    };
    let shape = letters(0..4)
        && !CURP_INCONVENIENT.contains(&&s[..4])
        && vowel
        && consonants
        && matches!(chars[10], 'H' | 'M' | 'X')
        && MX_STATES.contains(&state.as_str())
        && chars[16].is_ascii_alphanumeric();
    if !shape || !valid_date(century + yy, mm, dd) {
        return false;
    }
    let value = |c: char| CURP_ALPHABET.chars().position(|a| a == c).map(|p| p as u32);
    let mut sum = 0;
    for (i, &c) in chars[..17].iter().enumerate() {
        let Some(v) = value(c) else { return false };
        sum += v * (18 - i as u32);
    }
    chars[17].to_digit(10) == Some((10 - sum % 10) % 10)
}

const RFC_ALPHABET: &str = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ";

/// Mexico RFC: 13 characters for persons (4 letters, not an inconvenient word), 12 for companies
/// (3 letters), a date, a 2-character homoclave (`[1-9A-V][1-9A-Z]`: no zero, from SAT's
/// table) and a check character (mod 11 over the
/// alphabet `0-9A-N&O-Z Ñ`).
pub fn mx_rfc(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let head = match chars.len() {
        13 => 4,
        12 => 3,
        _ => return false,
    };
    let homoclave = |c: char, last: char| matches!(c, '1'..='9') || ('A'..=last).contains(&c);
    let start: String = chars[..head].iter().collect();
    if !chars[..head]
        .iter()
        .all(|c| c.is_ascii_uppercase() || *c == 'Ñ' || *c == '&')
        || (head == 4 && RFC_INCONVENIENT.contains(&start.as_str()))
        || !homoclave(chars[head + 6], 'V')
        || !homoclave(chars[head + 7], 'Z')
    {
        return false;
    }
    let date: String = chars[head..head + 6].iter().collect();
    let Some(d) = digits(&date) else { return false };
    // The century is not written: a date valid in either is accepted.
    if !valid_date(1900 + two(&d, 0), two(&d, 2), two(&d, 4))
        && !valid_date(2000 + two(&d, 0), two(&d, 2), two(&d, 4))
    {
        return false;
    }
    let value = |c: char| RFC_ALPHABET.chars().position(|a| a == c).map(|p| p as u32);
    let padded: Vec<char> = std::iter::repeat_n(' ', 13 - chars.len())
        .chain(chars[..chars.len() - 1].iter().copied())
        .collect();
    let mut sum = 0;
    for (i, &c) in padded.iter().enumerate() {
        let Some(v) = value(c) else { return false };
        sum += v * (13 - i as u32);
    }
    let check = (11 - sum % 11) % 11;
    chars[chars.len() - 1]
        == if check == 10 {
            'A'
        } else {
            char::from_digit(check, 10).expect("a digit")
        }
}

/// Colombia NIT: 7–15 digits and a check digit (mod 11, weights 3,7,13,17,... from the right);
/// a person's NIT is the cédula, which has 7 digits for many.
pub fn co_nit(s: &str) -> bool {
    const W: [u32; 15] = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71];
    let Some(ds) = digits(s) else { return false };
    if !(8..=16).contains(&ds.len()) {
        return false;
    }
    let (body, dv) = ds.split_at(ds.len() - 1);
    let r = body.iter().rev().zip(W).map(|(d, w)| d * w).sum::<u32>() % 11;
    dv[0] == if r < 2 { r } else { 11 - r }
}

/// Peru DNI with its check character (8 digits and `0-9` or `A-K`).
pub fn pe_dni_check(s: &str) -> bool {
    if !s.is_ascii() || s.len() != 9 {
        return false;
    }
    let Some(ds) = digits(&s[..8]) else {
        return false;
    };
    let c = (weighted(&ds, &[3, 2, 7, 6, 5, 4, 3, 2]) % 11) as usize;
    let check = s.as_bytes()[8];
    check == b"65432110987"[c] || check == b"KJIHGFEDCBA"[c]
}

/// Peru RUC: 11 digits, prefix 10, 15, 17 or 20, mod 11 check digit.
pub fn pe_ruc(s: &str) -> bool {
    let Some(ds) = all_digits(s, 11) else {
        return false;
    };
    [10, 15, 17, 20].contains(&two(&ds, 0))
        && (11 - weighted(&ds[..10], &[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) % 11) % 10 == ds[10]
}

/// Uruguay CI: 6–7 digits and a check digit (weights 2,9,8,7,6,3,4 on the number padded to 7).
pub fn uy_ci(s: &str) -> bool {
    let Some(ds) = digits(s) else { return false };
    if !(7..=8).contains(&ds.len()) {
        return false;
    }
    let (body, dv) = ds.split_at(ds.len() - 1);
    let padded: Vec<u32> = std::iter::repeat_n(0, 7 - body.len())
        .chain(body.iter().copied())
        .collect();
    (10 - weighted(&padded, &[2, 9, 8, 7, 6, 3, 4]) % 10) % 10 == dv[0]
}

/// Uruguay RUT: 12 digits `NN-NNNNNN-001-D` — a registration type 01–22, a number (not all
/// zeros), `001` and a check digit −Σ mod 11 (10 is never issued).
pub fn uy_rut(s: &str) -> bool {
    let Some(ds) = all_digits(s, 12) else {
        return false;
    };
    if !(1..=22).contains(&two(&ds, 0)) || &s[2..8] == "000000" || &s[8..11] != "001" {
        return false;
    }
    let r = (11 - weighted(&ds[..11], &[4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]) % 11) % 11;
    r != 10 && r == ds[11]
}

/// Ecuador's province codes: 01–24, 30 (registered abroad) and 50.
fn ec_province(ds: &[u32]) -> bool {
    matches!(two(ds, 0), 1..=24 | 30 | 50)
}

/// Ecuador cédula: 10 digits, a province, third digit 0–6 (6 since Guayas ran out of numbers
/// under 0960000000), mod 10 check digit.
pub fn ec_cedula(s: &str) -> bool {
    let Some(ds) = all_digits(s, 10) else {
        return false;
    };
    if !ec_province(&ds) || ds[2] > 6 {
        return false;
    }
    let sum: u32 = ds[..9]
        .iter()
        .zip([2, 1, 2, 1, 2, 1, 2, 1, 2])
        .map(|(d, w)| if d * w > 9 { d * w - 9 } else { d * w })
        .sum();
    (10 - sum % 10) % 10 == ds[9]
}

/// Ecuador RUC: 13 digits — a person's cédula + `001`, a company's number (third digit 9) with
/// its mod 11 check digit + `001`, or a public body's (third digit 6, or 9 for some) with its
/// own + `0001`. A third digit 6 is also a person's (a cédula of 6).
pub fn ec_ruc(s: &str) -> bool {
    let Some(ds) = all_digits(s, 13) else {
        return false;
    };
    if !ec_province(&ds) {
        return false;
    }
    let mod11 = |w: &[u32]| match 11 - weighted(&ds[..w.len()], w) % 11 {
        11 => 0,
        r => r,
    };
    let person = || s.ends_with("001") && ec_cedula(&s[..10]);
    let public = || s.ends_with("0001") && mod11(&[3, 2, 7, 6, 5, 4, 3, 2]) == ds[8];
    let company = || s.ends_with("001") && mod11(&[4, 3, 2, 7, 6, 5, 4, 3, 2]) == ds[9];
    match ds[2] {
        0..=5 => person(),
        6 => public() || person(),
        9 => company() || public(),
        _ => false,
    }
}

/// Venezuela RIF: a type letter `V E J P G`, 8 digits and a check digit.
pub fn ve_rif(s: &str) -> bool {
    if s.len() != 10 {
        return false;
    }
    let letter = match s.as_bytes()[0] {
        b'V' => 4,
        b'E' => 8,
        b'J' => 12,
        b'P' => 16,
        b'G' => 20,
        _ => return false,
    };
    let Some(ds) = digits(&s[1..]) else {
        return false;
    };
    let r = 11 - (letter + weighted(&ds[..8], &[3, 2, 7, 6, 5, 4, 3, 2])) % 11;
    ds[8] == if r >= 10 { 0 } else { r }
}

/// Paraguay RUC: the CI (5–8 digits; a company's 80xxxxxx) and a check digit (mod 11, weights
/// 2,3,... from the right).
pub fn py_ruc(s: &str) -> bool {
    let Some(ds) = digits(s) else { return false };
    if !(6..=9).contains(&ds.len()) {
        return false;
    }
    let (body, dv) = ds.split_at(ds.len() - 1);
    let r = 11 - weighted_from_right(body, 1000) % 11;
    dv[0] == if r > 9 { 0 } else { r }
}

/// Municipalities per department of Guatemala (01–22), for the CUI.
const GT_MUNICIPALITIES: [u32; 22] = [
    17, 8, 16, 16, 13, 14, 19, 8, 24, 21, 9, 30, 32, 21, 8, 17, 14, 5, 11, 11, 7, 17,
];

/// Guatemala CUI/DPI: 13 digits — 8 sequence digits, a check digit, department and municipality.
pub fn gt_cui(s: &str) -> bool {
    let Some(ds) = all_digits(s, 13) else {
        return false;
    };
    let (department, municipality) = (two(&ds, 9), two(&ds, 11));
    if !(1..=22).contains(&department)
        || municipality == 0
        || municipality > GT_MUNICIPALITIES[department as usize - 1]
    {
        return false;
    }
    weighted(&ds[..8], &[2, 3, 4, 5, 6, 7, 8, 9]) % 11 == ds[8]
}

/// Guatemala NIT: 1–11 digits (leading zeros aside) and a check character `0-9K` (−Σ mod 11,
/// weights 2,3,... from the right).
pub fn gt_nit(s: &str) -> bool {
    let s = s.trim_start_matches('0');
    if !s.is_ascii() || !(2..=12).contains(&s.len()) {
        return false;
    }
    let (body, dv) = s.split_at(s.len() - 1);
    let Some(ds) = digits(body) else { return false };
    let r = (11 - weighted_from_right(&ds, 1000) % 11) % 11;
    dv.starts_with(if r == 10 {
        'K'
    } else {
        char::from_digit(r, 10).expect("a digit")
    })
}

/// Dominican Republic cédula: 11 digits, Luhn.
pub fn do_cedula(s: &str) -> bool {
    s.len() == 11 && luhn(s)
}

/// Dominican Republic RNC: 9 digits, check digit ((10 − Σ mod 11) mod 9) + 1.
pub fn do_rnc(s: &str) -> bool {
    let Some(ds) = all_digits(s, 9) else {
        return false;
    };
    let r = weighted(&ds[..8], &[7, 9, 8, 6, 5, 4, 3, 2]) % 11;
    ((10 + 11 - r) % 11) % 9 + 1 == ds[8]
}

/// El Salvador DUI: 8 digits and a check digit (weights 9..2, mod 10).
pub fn sv_dui(s: &str) -> bool {
    let Some(ds) = all_digits(s, 9) else {
        return false;
    };
    (10 - weighted(&ds[..8], &[9, 8, 7, 6, 5, 4, 3, 2]) % 10) % 10 == ds[8]
}

/// Nicaragua cédula: municipality (3 digits), birth date DDMMYY, 4 digits and a check letter
/// (the 13 digits mod 23; unofficial but widely used).
pub fn ni_cedula(s: &str) -> bool {
    if !s.is_ascii() || s.len() != 14 {
        return false;
    }
    let Some(ds) = digits(&s[..13]) else {
        return false;
    };
    let (dd, mm) = (two(&ds, 3), two(&ds, 5));
    if !(1..=31).contains(&dd) || !(1..=12).contains(&mm) {
        return false;
    }
    let number: u64 = s[..13].parse().expect("13 digits");
    s.as_bytes()[13] == b"ABCDEFGHJKLMNPQRSTUVWXY"[(number % 23) as usize]
}

/// Cuba carné de identidad: 11 digits, a real birth date (YYMMDD, the 7th digit gives the
/// century: 9 → 1800s, 0–5 → 1900s, 6–8 → 2000s).
pub fn cu_ni(s: &str) -> bool {
    let Some(ds) = all_digits(s, 11) else {
        return false;
    };
    let century = match ds[6] {
        9 => 1800,
        0..=5 => 1900,
        _ => 2000,
    };
    valid_date(century + two(&ds, 0), two(&ds, 2), two(&ds, 4))
}

/// A payment card number: 13–19 digits, a known issuer prefix, Luhn.
pub fn payment_card(s: &str) -> bool {
    let Some(ds) = digits(s) else { return false };
    if !(13..=19).contains(&ds.len()) || !luhn(s) {
        return false;
    }
    let prefix = |n: usize| ds[..n].iter().fold(0, |acc, d| acc * 10 + d);
    matches!(ds[0], 4)                                   // Visa
        || (51..=55).contains(&prefix(2))                // Mastercard
        || (2221..=2720).contains(&prefix(4))            // Mastercard 2-series
        || matches!(prefix(2), 34 | 37)                  // American Express
        || matches!(prefix(2), 36 | 38 | 30)             // Diners
        || prefix(4) == 6011 || prefix(2) == 65          // Discover
        || matches!(prefix(4), 6062 | 3841)              // Hipercard
        || matches!(prefix(6), 401_178 | 401_179 | 431_274 | 438_935 | 457_631 | 457_632 | 504_175 | 506_699..=506_778 | 509_000..=509_999 | 627_780 | 636_297 | 636_368 | 650_031..=650_033) // Elo
        || matches!(prefix(6), 589_562)                  // Naranja
        || matches!(prefix(6), 604_201..=604_400 | 589_657) // Cabal
}

/// Argentina CBU: 22 digits in two blocks (bank + branch + check; account + check), each with a
/// mod 10 check digit, weights 3,1,7,9 cycling from the digit before the check leftwards.
pub fn ar_cbu(s: &str) -> bool {
    let Some(ds) = all_digits(s, 22) else {
        return false;
    };
    let check = |block: &[u32]| {
        let sum: u32 = block
            .iter()
            .rev()
            .zip([3, 1, 7, 9].iter().cycle())
            .map(|(d, w)| d * w)
            .sum();
        (10 - sum % 10) % 10
    };
    check(&ds[..7]) == ds[7] && check(&ds[8..21]) == ds[21]
}

/// IBAN (ISO 13616): country letters, 2 check digits, 11–30 alphanumeric characters of BBAN;
/// mod 97 of the rearranged number is 1.
pub fn iban(s: &str) -> bool {
    let b = s.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b[4..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Country calling codes of the region with the lengths of their national significant numbers.
const PHONE_PLANS: [(&str, &[usize]); 22] = [
    ("591", &[8]),       // Bolivia
    ("593", &[8, 9]),    // Ecuador
    ("595", &[7, 8, 9]), // Paraguay
    ("598", &[8]),       // Uruguay
    ("502", &[8]),       // Guatemala
    ("503", &[8]),       // El Salvador
    ("504", &[8]),       // Honduras
    ("505", &[8]),       // Nicaragua
    ("506", &[8]),       // Costa Rica
    ("507", &[7, 8]),    // Panama
    ("509", &[8]),       // Haiti
    ("51", &[8, 9]),     // Peru
    ("52", &[10, 11]),   // Mexico (11: the old mobile 1)
    ("53", &[8]),        // Cuba
    ("54", &[10, 11]),   // Argentina (11: mobile 9)
    ("55", &[10, 11]),   // Brazil
    ("56", &[9]),        // Chile
    ("57", &[10]),       // Colombia
    ("58", &[10]),       // Venezuela
    ("1809", &[7]),      // Dominican Republic
    ("1829", &[7]),
    ("1849", &[7]),
];

/// A phone number of the region in international format, normalized (`+`, digits and maybe
/// parentheses): a known calling code and a national number of the length its plan has.
/// Puerto Rico (+1 787/939) counts too.
pub fn phone_latam(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('+') else {
        return false;
    };
    let number: String = rest.chars().filter(|c| !matches!(c, '(' | ')')).collect();
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if let Some(nsn) = number
        .strip_prefix("1787")
        .or_else(|| number.strip_prefix("1939"))
    {
        return nsn.len() == 7;
    }
    PHONE_PLANS.iter().any(|(code, lengths)| {
        number
            .strip_prefix(code)
            .is_some_and(|nsn| lengths.contains(&nsn.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize;

    type Check = fn(&str) -> bool;

    /// Every identifier: the reference's synthetic example (valid), then the same number with
    /// each check character changed (invalid).
    const VALID: &[(&str, Check, &str)] = &[
        ("CL RUT", cl_rut, "23.456.781-0"),
        ("AR CUIT", ar_cuit, "20-34567891-4"),
        ("BR CPF", br_cpf, "384.951.276-28"),
        ("BR CNPJ", br_cnpj, "11.222.333/0001-81"),
        ("BR CNPJ alphanumeric", br_cnpj, "12.ABC.345/00FG-88"),
        ("MX CURP", mx_curp, "GOMA850101HDFRRN00"),
        ("MX RFC person", mx_rfc, "GOMA850101ABA"),
        ("MX RFC company", mx_rfc, "ABC0101011A8"),
        ("CO NIT", co_nit, "900.123.456-8"),
        ("PE DNI", pe_dni_check, "45678912-4"),
        ("PE RUC", pe_ruc, "20456789120"),
        ("UY CI", uy_ci, "4.567.891-1"),
        ("UY RUT", uy_rut, "214567890018"),
        ("EC cédula", ec_cedula, "171234567-5"),
        ("EC RUC person", ec_ruc, "1712345675001"),
        ("EC RUC company", ec_ruc, "1791234561001"),
        ("VE RIF", ve_rif, "J-12345670-9"),
        ("PY RUC", py_ruc, "4567890-1"),
        ("GT CUI", gt_cui, "2345 67899 0101"),
        ("GT NIT", gt_nit, "1234567-9"),
        ("DO cédula", do_cedula, "402-0012345-9"),
        ("DO RNC", do_rnc, "130123454"),
        ("SV DUI", sv_dui, "04567891-1"),
        ("NI cédula", ni_cedula, "001-150190-0012F"),
        ("CU carné", cu_ni, "85013012345"),
        ("card", payment_card, "4000001234567899"),
    ];

    #[test]
    fn reference_examples_are_valid() {
        for (name, check, example) in VALID {
            assert!(check(&normalize(example)), "{name}: {example}");
        }
    }

    #[test]
    fn a_wrong_check_character_is_refused() {
        // CU carné has no check digit (a date check instead): tested apart.
        for (name, check, example) in VALID.iter().filter(|v| v.0 != "CU carné") {
            let n: Vec<char> = normalize(example).chars().collect();
            // Where the check character is: last, but in a CUI (then department and
            // municipality) and an Ecuadorian RUC (then the establishment, 001).
            let at = match *name {
                "GT CUI" => 8,
                "EC RUC person" | "EC RUC company" => 9,
                _ => n.len() - 1,
            };
            // A Peruvian DNI's check is printed as a digit or as a letter: 4 and I are one.
            let same = |c: char| c == n[at] || (*name == "PE DNI" && c == 'I');
            for replacement in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                .chars()
                .filter(|&c| !same(c))
            {
                let mut mutated = n.clone();
                mutated[at] = replacement;
                let mutated: String = mutated.into_iter().collect();
                assert!(!check(&mutated), "{name}: {mutated} passes");
            }
        }
    }

    #[test]
    fn look_alikes_of_every_identifier_are_refused() {
        // For each type, every number that differs from a valid one in one body digit.
        // Mod-11 schemes with weights prime to 11 refuse them all; schemes that collapse the
        // check with `% 10`, Luhn, mod-10 and the date-only carné let some through.
        for (name, check, example) in VALID {
            let n: Vec<char> = normalize(example).chars().collect();
            let (mut tried, mut refused) = (0usize, 0usize);
            for i in 0..n.len() - 1 {
                if !n[i].is_ascii_digit() {
                    continue;
                }
                for d in '0'..='9' {
                    if d == n[i] {
                        continue;
                    }
                    let mut mutated = n.clone();
                    mutated[i] = d;
                    let mutated: String = mutated.into_iter().collect();
                    tried += 1;
                    refused += usize::from(!check(&mutated));
                }
            }
            let share = refused as f64 / tried as f64;
            // The carné has a date, not a check digit: the detector also demands its keyword.
            let floor = if *name == "CU carné" { 0.25 } else { 0.8 };
            assert!(
                share >= floor,
                "{name}: only {refused} of {tried} look-alikes refused"
            );
        }
    }

    #[test]
    fn single_digit_errors_in_the_body_are_caught() {
        // Mod-11 schemes with weights coprime to 11 and Luhn catch every single substitution.
        for (name, check, example) in [
            ("CL RUT", cl_rut as Check, "23.456.781-0"),
            ("AR CUIT", ar_cuit, "20-34567891-4"),
            ("card", payment_card, "4000001234567899"),
            ("DO cédula", do_cedula, "402-0012345-9"),
            ("GT NIT", gt_nit, "1234567-9"),
        ] {
            let n = normalize(example);
            for i in 2..n.len() - 1 {
                for d in '0'..='9' {
                    let mut chars: Vec<char> = n.chars().collect();
                    if chars[i] == d {
                        continue;
                    }
                    chars[i] = d;
                    let mutated: String = chars.into_iter().collect();
                    assert!(!check(&mutated), "{name}: {mutated} passes");
                }
            }
        }
    }

    #[test]
    fn any_string_gives_a_verdict_without_panicking() {
        // Multi-byte characters where digits are sliced, bytes below '0' where values are
        // computed: each used to panic in one of the validators.
        let checks: &[Check] = &[
            cl_rut,
            ar_cuit,
            br_cpf,
            br_cnpj,
            mx_curp,
            mx_rfc,
            co_nit,
            pe_dni_check,
            pe_ruc,
            uy_ci,
            uy_rut,
            ec_cedula,
            ec_ruc,
            ve_rif,
            py_ruc,
            gt_cui,
            gt_nit,
            do_cedula,
            do_rnc,
            sv_dui,
            ni_cedula,
            cu_ni,
            payment_card,
            ar_cbu,
            iban,
            luhn,
        ];
        for s in [
            "1234567Ñ",
            "AAAÑ850101HDFRRN00",
            "1234567É",
            "123456789012Ñ",
            "12345Ñ",
            "1122233300!*",
            "112223330001!*",
            "ÉÉÉÉÉÉÉÉÉ",
            "",
        ] {
            for check in checks {
                assert!(!check(s), "{s}");
            }
        }
    }

    #[test]
    fn look_alikes_are_refused() {
        // Numbers of the right length that are something else.
        assert!(!br_cpf("11111111111"), "all-same CPF");
        assert!(!br_cnpj("00000000000000"));
        assert!(!mx_curp("GOMA851301HDFRRN00"), "month 13");
        assert!(!mx_curp("GOMA850101HZZRRN00"), "no state ZZ");
        assert!(!ec_cedula("2512345678"), "province 25");
        assert!(!gt_cui("2345678990199"), "municipality 99");
        assert!(!cu_ni("85023012345"), "30 February");
        assert!(!ar_cuit("12345678901"), "prefix 12");
        assert!(!pe_ruc("99456789120"), "prefix 99");
        assert!(
            !payment_card("1234567812345670"),
            "Luhn-valid but no issuer"
        );
        assert!(!iban("BR1800360305000010009795493C1X"), "a letter changed");
        assert!(!ar_cbu("2850590940090418135202"), "block 2 check");
        assert!(!ar_cbu("2850590840090418135201"), "block 1 check");
    }

    #[test]
    fn phones_of_the_region() {
        for phone in [
            "+54 9 11 2345 6789",
            "+591 71234567",
            "+55 11 91234 5678",
            "+56 9 1234 5678",
            "+57 301 234 5678",
            "+506 8123 4567",
            "+53 5123 4567",
            "+1 809 555 0123",
            "+593 99 123 4567",
            "+503 7012 3456",
            "+502 5123 4567",
            "+509 3712 3456",
            "+504 9123 4567",
            "+52 55 1234 5678",
            "+505 8123 4567",
            "+507 6123 4567",
            "+595 981 123456",
            "+51 912 345 678",
            "+598 94 123 456",
            "+58 412 123 4567",
            "+1 787 555 0123",
        ] {
            assert!(phone_latam(&normalize(phone)), "{phone}");
        }
        for other in [
            "+44 20 7946 0958",
            "+1 212 555 0123",
            "+56 9 1234 567",
            "+55 11 9123",
        ] {
            assert!(!phone_latam(&normalize(other)), "{other}");
        }
    }

    #[test]
    fn payment_data() {
        // IBAN examples of the issuing schemes (Brazil, Costa Rica, Dominican Republic).
        assert!(iban("BR1800360305000010009795493C1"));
        assert!(iban("CR05015202001026284066"));
        assert!(iban("DO28BAGR00000001212453611324"));
        // python-stdnum's CBU example, and one built from its two check digits.
        assert!(ar_cbu("2850590940090418135201"));
        let block1 = "0170001";
        let block2 = "5400000000000";
        let dv = |b: &str| {
            let sum: u32 = b
                .chars()
                .rev()
                .zip([3, 1, 7, 9].iter().cycle())
                .map(|(c, w)| c.to_digit(10).unwrap() * w)
                .sum();
            (10 - sum % 10) % 10
        };
        let cbu = format!("{block1}{}{block2}{}", dv(block1), dv(block2));
        assert!(ar_cbu(&cbu), "{cbu}");
        assert!(!ar_cbu(&format!(
            "{block1}{}{block2}{}",
            (dv(block1) + 1) % 10,
            dv(block2)
        )));
    }
}
