#!/usr/bin/env python3
"""Numbers for the differential test of latam-anonymize's validators, judged by python-stdnum.

Writes one line per number to standard output: `kind<TAB>number<TAB>verdict<TAB>alt`, where
`verdict` is stdnum's: `valid`, `invalid`, or `listed` (valid only because it is on one of
stdnum's lists of numbers issued with a wrong check digit), and `alt` is stdnum's verdict with a
difference named in `ALT` taken out (`-` elsewhere). The Rust test `crates/latam-anonymize/tests/stdnum.rs`
gives each number to our validator and compares.

The numbers are made without our code: random strings of each identifier's shape, valid
numbers completed by asking stdnum which check characters it accepts, and mutations of those
(one digit changed, two adjacent characters swapped, the check character changed, a character
dropped or added) and formatting variants (stdnum's own format, separators, lower case).
python-stdnum (LGPL) is a test oracle only: nothing of it is linked into or shipped with latam.

Usage: stdnum_oracle.py [--per-kind N] [--seed S]
"""

import argparse
import datetime
import multiprocessing
import random
import sys

from stdnum import luhn
from stdnum.ar import cbu, cuit
from stdnum.br import cnpj, cpf
from stdnum.cl import rut as cl_rut
from stdnum.co import nit as co_nit
from stdnum.cu import ni as cu_ni
from stdnum.do import cedula as do_cedula
from stdnum.do import rnc as do_rnc
from stdnum.ec import ci as ec_ci
from stdnum.ec import ruc as ec_ruc
from stdnum.gt import nit as gt_nit
from stdnum.mx import curp, rfc
from stdnum.pe import cui as pe_cui
from stdnum.pe import ruc as pe_ruc
from stdnum.py import ruc as py_ruc
from stdnum.uy import rut as uy_rut
from stdnum.ve import rif

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = DIGITS + LETTERS

rng = random.Random()


def digits(n):
    return "".join(rng.choice(DIGITS) for _ in range(n))


def letters(n, alphabet=LETTERS):
    return "".join(rng.choice(alphabet) for _ in range(n))


def date6(valid_share=0.8):
    """YYMMDD: a real date most of the time, any six digits otherwise."""
    if rng.random() < valid_share:
        day = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(200 * 366))
        return day.strftime("%y%m%d")
    return digits(6)


def often(share, usual, other):
    return usual() if rng.random() < share else other()


# Each kind: stdnum's validator, a body generator (`?` marks check characters), the alphabet
# of a check character, the separators both stdnum and latam strip, and whether stdnum
# upper-cases (so lower case is a formatting variant).
def cl_body():
    return digits(rng.choice([6, 7, 7, 8, 8, 8, 9])) + "?"


def cuit_body():
    prefix = often(0.85, lambda: rng.choice(["20", "23", "24", "27", "30", "33", "34", "50", "51", "55"]),
                   lambda: digits(2))
    return prefix + digits(8) + "?"


def curp_body():
    states = sorted(curp._valid_states)
    first = often(0.9, lambda: letters(1) + rng.choice("AEIOUX") + letters(2), lambda: letters(4))
    if rng.random() < 0.03:
        first = rng.choice(sorted(curp._name_blacklist))
    date = date6()
    sex = often(0.9, lambda: rng.choice("HMX"), lambda: letters(1))
    state = often(0.9, lambda: rng.choice(states), lambda: letters(2))
    consonants = often(0.9, lambda: letters(3, "BCDFGHJKLMNPQRSTVWXYZ"), lambda: letters(3))
    homonym = rng.choice(DIGITS) if rng.random() < 0.5 else rng.choice(LETTERS)
    return first + date + sex + state + consonants + homonym + "?"


def rfc_body():
    if rng.random() < 0.5:
        head = letters(3, LETTERS + "&Ñ")
    else:
        head = letters(4, LETTERS + "&Ñ")
        if rng.random() < 0.03:
            head = rng.choice(sorted(rfc._name_blacklist))
    homoclave = often(0.8, lambda: letters(1, "123456789ABCDEFGHIJKLMNOPQRSTUV") + letters(1, "123456789" + LETTERS),
                      lambda: letters(2, ALNUM))
    return head + date6() + homoclave + "?"


def uy_rut_body():
    prefix = often(0.8, lambda: "%02d" % rng.randint(1, 22), lambda: digits(2))
    establishment = often(0.8, lambda: "001", lambda: digits(3))
    return prefix + digits(6) + establishment + "?"


def ec_province():
    return often(0.9, lambda: "%02d" % rng.choice(list(range(1, 25)) + [30, 50]), lambda: digits(2))


def ec_ci_body():
    return ec_province() + rng.choice(DIGITS) + digits(6) + "?"


def ec_ruc_body():
    kind = rng.randrange(3)
    if kind == 0:  # a person: cédula and establishment
        return ec_province() + rng.choice("0123456") + digits(6) + "?" + often(0.8, lambda: "001", lambda: digits(3))
    if kind == 1:  # a company
        return ec_province() + "9" + digits(6) + "?" + often(0.8, lambda: "001", lambda: digits(3))
    return ec_province() + "6" + digits(5) + "?" + often(0.8, lambda: "0001", lambda: digits(4))


def cu_body():
    century = rng.choice(DIGITS)
    return date6(0.7) + century + digits(4)


def rif_body():
    return often(0.9, lambda: rng.choice("VEJPG"), lambda: letters(1)) + digits(8) + "?"


def gt_nit_body():
    zeros = "0" * rng.choice([0, 0, 0, 0, 1, 2])
    return zeros + digits(rng.randint(1, 12)) + "?"


KINDS = {
    "cl_rut": (cl_rut.is_valid, cl_body, DIGITS + "K", " -.", True),
    "ar_cuit": (cuit.is_valid, cuit_body, DIGITS, " -", False),
    "ar_cbu": (cbu.is_valid, lambda: digits(7) + "?" + digits(13) + "?", DIGITS, " -", False),
    "br_cpf": (cpf.is_valid, lambda: digits(9) + "??", DIGITS, " -.", False),
    "br_cnpj": (cnpj.is_valid, lambda: often(0.7, lambda: digits(12), lambda: letters(12, ALNUM)) + "??",
                DIGITS, " -./", True),
    "mx_curp": (curp.is_valid, curp_body, DIGITS, " -", True),
    "mx_rfc": (lambda n: rfc.is_valid(n, validate_check_digits=True), rfc_body, DIGITS + "A", " -", True),
    "co_nit": (co_nit.is_valid, lambda: digits(rng.randint(6, 16)) + "?", DIGITS, " -.", False),
    "pe_dni": (pe_cui.is_valid, lambda: digits(8) + "?", DIGITS + "ABCDEFGHIJK", " -", True),
    "pe_ruc": (pe_ruc.is_valid,
               lambda: often(0.85, lambda: rng.choice(["10", "15", "17", "20"]), lambda: digits(2)) + digits(8) + "?",
               DIGITS, " ", False),
    "uy_rut": (uy_rut.is_valid, uy_rut_body, DIGITS, " -", False),
    "ec_cedula": (ec_ci.is_valid, ec_ci_body, DIGITS, " -", False),
    "ec_ruc": (ec_ruc.is_valid, ec_ruc_body, DIGITS, " -", False),
    "ve_rif": (rif.is_valid, rif_body, DIGITS, " -", True),
    "py_ruc": (py_ruc.is_valid, lambda: digits(rng.randint(3, 10)) + "?", DIGITS, " -", False),
    "gt_nit": (gt_nit.is_valid, gt_nit_body, DIGITS + "K", " -", True),
    "do_cedula": (do_cedula.is_valid, lambda: digits(10) + "?", DIGITS, " -", False),
    "do_rnc": (do_rnc.is_valid, lambda: digits(8) + "?", DIGITS, " -", False),
    "cu_ci": (cu_ni.is_valid, cu_body, DIGITS, " ", False),
    "luhn": (luhn.is_valid, lambda: digits(rng.randint(1, 18)) + "?", DIGITS, "", False),
}

# stdnum's lists of numbers issued with a wrong check digit.
LISTED = {"do_cedula": do_cedula.whitelist, "do_rnc": do_rnc.whitelist}



def curp_sex_x(n):
    """A CURP of sex `X` (which latam accepts, stdnum not): is the rest valid by stdnum, its
    check digit included?"""
    if len(n) != 18 or n[10] != "X":
        return None
    rest = curp.is_valid(n[:10] + "H" + n[11:], validate_check_digits=False)
    return rest and curp.calc_check_digit(n) == n[17]


# Where latam follows another documented rule than stdnum, stdnum's verdict with that
# difference taken out (docs/anonymize.md, "Differential test against python-stdnum").
ALT = {"mx_curp": curp_sex_x}

# stdnum's own format functions, where they exist.
FORMATS = {
    "cl_rut": cl_rut.format, "ar_cuit": cuit.format, "ar_cbu": cbu.format, "br_cpf": cpf.format,
    "br_cnpj": cnpj.format, "mx_rfc": rfc.format, "co_nit": co_nit.format, "uy_rut": uy_rut.format,
    "py_ruc": py_ruc.format, "gt_nit": gt_nit.format, "do_cedula": do_cedula.format, "do_rnc": do_rnc.format,
}


# stdnum's own check-digit functions (public ones, and CPF's under the pinned 2.2) fill a
# body's holes at once, faster than asking `is_valid` about every candidate.
CALC = {
    "br_cnpj": lambda b: b[:12] + cnpj.calc_check_digits(b[:12]),
    "ar_cbu": lambda b: b[:7] + cbu.calc_check_digit(b[:7]) + b[8:21] + cbu.calc_check_digit(b[8:21]),
    "mx_curp": lambda b: b[:17] + curp.calc_check_digit(b[:17]),
    "br_cpf": lambda b: b[:9] + cpf._calc_check_digits(b[:9]),  # noqa: SLF001 - pinned 2.2
}


def complete(kind, body):
    """A valid number from a body: stdnum computes its check characters, or is asked which it
    accepts."""
    is_valid, _, alphabet, _, _ = KINDS[kind]
    if kind in CALC:
        try:
            number = CALC[kind](body)
        except (ValueError, KeyError):  # a body stdnum cannot compute on (a letter out of place)
            return None
        return number if is_valid(number) else None
    holes = [i for i, c in enumerate(body) if c == "?"]
    if not holes:
        return body if is_valid(body) else None
    choices = [""]
    for _ in holes:
        choices = [c + a for c in choices for a in alphabet]
    rng.shuffle(choices)
    for choice in choices:
        chars = list(body)
        for i, c in zip(holes, choice):
            chars[i] = c
        number = "".join(chars)
        if is_valid(number):
            return number
    return None


def valid_number(kind):
    _, body, _, _, _ = KINDS[kind]
    for _ in range(10_000):
        number = complete(kind, body())
        if number:
            return number
    raise RuntimeError(f"no valid {kind} found")


def random_number(kind):
    """A number of the kind's shape with random check characters."""
    _, body, alphabet, _, _ = KINDS[kind]
    return "".join(rng.choice(alphabet) if c == "?" else c for c in body())


def mutate(kind, number):
    _, body, alphabet, _, _ = KINDS[kind]
    chars = list(number)
    how = rng.randrange(6)
    positions = [i for i, c in enumerate(chars) if c in DIGITS]
    if how == 0 and positions:  # one digit changed
        i = rng.choice(positions)
        chars[i] = rng.choice(DIGITS.replace(chars[i], ""))
    elif how == 1 and len(chars) > 1:  # two adjacent characters swapped
        i = rng.randrange(len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    elif how == 2:  # the last (usually the check) character changed
        chars[-1] = rng.choice(alphabet.replace(chars[-1], "") or alphabet)
    elif how == 3:  # any character replaced by a digit or a letter
        chars[rng.randrange(len(chars))] = rng.choice(ALNUM)
    elif how == 4 and len(chars) > 1:  # one character dropped
        del chars[rng.randrange(len(chars))]
    else:  # one digit added
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(DIGITS))
    return "".join(chars)


def formatted(kind, number):
    """A way people write the number: stdnum's format, separators, lower case."""
    _, _, _, separators, upper = KINDS[kind]
    how = rng.randrange(3)
    if how == 0 and kind in FORMATS:
        try:
            return FORMATS[kind](number)
        except Exception:  # noqa: BLE001 - format of a malformed number: keep it as is
            return number
    if how == 1 and separators:
        chars = list(number)
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randint(1, max(1, len(chars) - 1)), rng.choice(separators))
        return "".join(chars)
    return number.lower() if upper else number


def numbers(kind, count):
    """`count` numbers in groups of five: a random one, a valid one and three mutations of
    it; a third of them formatted. Then stdnum's listed numbers, if the kind has any."""
    out = []
    while len(out) < count:
        valid = valid_number(kind)
        group = [random_number(kind), valid] + [mutate(kind, valid) for _ in range(3)]
        out.extend(formatted(kind, n) if rng.random() < 1 / 3 else n for n in group)
    del out[count:]
    out.extend(sorted(LISTED.get(kind, ())))
    if kind in ("br_cpf", "br_cnpj"):  # a check-valid number of one repeated digit
        out.extend(d * (11 if kind == "br_cpf" else 14) for d in DIGITS)
    return out


def verdict(kind, number):
    is_valid = KINDS[kind][0]
    if not is_valid(number):
        return "invalid"
    compact = number.replace(" ", "").replace("-", "")
    return "listed" if compact in LISTED.get(kind, ()) else "valid"


def lines(job):
    """The lines of one kind, from its own seed (the same output whatever the process count)."""
    kind, count, seed = job
    rng.seed(f"{seed}-{kind}")
    out = []
    for number in numbers(kind, count):
        alt = ALT.get(kind, lambda n: None)(number.upper().replace("-", "").replace(" ", ""))
        alt_verdict = "-" if alt is None else ("valid" if alt else "invalid")
        out.append(f"{kind}\t{number}\t{verdict(kind, number)}\t{alt_verdict}\n")
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args()
    jobs = [(kind, args.per_kind, args.seed) for kind in args.kinds.split(",")]
    with multiprocessing.Pool() as pool:
        for chunk in pool.imap(lines, jobs):
            sys.stdout.write(chunk)


if __name__ == "__main__":
    main()
