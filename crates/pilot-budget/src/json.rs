//! The JSON instance format of `pilot mckp solve`, with messages that say what is wrong where.
//!
//! `{"capacity": C, "weights": [[w11, w12, ...], ...], "profits": [[p11, ...], ...]}`: one inner
//! list per class, capacity and weights non-negative integers, profits non-negative numbers;
//! other keys are ignored.

use std::fmt;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use pilot_core::{ErrorKind, MckpSolution};
use serde_json::{Map, Number, Value};

use crate::mckp::Fractional;
use crate::owned::OwnedInstance;

/// A rejected instance file: the category and a sentence naming the offending place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceError {
    kind: ErrorKind,
    message: String,
}

impl InstanceError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The category: [`Malformed`](ErrorKind::Malformed), [`Empty`](ErrorKind::Empty),
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) (ragged),
    /// [`OutOfRange`](ErrorKind::OutOfRange) (negative or too large numbers) or
    /// [`Infeasible`](ErrorKind::Infeasible).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for InstanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InstanceError {}

/// A parsed instance and whether every profit is an integer (so values print as integers).
#[derive(Clone, Debug, PartialEq)]
pub struct JsonInstance {
    /// The instance.
    pub instance: OwnedInstance,
    /// Every profit is a whole number.
    pub integral_profits: bool,
}

/// Parses and checks an instance.
///
/// # Errors
/// An [`InstanceError`] for malformed JSON (with line and column), a missing or mistyped field,
/// no classes or an empty class, weights and profits of different shapes, a negative number,
/// a non-integer weight or capacity, or an instance whose lightest items exceed the capacity.
pub fn parse_instance(text: &str) -> Result<JsonInstance, InstanceError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| InstanceError::new(ErrorKind::Malformed, format!("malformed JSON: {e}")))?;
    let Value::Object(root) = value else {
        return Err(InstanceError::new(
            ErrorKind::Malformed,
            "malformed instance: the top level must be an object with capacity, weights and profits",
        ));
    };
    let capacity = integer(field(&root, "capacity")?, "capacity")?;
    let weights = lists(field(&root, "weights")?, "weights")?;
    let profits = lists(field(&root, "profits")?, "profits")?;
    if weights.is_empty() {
        return Err(InstanceError::new(
            ErrorKind::Empty,
            "empty instance: weights has no classes",
        ));
    }
    if weights.len() != profits.len() {
        return Err(InstanceError::new(
            ErrorKind::DimensionMismatch,
            format!(
                "ragged instance: weights has {} classes but profits has {}",
                weights.len(),
                profits.len()
            ),
        ));
    }
    let mut instance = OwnedInstance {
        capacity,
        ..OwnedInstance::default()
    };
    let mut integral_profits = true;
    let mut min_total = 0u64;
    for (c, (w, p)) in weights.iter().zip(&profits).enumerate() {
        if w.is_empty() {
            return Err(InstanceError::new(
                ErrorKind::Empty,
                format!("empty class: weights[{c}] has no items"),
            ));
        }
        if w.len() != p.len() {
            return Err(InstanceError::new(
                ErrorKind::DimensionMismatch,
                format!(
                    "ragged class: weights[{c}] has {} items but profits[{c}] has {}",
                    w.len(),
                    p.len()
                ),
            ));
        }
        let mut lightest = u64::MAX;
        for (j, (wv, pv)) in w.iter().zip(p.iter()).enumerate() {
            let weight = integer(wv, &format!("weights[{c}][{j}]"))?;
            let profit = number(pv, &format!("profits[{c}][{j}]"))?;
            integral_profits &= profit < 9.0e15 && profit == (profit as i64) as f64;
            lightest = lightest.min(weight);
            instance.weights.push(weight);
            instance.profits.push(profit);
        }
        instance.class_ends.push(instance.weights.len());
        min_total = min_total.saturating_add(lightest);
    }
    if min_total > capacity {
        return Err(InstanceError::new(
            ErrorKind::Infeasible,
            format!(
                "infeasible instance: the lightest items of the classes weigh {min_total} together, above the capacity {capacity}"
            ),
        ));
    }
    Ok(JsonInstance {
        instance,
        integral_profits,
    })
}

fn field<'a>(root: &'a Map<String, Value>, name: &str) -> Result<&'a Value, InstanceError> {
    root.get(name)
        .ok_or_else(|| InstanceError::new(ErrorKind::Malformed, format!("missing field `{name}`")))
}

fn lists<'a>(value: &'a Value, name: &str) -> Result<Vec<&'a Vec<Value>>, InstanceError> {
    let not_lists = || {
        InstanceError::new(
            ErrorKind::Malformed,
            format!("`{name}` must be a list of lists of numbers (one list per class)"),
        )
    };
    let outer = value.as_array().ok_or_else(not_lists)?;
    outer
        .iter()
        .map(|inner| inner.as_array().ok_or_else(not_lists))
        .collect()
}

fn negative(at: &str, n: &Number) -> InstanceError {
    InstanceError::new(
        ErrorKind::OutOfRange,
        format!("negative number at {at}: {n} (numbers must be >= 0)"),
    )
}

fn integer(value: &Value, at: &str) -> Result<u64, InstanceError> {
    let Value::Number(n) = value else {
        return Err(InstanceError::new(
            ErrorKind::Malformed,
            format!("{at} must be a non-negative integer, found {value}"),
        ));
    };
    if let Some(v) = n.as_u64() {
        return Ok(v);
    }
    if n.as_i64().is_some_and(|v| v < 0) || n.as_f64().is_some_and(|v| v < 0.0) {
        return Err(negative(at, n));
    }
    Err(InstanceError::new(
        ErrorKind::Malformed,
        format!("{at} must be a non-negative integer (at most 2^64 - 1), found {n}"),
    ))
}

fn number(value: &Value, at: &str) -> Result<f64, InstanceError> {
    let Value::Number(n) = value else {
        return Err(InstanceError::new(
            ErrorKind::Malformed,
            format!("{at} must be a non-negative number, found {value}"),
        ));
    };
    match n.as_f64() {
        Some(v) if v < 0.0 => Err(negative(at, n)),
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(InstanceError::new(
            ErrorKind::OutOfRange,
            format!("{at} is not a finite number: {n}"),
        )),
    }
}

fn value_json(v: f64, integral: bool) -> Value {
    if integral && v.abs() < 9.0e15 && v == (v as i64) as f64 {
        Value::from(v as i64)
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// The one-line JSON answer: `{"value", "choice", "weight", "bound"?, "fractional"?}`.
/// Values print as integers when `integral_profits` and they are whole.
pub fn render_solution(
    solution: &MckpSolution,
    choice: &[usize],
    integral_profits: bool,
    fractional: Option<&Fractional>,
) -> String {
    let mut out = Map::new();
    out.insert("value".into(), value_json(solution.value, integral_profits));
    out.insert("choice".into(), Value::from(choice.to_vec()));
    out.insert("weight".into(), Value::from(solution.weight));
    if let Some(bound) = solution.bound {
        out.insert("bound".into(), value_json(bound, integral_profits));
    }
    if let Some(f) = fractional {
        let mut frac = Map::new();
        frac.insert("class".into(), Value::from(f.class));
        frac.insert("lower".into(), Value::from(f.lower));
        frac.insert("upper".into(), Value::from(f.upper));
        frac.insert(
            "fraction".into(),
            Number::from_f64(f.fraction).map_or(Value::Null, Value::Number),
        );
        out.insert("fractional".into(), Value::Object(frac));
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn err(text: &str) -> InstanceError {
        parse_instance(text).unwrap_err()
    }

    #[test]
    fn parses_and_ignores_extra_keys() {
        let j = parse_instance(
            r#"{"capacity": 5, "weights": [[1, 4], [2]], "profits": [[1, 3.5], [2]], "note": "x"}"#,
        )
        .unwrap();
        assert_eq!(j.instance.class_ends, vec![2, 3]);
        assert_eq!(j.instance.profits, vec![1.0, 3.5, 2.0]);
        assert!(!j.integral_profits);
    }

    #[test]
    fn each_problem_is_named() {
        let e = err(r#"{"capacity": 5, "weights": [[1, 4], [2]], "profits": [[1, 3]]}"#);
        assert_eq!(e.kind(), ErrorKind::DimensionMismatch);
        assert!(
            e.to_string()
                .contains("weights has 2 classes but profits has 1")
        );
        let e = err(r#"{"capacity": 5, "weights": [[1, 4], [2]], "profits": [[1, 3], [2, 2]]}"#);
        assert!(
            e.to_string()
                .contains("weights[1] has 1 items but profits[1] has 2"),
            "{e}"
        );
        let e = err(r#"{"capacity": 5, "weights": [[1], []], "profits": [[1], []]}"#);
        assert_eq!(e.kind(), ErrorKind::Empty);
        assert!(e.to_string().contains("weights[1]"));
        let e = err(r#"{"capacity": 5, "weights": [], "profits": []}"#);
        assert_eq!(e.kind(), ErrorKind::Empty);
        let e = err(r#"{"capacity": 5, "weights": [[1, -4]], "profits": [[1, 3]]}"#);
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
        assert!(e.to_string().contains("weights[0][1]: -4"), "{e}");
        let e = err(r#"{"capacity": -1, "weights": [[1]], "profits": [[1]]}"#);
        assert!(e.to_string().contains("negative number at capacity"), "{e}");
        let e = err(r#"{"capacity": 5, "weights": [[1]], "profits": [[-0.5]]}"#);
        assert!(e.to_string().contains("profits[0][0]"), "{e}");
        let e = err(r#"{"capacity": 5, "weights": [[1.5]], "profits": [[1]]}"#);
        assert_eq!(e.kind(), ErrorKind::Malformed);
        let e = err(r#"{"capacity": 5, "weights": [[1]]}"#);
        assert!(e.to_string().contains("missing field `profits`"));
        let e = err("{\"capacity\": 5,\n \"weights\": [[1]");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = err(r#"{"capacity": 2, "weights": [[3, 4], [0]], "profits": [[1, 1], [0]]}"#);
        assert_eq!(e.kind(), ErrorKind::Infeasible);
        assert!(e.to_string().contains("weigh 3"), "{e}");
        assert_eq!(err("[1, 2]").kind(), ErrorKind::Malformed);
    }

    #[test]
    fn renders_integers_when_profits_are_integral() {
        let s = MckpSolution {
            value: 7.0,
            weight: 4,
            bound: Some(7.5),
        };
        assert_eq!(
            render_solution(&s, &[1, 0], true, None),
            r#"{"bound":7.5,"choice":[1,0],"value":7,"weight":4}"#
        );
        assert!(render_solution(&s, &[1, 0], false, None).contains(r#""value":7.0"#));
    }
}
