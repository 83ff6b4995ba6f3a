//! Unit tests of `validation.rs`: media ranges, compile errors, the problem
//! document.

use super::*;

#[test]
fn media_ranges() {
    let r = |t| MediaRange::parse(t).unwrap();
    assert!(r("application/json").matches("Application", "JSON"));
    assert!(r("text/*").matches("text", "csv"));
    assert!(!r("text/*").matches("application", "csv"));
    assert!(r("*/*").matches("a", "b"));
    assert!(MediaRange::parse("*/json").is_none());
    assert!(MediaRange::parse("json").is_none());
    assert!(MediaRange::parse("a b/c").is_none());
}

#[test]
fn compile_refuses_bad_rules() {
    let config = |text: &str| toml::from_str::<ValidationConfig>(text).unwrap();
    let err = |text: &str| compile(&config(text), None).unwrap_err().0;
    assert_eq!(err(r#"headers = [{ name = "a b" }]"#), "headers[0].name");
    assert_eq!(
        err(r#"headers = [{ name = "X" }, { name = "x" }]"#),
        "headers[1].name"
    );
    assert_eq!(
        err(r#"query = [{ name = "q", pattern = "(" }]"#),
        "query[0].pattern"
    );
    assert_eq!(err(r#"content_types = ["json"]"#), "content_types[0]");
    assert_eq!(err("max_body_bytes = 10"), "max_body_bytes");
    assert_eq!(err(r#"body_schema = "s.json""#), "body_schema");
    let bad_schema = compile(
        &config(r#"body_schema = "s.json""#),
        Some(r#"{"type": 12}"#),
    );
    assert_eq!(bad_schema.unwrap_err().0, "body_schema");
    let disabled = compile(
        &config(
            r#"mode = "disabled"
headers = [{ name = "X" }]"#,
        ),
        None,
    );
    assert!(disabled.unwrap().is_none());
}

#[test]
fn problem_document_is_json() {
    let mut out = Vec::new();
    let failures = [Failure {
        rule: "header",
        name: "X-\"T\"".into(),
        detail: "missing".into(),
    }];
    write_problem(&mut out, 400, &failures);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["status"], 400);
    assert_eq!(v["title"], "Bad Request");
    assert_eq!(v["errors"][0]["name"], "X-\"T\"");
}
