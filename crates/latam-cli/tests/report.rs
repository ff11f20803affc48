//! The data card in a real browser: headless Chromium (Debian `chromium`) loads report.html
//! offline, lays it out and draws it. `.ci/run` installs Chromium and runs these with
//! `--ignored`; run them by hand the same way.

mod util;

use util::{Scratch, chromium};

#[test]
#[ignore = "needs Debian chromium; .ci/run installs it and runs this"]
fn the_data_card_renders_offline_in_chromium() {
    let s = Scratch::new();
    s.run(&["corpus", "run", "--progress", "none"]).expect(0);
    let url = format!("file://{}", s.path("latam-out/report.html").display());

    // The DOM after layout: every section is there, the charts are SVG, and the numbers are the
    // ones in stats.json.
    let dom = chromium(&s, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let stats = util::read_json(&s.path("latam-out/stats.json"));
    for needle in [
        "Corpus data card",
        "Steps",
        "By language",
        "Personal data",
        "By country",
        "By source",
        "Inputs",
        "Outputs",
    ] {
        assert!(dom.contains(needle), "rendered page lacks {needle}");
    }
    // Charts are inline SVG: one for the steps, two (documents and bytes) per breakdown.
    for section in dom.split("<h2").skip(1) {
        let heading = &section[section.find('>').map_or(0, |i| i + 1)..];
        let charts = section.matches("<svg").count();
        if heading.starts_with("Steps") {
            assert!(charts >= 1, "the steps have no chart");
        } else if heading.starts_with("By ") {
            let name: String = heading.chars().take_while(|&c| c != '<').collect();
            assert!(charts >= 2, "{name} has {charts} chart(s)");
        }
    }
    assert!(dom.matches("<svg").count() >= 7, "charts are inline SVG");
    let kept = stats["documents"]["kept"].as_u64().unwrap().to_string();
    assert!(
        dom.contains(&format!("<b>{kept}</b>")),
        "the kept count {kept} is shown"
    );

    // And it draws: a screenshot of the page is a real, non-blank image.
    let png = s.path("card.png");
    chromium(
        &s,
        &[
            "--window-size=1100,2400",
            &format!("--screenshot={}", png.display()),
            &url,
        ],
    );
    let bytes = std::fs::read(&png).expect("chromium wrote a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 30_000,
        "a blank page compresses to almost nothing: {} bytes",
        bytes.len()
    );
}
