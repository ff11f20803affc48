//! The similarity ratio of Python's `difflib.SequenceMatcher` (Ratcliff/Obershelp with the
//! "popular element" heuristic, `autojunk=True`, no junk function), over characters, so that
//! `char_similarity` gives the same value as latamgpt-benchmark.

use std::collections::HashMap;

/// `SequenceMatcher(a=a, b=b).ratio()`: twice the matched characters over the total.
pub fn ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let matcher = Matcher::new(&a, &b);
    2.0 * matcher.matched() as f64 / total as f64
}

struct Matcher<'a> {
    a: &'a [char],
    b: &'a [char],
    /// Positions of each character of `b`, popular ones left out.
    b2j: HashMap<char, Vec<usize>>,
}

impl<'a> Matcher<'a> {
    fn new(a: &'a [char], b: &'a [char]) -> Self {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, c) in b.iter().enumerate() {
            b2j.entry(*c).or_default().push(j);
        }
        if b.len() >= 200 {
            let most = b.len() / 100 + 1;
            b2j.retain(|_, positions| positions.len() <= most);
        }
        Self { a, b, b2j }
    }

    /// The longest block of `a[alo..ahi]` equal to a block of `b[blo..bhi]` (earliest in `a`,
    /// then in `b`), extended over popular characters as difflib does.
    fn longest(&self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> (usize, usize, usize) {
        let (mut start_a, mut start_b, mut size) = (alo, blo, 0usize);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for i in alo..ahi {
            let mut next: HashMap<usize, usize> = HashMap::new();
            if let Some(positions) = self.b2j.get(&self.a[i]) {
                for &j in positions {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j
                        .checked_sub(1)
                        .and_then(|p| j2len.get(&p))
                        .copied()
                        .unwrap_or(0)
                        + 1;
                    next.insert(j, k);
                    if k > size {
                        (start_a, start_b, size) = (i + 1 - k, j + 1 - k, k);
                    }
                }
            }
            j2len = next;
        }
        while start_a > alo && start_b > blo && self.a[start_a - 1] == self.b[start_b - 1] {
            start_a -= 1;
            start_b -= 1;
            size += 1;
        }
        while start_a + size < ahi
            && start_b + size < bhi
            && self.a[start_a + size] == self.b[start_b + size]
        {
            size += 1;
        }
        (start_a, start_b, size)
    }

    /// Characters in matching blocks, found recursively on both sides of each longest match.
    fn matched(&self) -> usize {
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        let mut total = 0;
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.longest(alo, ahi, blo, bhi);
            if k == 0 {
                continue;
            }
            total += k;
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
        total
    }
}
