//! Every loader's error paths on small inline files: the error names file, line and field.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on purpose

use pilot_core::ErrorKind;
use pilot_data::{
    BanditLog, BanditLogHeader, BanditLogWriter, DataError, Embeddings, JudgeDataset,
    PreferenceSet, RoutingDataset,
};

const GOOD: &str = concat!(
    r#"{"id":"q1","task":"t1","split":"train","query":"a","prompt":"ignored","quality":{"m1":1.0,"m2":0.0},"cost_usd":{"m1":0.5,"m2":0.1}}"#,
    "\n",
    r#"{"id":"q2","task":"t2","split":"test","query":"b","quality":{"m2":null,"m1":0.5},"cost_usd":{"m1":0.25,"m2":null}}"#,
    "\n",
    r#"{"id":"q3","task":"t1","split":"train","query":"c","quality":{"m1":0.0,"m2":1.0},"cost_usd":{"m1":0.5,"m2":0.3}}"#,
    "\n"
);

fn routing_err(text: &str) -> DataError {
    RoutingDataset::parse(text, "r.jsonl").unwrap_err()
}

fn line2(patch: &str) -> String {
    let mut lines: Vec<&str> = GOOD.lines().collect();
    lines[1] = patch;
    lines.join("\n")
}

#[test]
fn routing_dataset_reads_pool_rows_nulls_splits_and_tasks() {
    let d = RoutingDataset::parse(GOOD, "r.jsonl").unwrap();
    assert_eq!(d.llms, ["m1", "m2"]);
    assert_eq!(d.rows.len(), 3);
    // Line 2 lists m2 first; values land in pool order.
    assert_eq!(d.rows[1].quality, [Some(0.5), None]);
    assert_eq!(d.rows[1].cost, [Some(0.25), None]);
    assert_eq!(d.split_indices("train"), [0, 2]);
    assert_eq!(d.task_indices("t2"), [1]);
    assert_eq!(d.splits(), ["train", "test"]);
    assert_eq!(d.tasks(), ["t1", "t2"]);
    let missing = d.missing_cells();
    assert_eq!(missing.len(), 1);
    assert_eq!((missing[0].row, missing[0].llm), (1, 1));
    assert!(missing[0].quality && missing[0].cost);
    let q = d.mean_quality(&[0, 1, 2]);
    assert_eq!(q, [Some(0.5), Some(0.5)]);
    assert_eq!(d.mean_cost(&[1]), [Some(0.25), None]);
    let sub = d.subset(&[2, 0]).unwrap();
    assert_eq!(sub.rows[0].id, "q3");
    assert_eq!(d.subset(&[3]).unwrap_err().kind(), ErrorKind::OutOfRange);
    assert_eq!(d.llm_index("m2"), Some(1));
}

#[test]
fn routing_quality_out_of_range_names_line_and_llm() {
    let e = routing_err(&line2(
        r#"{"task":"t","split":"s","query":"q","quality":{"m1":1.5,"m2":0},"cost_usd":{"m1":0,"m2":0}}"#,
    ));
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.field(), Some("quality[\"m1\"]"));
    assert_eq!(
        e.to_string(),
        "r.jsonl:2: field `quality[\"m1\"]`: expected a quality in [0, 1], found 1.5"
    );
}

#[test]
fn routing_negative_cost_wrong_type_unknown_and_missing_llm() {
    let e = routing_err(&line2(
        r#"{"task":"t","split":"s","query":"q","quality":{"m1":1,"m2":0},"cost_usd":{"m1":-1,"m2":0}}"#,
    ));
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::NegativeCost, Some("cost_usd[\"m1\"]"))
    );

    let e = routing_err(&line2(
        r#"{"task":"t","split":"s","query":"q","quality":{"m1":"yes","m2":0},"cost_usd":{"m1":1,"m2":0}}"#,
    ));
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(
        e.message()
            .contains("expected a number or null, found string \"yes\""),
        "{e}"
    );

    let e = routing_err(&line2(
        r#"{"task":"t","split":"s","query":"q","quality":{"m1":1,"m2":0,"m3":1},"cost_usd":{"m1":1,"m2":0}}"#,
    ));
    assert_eq!(e.kind(), ErrorKind::UnknownArm);
    assert!(
        e.to_string().contains("LLM \"m3\" is not in the pool"),
        "{e}"
    );

    let e = routing_err(&line2(
        r#"{"task":"t","split":"s","query":"q","quality":{"m1":1,"m2":0},"cost_usd":{"m1":1}}"#,
    ));
    assert_eq!(e.kind(), ErrorKind::DimensionMismatch);
    assert_eq!(e.field(), Some("cost_usd"));
    assert!(e.message().contains("\"m2\""), "{e}");
    assert!(e.message().contains("expected 2 LLMs, found 1"), "{e}");
}

#[test]
fn routing_syntax_missing_field_blank_line_empty_file_and_empty_pool() {
    let e = routing_err(&line2(r#"{"task":"t","split":"s""#));
    assert_eq!((e.kind(), e.line()), (ErrorKind::Malformed, Some(2)));
    assert!(e.message().starts_with("not valid JSON"), "{e}");

    let e = routing_err(&line2(
        r#"{"task":"t","query":"q","quality":{"m1":1,"m2":0},"cost_usd":{"m1":1,"m2":0}}"#,
    ));
    assert!(e.message().contains("missing field `split`"), "{e}");
    assert_eq!(e.line(), Some(2));

    let e = routing_err(&line2(""));
    assert_eq!((e.kind(), e.line()), (ErrorKind::Malformed, Some(2)));
    assert!(e.message().contains("empty line"));

    assert_eq!(routing_err("").kind(), ErrorKind::Empty);

    let e = routing_err(r#"{"task":"t","split":"s","query":"q","quality":{},"cost_usd":{}}"#);
    assert_eq!((e.kind(), e.field()), (ErrorKind::Empty, Some("quality")));

    let e = routing_err(
        r#"{"task":"t","split":"s","query":"q","quality":{"a":1,"a":0},"cost_usd":{"a":1}}"#,
    );
    assert!(e.message().contains("twice"), "{e}");
}

#[test]
fn routing_missing_file_is_an_io_error_naming_it() {
    let e = RoutingDataset::load("/nonexistent/dir/data.jsonl").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(
        e.to_string().starts_with("/nonexistent/dir/data.jsonl: "),
        "{e}"
    );
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn embeddings_rows_dim_size_nan_and_row_count() {
    let e =
        Embeddings::from_le_bytes(&f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 3, "e.f32").unwrap();
    assert_eq!((e.rows(), e.dim()), (2, 3));
    assert_eq!(e.get(1), Some(&[4.0, 5.0, 6.0][..]));
    assert_eq!(e.get(2), None);
    assert_eq!(e.iter().count(), 2);
    e.expect_rows(2).unwrap();
    let err = e.expect_rows(3).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
    assert!(err.message().contains("expected 3 rows"), "{err}");
    assert!(err.message().contains("found 2 rows"), "{err}");

    let err = Embeddings::from_le_bytes(&f32_bytes(&[1.0; 5]), 3, "e.f32").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
    assert!(err.message().contains("20 bytes"), "{err}");
    assert!(err.message().contains("4 · dim = 12"), "{err}");

    let err =
        Embeddings::from_le_bytes(&f32_bytes(&[1.0, f32::NAN, 0.0, 0.0]), 2, "e.f32").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NonFinite);
    assert!(err.message().contains("row 0 column 1"), "{err}");

    assert_eq!(
        Embeddings::from_le_bytes(&[], 2, "e.f32")
            .unwrap_err()
            .kind(),
        ErrorKind::Empty
    );
    assert_eq!(
        Embeddings::from_le_bytes(&[0; 8], 0, "e.f32")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidParameter
    );
    assert_eq!(
        Embeddings::from_vec(vec![1.0; 5], 2, "v")
            .unwrap_err()
            .kind(),
        ErrorKind::DimensionMismatch
    );
}

#[test]
fn embeddings_save_and_load_round_trip() {
    let dir = std::env::temp_dir().join(format!("pilot-data-emb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("e.f32");
    let e = Embeddings::from_vec(vec![0.5, -1.0, 2.0, 3.25], 2, "v").unwrap();
    e.save(&path).unwrap();
    let back = Embeddings::load_rows(&path, 2, 2).unwrap();
    assert_eq!(back.as_slice(), e.as_slice());
    let err = Embeddings::load_rows(&path, 2, 5).unwrap_err();
    assert_eq!(err.path(), path.as_path());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn judge_scores_union_of_models_nulls_and_errors() {
    let text = concat!(
        r#"{"id":"p1","prompt":"x","judge_score":{"a":10.0,"b":2.0},"answer_chars":{"a":5,"z":3}}"#,
        "\n",
        r#"{"id":"p2","prompt":"y","judge_score":{"c":7.0,"a":null}}"#,
        "\n"
    );
    let j = JudgeDataset::parse(text, "j.jsonl").unwrap();
    assert_eq!(j.models, ["a", "b", "c"]);
    assert_eq!(j.rows[0].scores, [Some(10.0), Some(2.0), None]);
    assert_eq!(j.rows[1].scores, [None, None, Some(7.0)]);
    assert_eq!(j.rows[0].answer_chars, [Some(5), None, None]);
    assert_eq!(j.model_index("c"), Some(2));

    let e =
        JudgeDataset::parse(r#"{"prompt":"x","judge_score":{"a":"ten"}}"#, "j.jsonl").unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::Malformed, Some("judge_score[\"a\"]"))
    );
    let e = JudgeDataset::parse(
        r#"{"prompt":"x","judge_score":{"a":1},"answer_chars":{"a":-3}}"#,
        "j.jsonl",
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("answer_chars[\"a\"]"));
    let e = JudgeDataset::parse(r#"{"judge_score":{"a":1}}"#, "j.jsonl").unwrap_err();
    assert!(e.message().contains("missing field `prompt`"), "{e}");
    let e = JudgeDataset::parse(r#"{"prompt":"x","judge_score":{}}"#, "j.jsonl").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Empty);
}

const LOG: &str = concat!(
    r#"{"K":2,"d":3,"arms":["a","b"]}"#,
    "\n",
    r#"{"x":[0.1,0.2,0.3],"r":[1,0]}"#,
    "\n",
    r#"{"x":[0,0,1],"r":[0.5,0.25],"cost":[0.01,0]}"#,
    "\n"
);

fn log_err(text: &str) -> DataError {
    BanditLog::parse(text, "log.jsonl").unwrap_err()
}

#[test]
fn bandit_log_reads_steps_with_optional_costs() {
    let log = BanditLog::parse(LOG, "log.jsonl").unwrap();
    assert_eq!(log.header.k, 2);
    assert_eq!(log.header.arms, ["a", "b"]);
    assert_eq!(log.steps.len(), 2);
    assert_eq!(log.steps[0].x, [0.1, 0.2, 0.3]);
    assert_eq!(log.steps[0].cost, None);
    assert_eq!(log.steps[1].cost.as_deref(), Some(&[0.01, 0.0][..]));
}

#[test]
fn bandit_log_errors_name_line_and_field() {
    let e = log_err(r#"{"K":2,"d":3,"arms":["a"]}"#);
    assert_eq!(
        (e.kind(), e.line(), e.field()),
        (ErrorKind::DimensionMismatch, Some(1), Some("arms"))
    );
    let e = log_err(r#"{"K":0,"d":3,"arms":[]}"#);
    assert_eq!(e.kind(), ErrorKind::Empty);
    let e = log_err(r#"{"d":3,"arms":[]}"#);
    assert!(e.message().contains("missing field `K`"), "{e}");

    let head = r#"{"K":2,"d":3,"arms":["a","b"]}"#;
    let e = log_err(&format!("{head}\n{}", r#"{"x":[0.1,0.2],"r":[1,0]}"#));
    assert_eq!(
        (e.kind(), e.line(), e.field()),
        (ErrorKind::DimensionMismatch, Some(2), Some("x"))
    );
    assert_eq!(e.message(), "expected 3 values, found 2");
    let e = log_err(&format!("{head}\n{}", r#"{"x":[0,0,0],"r":[1,"no"]}"#));
    assert_eq!(e.field(), Some("r[1]"));
    let e = log_err(&format!(
        "{head}\n{}",
        r#"{"x":[0,0,0],"r":[1,0],"cost":[-1,0]}"#
    ));
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::NegativeCost, Some("cost[0]"))
    );
    let e = log_err(&format!(
        "{head}\n{}",
        r#"{"x":[0,0,0],"r":[1,0],"extra":1}"#
    ));
    assert_eq!(e.field(), Some("extra"));
    let e = log_err(&format!("{head}\n{}", r#"{"x":[0,0,0]}"#));
    assert_eq!((e.field(), e.message()), (Some("r"), "missing field"));
    let e = log_err(head);
    assert_eq!(e.kind(), ErrorKind::Empty);
    assert_eq!(log_err("").kind(), ErrorKind::Empty);
}

#[test]
fn bandit_log_writer_round_trips_and_rejects_bad_steps() {
    let header = BanditLogHeader {
        k: 2,
        d: 1,
        arms: vec!["a".into(), "b".into()],
    };
    let mut w = BanditLogWriter::new(Vec::new(), header.clone(), "out.jsonl").unwrap();
    w.write_step(&[0.125], &[1.0, 0.0], None).unwrap();
    let e = w.write_step(&[f64::NAN], &[1.0, 0.0], None).unwrap_err();
    assert_eq!(
        (e.kind(), e.line(), e.field()),
        (ErrorKind::NonFinite, Some(3), Some("x[0]"))
    );
    let e = w.write_step(&[0.0], &[1.0], None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DimensionMismatch);
    let e = w
        .write_step(&[0.0], &[1.0, 0.0], Some(&[0.0, -0.5]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NegativeCost);
    w.write_step(&[-3.5], &[0.0, 0.75], Some(&[0.001, 0.5]))
        .unwrap();
    let bytes = w.finish().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.lines().count(), 3, "bad steps wrote nothing");
    let log = BanditLog::parse(&text, "out.jsonl").unwrap();
    assert_eq!(log.header, header);
    assert_eq!(log.steps[1].x, [-3.5]);
    assert_eq!(log.steps[1].r, [0.0, 0.75]);
    assert_eq!(log.steps[1].cost.as_deref(), Some(&[0.001, 0.5][..]));
}

#[test]
fn pairs_file_reads_ties_weights_and_checks_names_rows() {
    let text = concat!(
        r#"{"llms":["a","b","c"]}"#,
        "\n",
        r#"{"row":0,"preferred":"a","other":"b"}"#,
        "\n",
        r#"{"row":1,"preferred":"c","other":"b","tie":true,"weight":0.5}"#,
        "\n"
    );
    let p = PreferenceSet::parse(text, "p.jsonl", Some(2)).unwrap();
    assert_eq!(p.llms.len(), 3);
    assert_eq!((p.pairs[1].preferred, p.pairs[1].other), (2, 1));
    assert!(p.pairs[1].tie);
    assert_eq!(p.pairs[0].weight, 1.0);

    let e = PreferenceSet::parse(text, "p.jsonl", Some(1)).unwrap_err();
    assert_eq!(
        (e.kind(), e.line(), e.field()),
        (ErrorKind::DimensionMismatch, Some(3), Some("row"))
    );
    let bad = text.replace(r#""other":"b"}"#, r#""other":"zz"}"#);
    let e = PreferenceSet::parse(&bad, "p.jsonl", None).unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::UnknownArm, Some("other"))
    );
    let bad = text.replace(r#""other":"b"}"#, r#""other":"a"}"#);
    assert_eq!(
        PreferenceSet::parse(&bad, "p.jsonl", None)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidParameter
    );
    let bad = text.replace("0.5", "-1");
    let e = PreferenceSet::parse(&bad, "p.jsonl", None).unwrap_err();
    assert_eq!(e.field(), Some("weight"));
    let e = PreferenceSet::parse(r#"{"llms":["a","b"]}"#, "p.jsonl", None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Empty);

    let dir = std::env::temp_dir().join(format!("pilot-data-pairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.jsonl");
    p.save(&path).unwrap();
    let back = PreferenceSet::load(&path, Some(2)).unwrap();
    assert_eq!(back.pairs, p.pairs);
    assert_eq!(back.llms, p.llms);
    std::fs::remove_dir_all(&dir).unwrap();
}
