//! docs/data.md stays true: every ```json block on it parses as a routing dataset, with the pool,
//! nulls and splits the page says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_data::{MissingCell, RoutingDataset};

/// The body of every ```json block of the page.
fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(String::new()),
            (Some(body), "```") => {
                blocks.push(std::mem::take(body));
                current = None;
            }
            (Some(body), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unterminated ```json block");
    blocks
}

fn page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/data.md");
    std::fs::read_to_string(path).expect("docs/data.md")
}

#[test]
fn every_example_on_the_page_parses() {
    let blocks = json_blocks(&page());
    assert!(!blocks.is_empty(), "docs/data.md has no ```json example");
    for (i, block) in blocks.iter().enumerate() {
        let data = RoutingDataset::parse(block, format!("docs/data.md block {i}"))
            .unwrap_or_else(|e| panic!("docs/data.md block {i}: {e}"));
        assert!(!data.rows.is_empty());
    }
}

#[test]
fn the_example_has_the_pool_nulls_and_splits_the_page_describes() {
    let blocks = json_blocks(&page());
    let data = RoutingDataset::parse(&blocks[0], "docs/data.md").unwrap();
    // The pool is the first line's `quality` keys, in file order; line 2 lists them reversed.
    assert_eq!(data.llms, ["big-llm", "small-llm"]);
    assert_eq!(data.rows[1].quality, [Some(1.0), Some(1.0)]);
    assert_eq!(data.rows[1].cost, [Some(0.0052), Some(0.0004)]);
    assert_eq!(data.splits(), ["train", "test"]);
    assert_eq!(data.split_indices("train"), [0, 1]);
    assert_eq!(data.tasks(), ["math", "code"]);
    assert_eq!(
        data.missing_cells(),
        [MissingCell {
            row: 2,
            llm: 1,
            quality: true,
            cost: true,
        }]
    );
    let ids: Vec<&str> = data.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["q1", "q2", "q3"]);
}

#[test]
fn what_the_page_says_is_refused_is_refused() {
    let blocks = json_blocks(&page());
    let first = blocks[0].lines().next().unwrap();
    for (what, bad) in [
        (
            "a quality outside [0, 1]",
            first.replace("\"big-llm\": 1.0", "\"big-llm\": 1.5"),
        ),
        ("a negative cost", first.replace("0.0031", "-0.0031")),
        (
            "an LLM missing from cost_usd",
            first.replace("\"big-llm\": 0.0031, ", ""),
        ),
    ] {
        let text = format!("{first}\n{bad}\n");
        assert!(
            RoutingDataset::parse(&text, "bad.jsonl").is_err(),
            "{what} was accepted"
        );
    }
}
