//! The steps on hand-written sentences of the region, toxic and clean.

// Exact scores are meant: 0 is "nothing counted", and the combined score is one of its parts.
#![allow(clippy::float_cmp)]

use super::*;

fn classify(text: &str, language: Option<&str>) -> (f64, Vec<String>) {
    let step = ClassifyToxicityConfig::default().build().unwrap();
    let mut doc = Document::new("d", text);
    if let Some(language) = language {
        doc.metadata.insert("language".into(), language.into());
    }
    assert_eq!(step.process(&mut doc), Verdict::Keep);
    let labels = doc.metadata["toxicity_labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (doc.metadata["toxicity_score"].as_f64().unwrap(), labels)
}

fn rejected(text: &str, language: &str) -> bool {
    let filter = FilterToxicityConfig::default().build().unwrap();
    let step = ClassifyToxicityConfig::default().build().unwrap();
    let mut doc = Document::new("d", text);
    doc.metadata.insert("language".into(), language.into());
    step.process(&mut doc);
    filter.process(&mut doc) != Verdict::Keep
}

#[test]
fn toxic_sentences_are_rejected() {
    for (text, language) in [
        ("¡Cállate, pendejo! Nadie te preguntó nada.", "spa"),
        ("Ese árbitro es un hijo de puta, siempre roba.", "spa"),
        ("Qué gilipollas eres, tío, vete a la mierda.", "spa"),
        ("Vai tomar no cu, seu filho da puta.", "por"),
        ("Essa vadia não sabe de nada, que merda de governo.", "por"),
        ("Shut up, you stupid bitch, nobody asked you.", "eng"),
        ("This is fucking bullshit and you know it.", "eng"),
    ] {
        assert!(rejected(text, language), "{text}");
    }
}

#[test]
fn clean_sentences_are_kept_with_a_zero_score() {
    for (text, language) in [
        (
            "El río Negro nace en la confluencia del Limay y el Neuquén.",
            "spa",
        ),
        (
            "La provincia de Río Negro limita con Neuquén y Chubut.",
            "spa",
        ),
        (
            "Bulgaria, Rumania y Turquía tienen costas sobre el mar Negro.",
            "spa",
        ),
        (
            "El oro negro de Venezuela financió la expansión del Estado.",
            "spa",
        ),
        (
            "La raza Aberdeen Angus de pelaje negro es común en la Pampa.",
            "spa",
        ),
        ("Compramos un vino de Concha y Toro en Santiago.", "spa"),
        ("Recogimos una concha de caracol en la playa.", "spa"),
        (
            "Todas las personas son iguales ante la ley, sin distinción de sexo.",
            "spa",
        ),
        ("La heroína de la novela cruza los Andes a caballo.", "spa"),
        ("O rio Negro deságua no Amazonas perto de Manaus.", "por"),
        ("Vamos comer feijoada e tomar uma cerveja no sábado.", "por"),
        (
            "Todos têm o direito de gozar das liberdades previstas nesta Constituição.",
            "por",
        ),
        (
            "A ONG atende homens gays, lésbicas e pessoas bissexuais.",
            "por",
        ),
        (
            "The Negro Leagues were professional baseball leagues in the United States.",
            "eng",
        ),
        ("The Black Sea borders Ukraine, Romania and Turkey.", "eng"),
        (
            "The article discusses the constitution of Argentina.",
            "eng",
        ),
    ] {
        let (score, labels) = classify(text, Some(language));
        assert_eq!((score, labels), (0.0, vec![]), "{text}");
    }
}

#[test]
fn negro_in_place_names_is_clean_even_without_a_language() {
    // With no `metadata.language` every list applies, the English one's "negro" included.
    for text in [
        "Viedma es la capital de Río Negro.",
        "El mar Negro se conecta con el Mediterráneo.",
        "Un agujero negro supermasivo en el centro de la galaxia.",
        "Navegamos pelo rio Negro até São Gabriel da Cachoeira.",
    ] {
        assert_eq!(classify(text, None), (0.0, vec![]), "{text}");
    }
    // Outside those phrases the English entry still fires on English text.
    assert_eq!(
        classify("Get out of here, negro.", Some("eng")).1,
        vec!["slur"]
    );
}

#[test]
fn anatomy_is_clean_in_a_clinical_context_only() {
    let clinical = [
        (
            "El médico examinó al paciente: la inflamación del pezón puede indicar una infección.",
            "spa",
        ),
        (
            "La muestra de orina se analiza en el laboratorio del hospital.",
            "spa",
        ),
        (
            "O exame de câncer de pênis deve ser feito pelo urologista; a cirurgia é rara.",
            "por",
        ),
        (
            "The patient had an infection of the vulva; treatment was started.",
            "eng",
        ),
    ];
    for (text, language) in clinical {
        assert_eq!(classify(text, Some(language)), (0.0, vec![]), "{text}");
    }
    let (score, labels) = classify("mándame una foto de tu pezón y de tu vulva", Some("spa"));
    assert!(score > 0.9, "{score}");
    assert_eq!(labels, vec!["anatomy"]);
}

#[test]
fn the_score_follows_the_density() {
    let short = classify("Eres un idiota.", Some("spa")).0;
    let sentence = "La comisión aprobó el presupuesto del año próximo sin mayores cambios. ";
    let long = classify(
        &format!("{} Eres un idiota.", sentence.repeat(20)),
        Some("spa"),
    )
    .0;
    assert!(short > 0.8, "{short}");
    assert!(long < 0.1, "{long}");
    assert!((lexicon_score(1, 20) - 0.6321).abs() < 1e-4);
    assert!((lexicon_score(1, 2) - lexicon_score(1, 10)).abs() < 1e-12);
    assert_eq!(lexicon_score(0, 0), 0.0);
}

#[test]
fn languages_without_a_list_use_the_fallback_lists() {
    assert!(classify("Mba'éichapa, che ra'a? mierda", Some("gug")).0 > 0.0);
    let none = ClassifyToxicityConfig {
        fallback_lists: vec![],
        ..ClassifyToxicityConfig::default()
    }
    .build()
    .unwrap();
    assert_eq!(none.score("mierda", Some("gug")).score, 0.0);
    assert_eq!(none.score("mierda", Some("spa")).findings.hits, 1);
}

#[test]
fn filter_needs_a_score_and_a_valid_threshold() {
    let filter = FilterToxicityConfig { threshold: 0.3 }.build().unwrap();
    let mut doc = Document::new("d", "x");
    assert_eq!(
        filter.process(&mut doc),
        Verdict::reject("toxicity_missing")
    );
    doc.metadata.insert("toxicity_score".into(), 0.3.into());
    assert_eq!(filter.process(&mut doc), Verdict::reject("toxic"));
    doc.metadata.insert("toxicity_score".into(), 0.29.into());
    assert_eq!(filter.process(&mut doc), Verdict::Keep);
    assert!(FilterToxicityConfig { threshold: 1.5 }.build().is_err());
    let err = ClassifyToxicityConfig {
        fallback_lists: vec!["fra".into()],
        ..ClassifyToxicityConfig::default()
    }
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("spa, por, eng"), "{err}");
}

#[test]
fn a_model_is_combined_by_the_larger_score() {
    use latam_classify::{Example, TrainConfig};
    let data: Vec<Example> = [
        ("toxic", "você é um lixo nojento"),
        ("toxic", "lixo de pessoa nojenta"),
        ("clean", "bom dia a todos"),
        ("clean", "o dia está bonito hoje"),
    ]
    .iter()
    .map(|(l, t)| Example {
        text: (*t).to_owned(),
        labels: vec![(*l).to_owned()],
    })
    .collect();
    let model = latam_classify::Classifier::train(
        &data,
        &TrainConfig {
            epochs: 50,
            ..TrainConfig::default()
        },
        "",
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("latam-tox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.lcm");
    std::fs::write(&path, model.to_bytes()).unwrap();
    let step = ClassifyToxicityConfig {
        model: Some(path.clone()),
        model_languages: vec!["por".into()],
        ..ClassifyToxicityConfig::default()
    }
    .build()
    .unwrap();
    let found = step.score("que lixo nojento", Some("por"));
    assert_eq!(found.lexicon_score, 0.0);
    let p = found.model_score.unwrap();
    assert!(p > 0.5, "{p}");
    assert_eq!(found.score, p);
    assert_eq!(found.labels(), vec!["classifier"]);
    // Outside `model_languages` the model is not asked.
    assert_eq!(
        step.score("que lixo nojento", Some("spa")).model_score,
        None
    );
    let wrong = ClassifyToxicityConfig {
        model: Some(path.clone()),
        model_label: "hate".into(),
        ..ClassifyToxicityConfig::default()
    }
    .build()
    .unwrap_err();
    assert!(wrong.to_string().contains("clean, toxic"), "{wrong}");
    std::fs::remove_dir_all(&dir).unwrap();
}
