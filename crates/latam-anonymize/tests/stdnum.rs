//! Our validators against an independent implementation, python-stdnum (a test oracle only,
//! never linked): `scripts/anonymize/stdnum_oracle.py` makes random, valid, mutated and
//! formatted numbers of every kind both cover (none of them made with our code) and gives
//! stdnum's verdict; each disagreement must be one that `docs/anonymize.md` ("Differential
//! test against python-stdnum") lists, with who is right.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use latam_anonymize::{checks, normalize};

type Check = fn(&str) -> bool;

/// The kinds, by the script's names, and our validator of each.
const KINDS: &[(&str, Check)] = &[
    ("cl_rut", checks::cl_rut),
    ("ar_cuit", checks::ar_cuit),
    ("ar_cbu", checks::ar_cbu),
    ("br_cpf", checks::br_cpf),
    ("br_cnpj", checks::br_cnpj),
    ("mx_curp", checks::mx_curp),
    ("mx_rfc", checks::mx_rfc),
    ("co_nit", checks::co_nit),
    ("pe_dni", checks::pe_dni_check),
    ("pe_ruc", checks::pe_ruc),
    ("uy_rut", checks::uy_rut),
    ("ec_cedula", checks::ec_cedula),
    ("ec_ruc", checks::ec_ruc),
    ("ve_rif", checks::ve_rif),
    ("py_ruc", checks::py_ruc),
    ("gt_nit", checks::gt_nit),
    ("do_cedula", checks::do_cedula),
    ("do_rnc", checks::do_rnc),
    ("cu_ci", checks::cu_ni),
    ("luhn", checks::luhn),
];

/// One line of the script: a number's kind and stdnum's verdicts.
struct Judged<'a> {
    kind: &'a str,
    /// `valid`, `invalid` or `listed` (valid by one of stdnum's lists of exceptions).
    stdnum: &'a str,
    /// stdnum's verdict with a difference the script names taken out (`-` for none).
    alt: &'a str,
}

/// A CUIT whose mod-11 remainder asks for a check digit of 10.
fn cuit_remainder_is_10(n: &str) -> bool {
    let weights = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = n
        .bytes()
        .zip(weights)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    11 - sum % 11 == 10
}

/// The documented disagreement this one is, if any (`n` normalized, `ours` our verdict).
fn documented(j: &Judged, n: &str, ours: bool) -> Option<&'static str> {
    let stdnum_only = j.stdnum != "invalid" && !ours;
    let bytes = n.as_bytes();
    match j.kind {
        "do_cedula" | "do_rnc" if j.stdnum == "listed" && !ours => {
            Some("on stdnum's list of numbers issued with a wrong check digit")
        }
        "br_cpf" if stdnum_only && bytes.windows(2).all(|w| w[0] == w[1]) => {
            Some("one repeated digit")
        }
        "ar_cuit" if stdnum_only && n.ends_with('9') && cuit_remainder_is_10(n) => {
            Some("check digit 9 where the remainder asks for 10")
        }
        "mx_curp"
            if stdnum_only
                && (!b"AEIOUX".contains(&bytes[1])
                    || bytes[13..16].iter().any(|b| b"AEIOU".contains(b))) =>
        {
            Some("second letter not a vowel or X, or a vowel among the internal consonants")
        }
        "mx_curp" if ours && j.stdnum == "invalid" && bytes[10] == b'X' && j.alt == "valid" => {
            Some("sex X")
        }
        "ec_ruc"
            if stdnum_only
                && (!n.ends_with("001")
                    || (matches!(bytes[2], b'6' | b'9') && !n.ends_with("0001"))) =>
        {
            Some("establishment other than 001 (0001 for a public body)")
        }
        "py_ruc" if stdnum_only && n.len() <= 5 => Some("fewer than 5 digits before the check"),
        "pe_dni" if stdnum_only && n.len() == 8 => Some("8 digits without the check character"),
        "luhn" if stdnum_only && n.len() == 1 => Some("a single digit"),
        _ => None,
    }
}

#[derive(Default)]
struct Tally {
    numbers: u64,
    stdnum_valid: u64,
    documented: BTreeMap<&'static str, u64>,
    unexplained: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
#[ignore = "needs python3 with python-stdnum (LATAM_PYTHON); run by .ci/run"]
fn validators_agree_with_python_stdnum() {
    let python = std::env::var("LATAM_PYTHON").unwrap_or_else(|_| "python3".into());
    let per_kind: u64 = std::env::var("LATAM_STDNUM_PER_KIND").map_or(100_000, |v| {
        v.parse().expect("LATAM_STDNUM_PER_KIND: a count")
    });
    let out = Command::new(python)
        .arg(repo().join("scripts/anonymize/stdnum_oracle.py"))
        .args(["--per-kind", &per_kind.to_string()])
        .output()
        .expect("run the oracle script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let ours: BTreeMap<&str, Check> = KINDS.iter().copied().collect();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [kind, number, stdnum, alt] = fields[..] else {
            panic!("a line of four fields: {line:?}");
        };
        let judged = Judged { kind, stdnum, alt };
        let n = normalize(number);
        let verdict = ours[kind](&n);
        let tally = tallies.entry(kind).or_default();
        tally.numbers += 1;
        tally.stdnum_valid += u64::from(stdnum != "invalid");
        if verdict == (stdnum != "invalid") {
            continue;
        }
        match documented(&judged, &n, verdict) {
            Some(why) => *tally.documented.entry(why).or_default() += 1,
            None => tally.unexplained.push(format!(
                "{number:?}: stdnum {stdnum}, ours {}",
                if verdict { "valid" } else { "invalid" }
            )),
        }
    }
    println!(
        "{:<10} {:>8} {:>13} {:>10} {:>12}",
        "kind", "numbers", "stdnum valid", "agree", "documented"
    );
    let mut failures = Vec::new();
    for (kind, _) in KINDS {
        let t = tallies.get(kind).expect("every kind is generated");
        let documented: u64 = t.documented.values().sum();
        let agree = t.numbers - documented - t.unexplained.len() as u64;
        println!(
            "{kind:<10} {:>8} {:>13} {:>10} {:>12}",
            t.numbers, t.stdnum_valid, agree, documented
        );
        for (why, count) in &t.documented {
            println!("    {count} documented: {why}");
        }
        assert!(t.numbers >= per_kind, "{kind}: {} numbers", t.numbers);
        assert!(
            t.stdnum_valid * 10 >= t.numbers,
            "{kind}: only {} of {} valid, the test would say little",
            t.stdnum_valid,
            t.numbers
        );
        if !t.unexplained.is_empty() {
            failures.push(format!(
                "{kind}: {} disagreements, e.g. {:?}",
                t.unexplained.len(),
                &t.unexplained[..t.unexplained.len().min(8)]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
