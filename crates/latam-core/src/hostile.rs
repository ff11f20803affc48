//! Hostile copies of a real file, for the tests that a reader of a binary format answers every
//! corruption with an error: cuts at lengths on a grid, and seeded random edits (bit flips, bytes
//! overwritten, little-endian integers replaced by the values that break unchecked arithmetic);
//! a catcher that turns a panic into its message and location; and an allocation budget.

use std::alloc::System;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use cap::Cap;

use crate::Rng;

/// Runs `f` allowed `budget` bytes beyond those `alloc` (the test binary's global allocator)
/// holds now: past it an allocation fails, which aborts the test binary ("memory allocation of
/// N bytes failed").
pub fn within<T>(alloc: &Cap<System>, budget: usize, f: impl FnOnce() -> T) -> T {
    alloc
        .set_limit(alloc.allocated() + budget)
        .expect("above what is allocated");
    let out = f();
    alloc.set_limit(usize::MAX).expect("no limit");
    out
}

/// Lengths to cut a file of `len` bytes at: every length below `dense`, then `steps` more spread
/// evenly up to `len - 1`.
pub fn truncations(len: usize, dense: usize, steps: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..dense.min(len)).collect();
    if len > dense {
        let span = len - dense;
        cuts.extend((0..steps).map(|i| dense + span * i / steps.max(1)));
    }
    cuts.dedup();
    cuts
}

/// Integers that break unchecked sizes and offsets: zero, one, sign bits, all ones, powers of
/// two at the widths of length fields.
const EDGES: [u64; 14] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// A copy of `bytes` with one to four edits, each inside one of `fields` (the byte ranges of a
/// format's counts, lengths and offsets) three times in four, anywhere in the file otherwise.
/// An edit flips a bit, sets a byte at random, or overwrites a 1-, 2-, 4- or 8-byte
/// little-endian integer with an edge value, a random value or its old value plus or minus a
/// little.
pub fn mutate(bytes: &[u8], fields: &[Range<usize>], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.is_empty() {
        return out;
    }
    for _ in 0..=rng.below(4) {
        let range = match fields.get(rng.below(fields.len())) {
            Some(r) if !r.is_empty() && r.end <= out.len() && rng.chance(0.75) => r.clone(),
            _ => 0..out.len(),
        };
        let at = range.start + rng.below(range.len());
        match rng.below(4) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.next_u64() as u8,
            _ => overwrite_integer(&mut out, at, rng),
        }
    }
    out
}

/// Replaces the little-endian integer at `at` (its width chosen at random, cut at the end).
fn overwrite_integer(out: &mut [u8], at: usize, rng: &mut Rng) {
    let width = rng.pick(&[1usize, 2, 4, 8]).min(out.len() - at);
    let mut old = [0u8; 8];
    old[..width].copy_from_slice(&out[at..at + width]);
    let old = u64::from_le_bytes(old);
    let value = match rng.below(3) {
        0 => rng.pick(&EDGES),
        1 => rng.next_u64(),
        _ => old.wrapping_add(rng.below(33) as u64).wrapping_sub(16),
    };
    out[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

thread_local! {
    /// Set while [`catch_panic`] runs on this thread: where its panic's message goes.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`; a panic comes back as `Err` with its message and location, and prints nothing.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                c.as_mut().map(|slot| *slot = info.to_string()).is_some()
            });
            if !caught {
                previous(info);
            }
        }));
    });
    CAUGHT.with(|c| *c.borrow_mut() = Some(String::new()));
    let result = catch_unwind(AssertUnwindSafe(f));
    let message = CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    result.map_err(|_| message)
}

/// What a reader made of hostile files: how many it read, refused, or panicked on.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Files read.
    pub ok: usize,
    /// Files refused with an error.
    pub errors: usize,
    /// Each distinct panic, with how often it came and the first case that raised it.
    panics: BTreeMap<String, (usize, String)>,
}

impl Outcomes {
    /// Counts the outcome of case `what`: a result, or the message of a panic
    /// ([`catch_panic`]'s `Err`).
    pub fn record<T, E>(&mut self, what: &str, outcome: Result<Result<T, E>, String>) {
        match outcome {
            Ok(Ok(_)) => self.ok += 1,
            Ok(Err(_)) => self.errors += 1,
            Err(panic) => {
                let entry = self.panics.entry(panic).or_insert((0, what.to_owned()));
                entry.0 += 1;
            }
        }
    }

    /// Panics in all.
    pub fn panics(&self) -> usize {
        self.panics.values().map(|(n, _)| n).sum()
    }

    /// Each distinct panic on a line: how often, the first case, the message.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{} read, {} refused, {} panics",
            self.ok,
            self.errors,
            self.panics()
        );
        for (panic, (n, what)) in &self.panics {
            let _ = write!(out, "\n{n} × (first: {what}) {}", panic.replace('\n', " "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_cover_the_start_densely_and_the_rest_on_a_grid() {
        assert_eq!(truncations(5, 10, 4), vec![0, 1, 2, 3, 4]);
        assert_eq!(truncations(20, 4, 4), vec![0, 1, 2, 3, 4, 8, 12, 16]);
    }

    #[test]
    fn edits_stay_in_the_fields_mostly_and_change_the_file() {
        let file = vec![0u8; 1000];
        let mut rng = Rng::new(1);
        let fields: Vec<Range<usize>> = vec![10..20, 10..20];
        let (mut changed, mut inside) = (0, 0);
        for _ in 0..1000 {
            let edited = mutate(&file, &fields, &mut rng);
            assert_eq!(edited.len(), file.len());
            let diff: Vec<usize> = (0..file.len()).filter(|&i| edited[i] != 0).collect();
            changed += usize::from(!diff.is_empty());
            inside += usize::from(!diff.is_empty() && diff.iter().all(|&i| (10..28).contains(&i)));
        }
        assert!(changed > 800, "{changed}");
        assert!(inside > 400, "{inside}");
    }

    #[test]
    fn a_panic_becomes_its_message_with_its_location() {
        let err = catch_panic(|| {
            let v: Vec<u8> = Vec::new();
            v[usize::from(v.is_empty())]
        })
        .unwrap_err();
        assert!(
            err.contains("index out of bounds") && err.contains("hostile.rs"),
            "{err}"
        );
        assert_eq!(catch_panic(|| 7), Ok(7));
    }

    #[test]
    fn outcomes_group_panics_by_message() {
        let mut outcomes = Outcomes::default();
        outcomes.record::<(), ()>("a", Ok(Ok(())));
        outcomes.record::<(), ()>("b", Ok(Err(())));
        outcomes.record::<(), ()>("c", Err("boom".into()));
        outcomes.record::<(), ()>("d", Err("boom".into()));
        assert_eq!((outcomes.ok, outcomes.errors, outcomes.panics()), (1, 1, 2));
        assert!(
            outcomes.report().ends_with("2 × (first: c) boom"),
            "{}",
            outcomes.report()
        );
    }
}
