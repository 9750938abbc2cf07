//! The real `claimlint` binary: `validate` and `rules`.

mod support;

use claimlint::proto::v1 as pb;
use support::*;

fn outcomes(output: &std::process::Output) -> Vec<pb::Outcome> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each stdout line is an Outcome"))
        .collect()
}

/// `rejected-npi-invalid.json` → `NPI_INVALID`.
fn expected_code(file_stem: &str) -> Option<String> {
    file_stem
        .strip_prefix("rejected-")
        .map(|rest| rest.replace('-', "_").to_ascii_uppercase())
}

#[test]
fn every_example_gives_its_documented_result() {
    let files = example_files();
    assert!(
        files.len() >= 10,
        "examples/ has the seed visit and the rejected variants"
    );
    for file in files {
        let path = file.to_string_lossy().into_owned();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let output = run(&[
            "validate",
            "--as-of",
            EXAMPLES_AS_OF,
            "--format",
            "json",
            &path,
        ]);
        let outcomes = outcomes(&output);
        assert_eq!(outcomes.len(), 1, "{path}: {}", stderr(&output));
        let outcome = &outcomes[0];
        match expected_code(&stem) {
            None => {
                assert!(
                    stem.starts_with("valid-"),
                    "{path}: name examples valid-* or rejected-<code>"
                );
                assert_eq!(output.status.code(), Some(0), "{path}: {outcome:#?}");
                assert_eq!(outcome.status, pb::Status::Validated as i32);
                assert!(outcome.claim.is_some());
                assert!(
                    outcome
                        .reasons
                        .iter()
                        .all(|r| r.severity != pb::Severity::Error as i32),
                    "{path}: {outcome:#?}"
                );
            }
            Some(code) => {
                assert_eq!(output.status.code(), Some(1), "{path}: {outcome:#?}");
                assert_eq!(outcome.status, pb::Status::Rejected as i32);
                assert!(outcome.claim.is_none());
                let reason = outcome
                    .reasons
                    .iter()
                    .find(|r| r.code == code)
                    .unwrap_or_else(|| panic!("{path}: no {code} in {outcome:#?}"));
                assert_eq!(reason.severity, pb::Severity::Error as i32, "{path}");
                assert!(
                    !reason.remedy.is_empty() && !reason.carc.is_empty(),
                    "{path}"
                );
                // The person-readable form shows the reason with its field and remedy.
                let text = stdout(&run(&["validate", "--as-of", EXAMPLES_AS_OF, &path]));
                assert!(text.starts_with("REJECTED "), "{text}");
                assert!(
                    text.contains(&format!("{code} at {}", reason.field)),
                    "{text}"
                );
                assert!(text.contains(&format!("fix: {}", reason.remedy)), "{text}");
            }
        }
        assert_eq!(outcome.content_hash.len(), 64, "SHA-256 hex");
        assert!(
            outcome
                .ruleset_version
                .starts_with("2026Q4+icd10cm-fy2025+")
        );
    }
}

/// The seed article's documentation example validates; each documentation element removed is
/// rejected with its code, and the text report tells the therapist what to add to the note.
#[test]
fn the_seed_documentation_example_and_its_variants() {
    let seed = repo_root().join("examples/valid-medicare-seed-documentation.json");
    let output = run(&[
        "validate",
        "--as-of",
        EXAMPLES_AS_OF,
        seed.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seed).unwrap()).unwrap();
    let removals: [(&str, &str, &str); 9] = [
        (
            "/documentation/medicalNecessity",
            "/documentation/functionalLimitations",
            "MEDICAL_NECESSITY_MISSING",
        ),
        ("/documentation/goals", "", "TREATMENT_GOALS_MISSING"),
        (
            "/documentation/objectiveMeasures",
            "",
            "OBJECTIVE_MEASURES_MISSING",
        ),
        (
            "/serviceLines/0/techniques",
            "",
            "MASSAGE_TECHNIQUE_MISSING",
        ),
        ("/serviceLines/0/bodyRegions", "", "BODY_REGION_MISSING"),
        ("/documentation/planOfCare", "", "PLAN_OF_CARE_MISSING"),
        (
            "/documentation/planOfCare/certifiedDate",
            "",
            "PLAN_OF_CARE_NOT_CERTIFIED",
        ),
        ("/documentation/therapistSigned", "", "SIGNATURE_MISSING"),
        ("/serviceLines/0/minutes", "", "TIMED_MINUTES_MISSING"),
    ];
    for (first, second, code) in removals {
        let mut variant = original.clone();
        for pointer in [first, second].into_iter().filter(|p| !p.is_empty()) {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            variant
                .pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(key);
        }
        let output = run_with_stdin(
            &["validate", "--as-of", EXAMPLES_AS_OF, "-"],
            variant.to_string().as_bytes(),
        );
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{first}: {text}");
        assert!(
            text.contains(&format!("error   {code} at ")),
            "{first} → {code}: {text}"
        );
        assert!(text.contains("fix: "), "{text}");
    }
}

#[test]
fn json_output_is_the_canonical_mapping() {
    let output = run(&[
        "validate",
        "--as-of",
        EXAMPLES_AS_OF,
        "--format",
        "json",
        "examples/valid-medicare-seed-visit.json",
    ]);
    let line = stdout(&output);
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(value["status"], "STATUS_VALIDATED");
    assert_eq!(value["encounterId"], "enc-2025-06-16-0001");
    assert_eq!(
        value["claim"]["totalChargeCents"], "11500",
        "int64 as a JSON string"
    );
    assert_eq!(
        value["claim"]["lines"][1]["modifiers"],
        serde_json::json!(["GP", "59"])
    );
    let validated_at = value["validatedAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(validated_at).is_ok(),
        "{validated_at}"
    );
}

#[test]
fn the_same_encounter_hashes_the_same_whatever_its_json_spelling() {
    let camel = r#"{"encounterId":"h1","patientId":"p","serviceLines":[{"procedureCode":"97124","units":1}]}"#;
    let snake = r#"{"encounter_id":"h1","patient_id":"p","service_lines":[{"procedure_code":"97124","units":1}],"ignored":true}"#;
    let changed = r#"{"encounterId":"h1","patientId":"p","serviceLines":[{"procedureCode":"97124","units":2}]}"#;
    let hash = |text: &str| {
        let output = run_with_stdin(&["validate", "--format", "json", "-"], text.as_bytes());
        outcomes(&output)[0].content_hash.clone()
    };
    assert_eq!(hash(camel), hash(snake));
    assert_ne!(hash(camel), hash(changed));
}

#[test]
fn not_json_is_exit_2_with_one_line_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.json");
    std::fs::write(&path, "{\"encounterId\": \"a\",\n  oops }").unwrap();
    let output = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("notes.json") && err.contains("line 2, column 3"),
        "{err}"
    );

    let binary = dir.path().join("scan.pdf");
    std::fs::write(&binary, [0x25, 0x50, 0x44, 0x46, 0xff, 0xfe, 0x00]).unwrap();
    let output = run(&["validate", binary.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not UTF-8"), "{}", stderr(&output));

    let output = run(&["validate", "no/such/file.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("no/such/file.json: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn wrong_types_and_missing_ids_are_bad_input() {
    let output = run_with_stdin(&["validate", "-"], br#"{"encounterId": 42}"#);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("line 1, column"),
        "{}",
        stderr(&output)
    );

    let output = run_with_stdin(&["validate", "-"], br#"{"claimId": "x", "lines": []}"#);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("encounter_id is missing"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_empty_array_is_exit_0_and_says_so() {
    let output = run_with_stdin(&["validate", "-"], b"[]");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("no encounters"),
        "{}",
        stdout(&output)
    );
    let output = run_with_stdin(&["validate", "--format", "json", "-"], b" [ ]\n");
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).is_empty());
    assert!(stderr(&output).contains("no encounters"));
}

#[test]
fn arrays_and_json_lines_give_one_outcome_each_in_order() {
    let seed = std::fs::read_to_string(repo_root().join("examples/valid-medicare-seed-visit.json"))
        .unwrap();
    let seed: serde_json::Value = serde_json::from_str(&seed).unwrap();
    let mut second = seed.clone();
    second["encounterId"] = "second".into();
    second["renderingProvider"]["npi"] = "1234567890".into();
    let lines = format!("{}\n{}\n", seed, second);
    let array = serde_json::to_string(&vec![seed, second]).unwrap();
    for input in [lines, array] {
        let output = run_with_stdin(
            &[
                "validate",
                "--as-of",
                EXAMPLES_AS_OF,
                "--format",
                "json",
                "-",
            ],
            input.as_bytes(),
        );
        assert_eq!(output.status.code(), Some(1), "one of two rejected");
        let outcomes = outcomes(&output);
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].status, pb::Status::Validated as i32);
        assert_eq!(outcomes[1].encounter_id, "second");
        assert_eq!(outcomes[1].status, pb::Status::Rejected as i32);
    }
}

#[test]
fn an_unreadable_file_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "not json").unwrap();
    let output = run(&[
        "validate",
        "--as-of",
        EXAMPLES_AS_OF,
        bad.to_str().unwrap(),
        "examples/valid-medicare-seed-visit.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout(&output).contains("VALIDATED enc-2025-06-16-0001"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("1 unreadable"));
}

#[test]
fn a_bad_as_of_is_refused() {
    let output = run(&[
        "validate",
        "--as-of",
        "2025-02-30",
        "examples/valid-medicare-seed-visit.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a YYYY-MM-DD date"));
}

#[test]
fn rules_lists_the_catalogue_with_severity_per_profile() {
    let output = run(&["rules", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let catalogue: pb::ListRulesResponse = serde_json::from_str(stdout(&output).trim()).unwrap();
    for code in [
        "REQUIRED_FIELD_MISSING",
        "DATE_INVALID",
        "DATE_OF_SERVICE_IN_FUTURE",
        "TIMELY_FILING_EXPIRED",
        "NPI_INVALID",
        "PLACE_OF_SERVICE_INVALID",
        "DIAGNOSIS_CODE_INVALID",
        "DIAGNOSIS_CODE_NOT_BILLABLE",
        "DIAGNOSIS_CODE_SET_UNAVAILABLE",
        "DIAGNOSIS_POINTER_INVALID",
        "PROCEDURE_CODE_INVALID",
        "PROCEDURE_CODE_UNKNOWN",
        "MODIFIER_INVALID",
        "UNITS_MISSING",
        "TIMED_MINUTES_MISSING",
        "TIMED_SERVICE_UNDER_8_MINUTES",
        "UNITS_EXCEED_TIME",
        "UNITS_DISTRIBUTION_INVALID",
        "UNITS_BELOW_TIME",
        "TIMED_MINUTES_EXCEED_TOTAL_TIME",
        "TOTAL_TREATMENT_TIME_MISSING",
        "UNTIMED_CODE_UNITS",
        "DUPLICATE_CODE_LINES",
        "MUE_EXCEEDED",
        "NCCI_PTP_MODIFIER_REQUIRED",
        "NCCI_PTP_NOT_ALLOWED",
        "DISTINCT_SERVICE_SAME_REGION",
        "MODIFIER_59_UNSUPPORTED",
        "MODIFIER_59_WITH_X_MODIFIER",
        "THERAPY_MODIFIER_MISSING",
        "THERAPY_MODIFIER_MISMATCH",
        "ASSISTANT_MODIFIER_MISSING",
        "ASSISTANT_MODIFIER_MISMATCH",
        "KX_MODIFIER_REQUIRED",
        "KX_MODIFIER_UNSUPPORTED",
        "MEDICAL_REVIEW_THRESHOLD",
        "PROVIDER_NOT_ELIGIBLE",
        "RULE_DATA_NOT_CURRENT",
        "DIAGNOSIS_NOT_SUPPORTING",
        "MEDICAL_NECESSITY_MISSING",
        "TREATMENT_GOALS_MISSING",
        "TREATMENT_GOAL_NOT_MEASURABLE",
        "OBJECTIVE_MEASURES_MISSING",
        "OBJECTIVE_MEASURE_OUT_OF_RANGE",
        "MASSAGE_TECHNIQUE_MISSING",
        "TECHNIQUE_CODE_MISMATCH",
        "BODY_REGION_MISSING",
        "PLAN_OF_CARE_MISSING",
        "PLAN_OF_CARE_EXPIRED",
        "PLAN_OF_CARE_NOT_CERTIFIED",
        "PROGRESS_REPORT_OVERDUE",
        "SIGNATURE_MISSING",
    ] {
        let rule = catalogue
            .rules
            .iter()
            .find(|r| r.code == code)
            .unwrap_or_else(|| panic!("{code}"));
        assert!(
            !rule.source.is_empty() && !rule.description.is_empty(),
            "{code}"
        );
        let profiles: Vec<&str> = rule.severities.iter().map(|s| s.profile.as_str()).collect();
        assert_eq!(profiles, ["medicare", "medicaid", "commercial"], "{code}");
    }
    // The whole catalogue, in order, and nothing the core cannot emit.
    let listed: Vec<&str> = catalogue.rules.iter().map(|r| r.code.as_str()).collect();
    let implemented: Vec<&str> = claimlint::core::reason::ReasonCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(listed, implemented);
    // Each profile grades in data: KX is off for Medicaid and commercial payers.
    let kx = catalogue
        .rules
        .iter()
        .find(|r| r.code == "KX_MODIFIER_REQUIRED")
        .unwrap();
    let grading: Vec<(&str, bool)> = kx
        .severities
        .iter()
        .map(|s| (s.profile.as_str(), s.enabled))
        .collect();
    assert_eq!(
        grading,
        [
            ("medicare", true),
            ("medicaid", false),
            ("commercial", false)
        ]
    );
    assert!(catalogue.data.iter().any(|t| t.table == "ncci_pairs"));
    assert!(
        catalogue
            .data
            .iter()
            .any(|t| t.table == "kx_threshold" && t.version == "2019-2026")
    );
    let icd = catalogue
        .data
        .iter()
        .find(|t| t.table == "icd10cm")
        .unwrap();
    assert_eq!(
        (
            icd.version.as_str(),
            icd.effective_from.as_str(),
            icd.effective_to.as_str()
        ),
        ("fy2025", "2024-10-01", "2025-09-30")
    );
    assert!(catalogue.data.iter().all(|t| !t.source.is_empty()));

    let text = stdout(&run(&["rules"]));
    assert!(
        text.contains("NPI_INVALID") && text.contains("CO-207") && text.contains("medicare"),
        "{text}"
    );
}

#[test]
fn a_rules_directory_replaces_the_built_in_data() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path());
    // Drop in a newer ICD-10-CM year in the CMS order-file form.
    std::fs::write(
        dir.path().join("icd10cm/icd10cm_order_2026.txt"),
        "00001 M542    1 Cervicalgia                                                  Cervicalgia\n\
         00002 M5450   1 Low back pain, unspecified                                   Low back pain, unspecified\n\
         00003 M62838  1 Other muscle spasm                                           Other muscle spasm\n",
    )
    .unwrap();
    let mut seed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/valid-medicare-seed-visit.json"))
            .unwrap(),
    )
    .unwrap();
    seed["dateOfService"] = "2025-11-03".into();
    seed["documentation"]["planOfCare"] = serde_json::json!({"startDate": "2025-10-20", "certifiedDate": "2025-10-21", "certifyingNpi": "1198765434"});
    let input = seed.to_string();
    let args = ["validate", "--as-of", "2025-11-05", "--format", "json", "-"];

    let built_in = outcomes(&run_with_stdin(&args, input.as_bytes()));
    assert!(
        built_in[0]
            .reasons
            .iter()
            .any(|r| r.code == "DIAGNOSIS_CODE_SET_UNAVAILABLE")
    );

    let output = claimlint()
        .env("CLAIMLINT_RULES_DIR", dir.path())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let overridden = outcomes(&output);
    assert!(
        overridden[0].reasons.is_empty(),
        "{:#?}",
        overridden[0].reasons
    );
    assert!(overridden[0].ruleset_version.contains("+icd10cm-fy2026+"));
    assert_ne!(
        overridden[0].ruleset_version.rsplit('+').next(),
        built_in[0].ruleset_version.rsplit('+').next(),
        "the digest names the data"
    );

    // A broken directory is refused with the file named, and nothing is validated.
    std::fs::remove_file(dir.path().join("reasons.toml")).unwrap();
    let output = run(&["rules", "--rules-dir", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("reasons.toml: required rule file is missing"),
        "{}",
        stderr(&output)
    );
    std::fs::write(dir.path().join("reasons.toml"), "[meta]\nsource = \"\"\n").unwrap();
    let output = run(&["rules", "--rules-dir", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("reasons.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_overlay_changes_the_verdict_and_a_broken_one_is_refused_before_any_reload() {
    let overlay = tempfile::tempdir().unwrap();
    let profiles = std::fs::read_to_string(repo_root().join("rules/profiles.toml"))
        .unwrap()
        .replacen(
            "[profile.medicare]\n",
            "[profile.medicare]\nrules = { TIMELY_FILING_EXPIRED = \"off\" }\n",
            1,
        );
    std::fs::write(overlay.path().join("profiles.toml"), profiles).unwrap();
    let seed = repo_root().join("examples/valid-medicare-seed-visit.json");
    let seed = seed.to_str().unwrap();
    let overlay_dir = overlay.path().to_str().unwrap();
    // Judged today, the 2025 seed visit is past Medicare's filing limit, unless the overlay
    // switches that rule off.
    let plain = run(&["validate", "--format", "json", seed]);
    assert!(
        outcomes(&plain)[0]
            .reasons
            .iter()
            .any(|r| r.code == "TIMELY_FILING_EXPIRED")
    );
    let overlaid = run(&[
        "validate",
        "--format",
        "json",
        "--rules-overlay",
        overlay_dir,
        seed,
    ]);
    let reasons = &outcomes(&overlaid)[0].reasons;
    assert!(
        !reasons.iter().any(|r| r.code == "TIMELY_FILING_EXPIRED"),
        "{reasons:#?}"
    );

    std::fs::write(overlay.path().join("profiles.toml"), "[profile.medicare\n").unwrap();
    let refused = run(&["rules", "--rules-overlay", overlay_dir]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("profiles.toml"),
        "{}",
        stderr(&refused)
    );
}
