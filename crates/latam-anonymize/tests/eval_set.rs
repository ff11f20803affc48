//! The committed evaluation set scores what the README says (`latam anonymize --eval
//! data/anonymize/eval.jsonl`): precision and recall 100% for each of its 29 kinds, no
//! non-personal number changed.

use latam_anonymize::AnonymizeConfig;
use latam_anonymize::eval::{EvalRecord, score};

#[test]
fn the_committed_set_scores_what_the_readme_says() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/anonymize/eval.jsonl"
    );
    let records: Vec<EvalRecord> = std::fs::read_to_string(path)
        .expect("the evaluation set")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a record"))
        .collect();
    assert_eq!(records.len(), 2_900);
    let report = score(&AnonymizeConfig::default().build().unwrap(), &records);
    assert_eq!(report.kinds.len(), 29);
    for (kind, s) in &report.kinds {
        assert_eq!(
            (s.true_positives, s.false_positives, s.false_negatives),
            (100, 0, 0),
            "{kind:?}"
        );
    }
    assert_eq!(report.keep_total.values().sum::<u64>(), 2_900);
    assert!(report.keep_changed.is_empty(), "{:?}", report.keep_changed);
}
