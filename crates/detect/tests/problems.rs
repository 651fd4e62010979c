//! The typed problems of ferry-detect's reports read (and serialize) as the strings they replaced.

use std::collections::BTreeMap;

use ferry_detect::bump::{Note, NoteReason, SkipProblem, Skipped};
use ferry_detect::changed::{Published, QueryFailure};
use ferry_detect::dockerfile::{Dockerfile, Problem};
use ferry_detect::project::{LeftOut, Warning};
use serde_json::json;

fn syntax_problem() -> Problem {
    let e = Dockerfile::parse("FROM alpine\nFROM --platform\n", &BTreeMap::new())
        .expect_err("a FROM without an image does not parse");
    assert!(matches!(e.problem, Problem::Syntax(_)), "{:?}", e.problem);
    e.problem
}

#[test]
fn each_skip_problem_reads_and_serializes_as_before_the_types() {
    let syntax = syntax_problem();
    let syntax_text = match &syntax {
        Problem::Syntax(e) => e.get().to_string(),
        other => panic!("{other:?}"),
    };
    let cases = [
        (SkipProblem::NotFound, "file not found".to_string()),
        (SkipProblem::NotUtf8, "not UTF-8".into()),
        (
            SkipProblem::Dockerfile(Problem::NoFrom),
            "no FROM instruction".into(),
        ),
        (SkipProblem::Dockerfile(syntax), syntax_text),
    ];
    for (problem, text) in cases {
        assert_eq!(problem.to_string(), text);
        let skipped = Skipped {
            file: "a/Dockerfile".into(),
            line: 2,
            problem,
        };
        assert_eq!(
            serde_json::to_value(&skipped).unwrap(),
            json!({"file": "a/Dockerfile", "line": 2, "message": text})
        );
    }
}

#[test]
fn each_note_reason_reads_and_serializes_as_before_the_types() {
    let cases = [
        (
            NoteReason::BuiltFromVariables,
            "the reference is built from variables; edit the ARG it uses",
        ),
        (
            NoteReason::Split,
            "the reference is split by a line continuation or escape",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
        let note = Note {
            file: "Dockerfile".into(),
            line: 1,
            spelling: "python:$V".into(),
            reason,
        };
        assert_eq!(
            serde_json::to_string(&note).unwrap(),
            format!(r#"{{"file":"Dockerfile","line":1,"spelling":"python:$V","reason":"{text}"}}"#)
        );
    }
}

#[test]
fn a_left_out_file_reads_and_serializes_as_before_the_types() {
    let w = Warning {
        file: "docs/Dockerfile.md".into(),
        line: 1,
        problem: LeftOut::NotADockerfile(Problem::NoFrom),
    };
    assert_eq!(
        w.problem.to_string(),
        "not a Dockerfile, left out: no FROM instruction"
    );
    assert_eq!(
        w.to_string(),
        "docs/Dockerfile.md:1: not a Dockerfile, left out: no FROM instruction"
    );
    assert_eq!(
        serde_json::to_string(&w).unwrap(),
        r#"{"file":"docs/Dockerfile.md","line":1,"message":"not a Dockerfile, left out: no FROM instruction"}"#
    );
}

#[test]
fn a_failed_registry_query_keeps_the_error_and_reads_as_it() {
    let failed = QueryFailure::from(std::io::Error::other("connection refused"));
    assert_eq!(failed.to_string(), "connection refused");
    assert_eq!(failed.get().to_string(), "connection refused");
    assert_eq!(
        Published::Failed(failed.clone()),
        Published::Failed(QueryFailure::from(std::io::Error::other(
            "connection refused"
        )))
    );
    assert_ne!(
        Published::Failed(failed),
        Published::Failed(QueryFailure::from(std::io::Error::other("timed out")))
    );
}

#[test]
fn a_syntax_problem_is_the_parser_error_compared_by_its_text() {
    let a = syntax_problem();
    let b = syntax_problem();
    assert_eq!(a, b);
    assert_ne!(a, Problem::NoFrom);
    let Problem::Syntax(e) = &a else {
        panic!("{a:?}")
    };
    assert_eq!(a.to_string(), e.get().to_string());
}
