//! Data rules: a key path into the event payload, an operator and an expected value.
//!
//! Values are compared the way the Open edX Credentials service compares them (it stringifies the
//! payload value Python-style: booleans become `True`/`False`), with the documented boolean
//! aliases on both sides: `true True yes Yes +` and `false False no No -`. A path that is missing
//! (or `null`) never equals anything: `=`, `in`, `exists` and the numeric operators are false for
//! it, `!=`, `not_in` and `not_exists` are true.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DomainError;

/// Comparison operator of a data rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "not_in")]
    NotIn,
    #[serde(rename = "exists")]
    Exists,
    #[serde(rename = "not_exists")]
    NotExists,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Operator {
    pub const ALL: [Operator; 10] = [
        Operator::Eq,
        Operator::Ne,
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::NotExists,
        Operator::Lt,
        Operator::Le,
        Operator::Gt,
        Operator::Ge,
    ];

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(match s.trim() {
            "=" | "==" | "eq" => Operator::Eq,
            "!=" | "ne" => Operator::Ne,
            "in" => Operator::In,
            "not_in" => Operator::NotIn,
            "exists" => Operator::Exists,
            "not_exists" => Operator::NotExists,
            "<" | "lt" => Operator::Lt,
            "<=" | "le" => Operator::Le,
            ">" | "gt" => Operator::Gt,
            ">=" | "ge" => Operator::Ge,
            other => return Err(DomainError::UnknownOperator(other.to_string())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Exists => "exists",
            Operator::NotExists => "not_exists",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
        }
    }

    fn needs_value(self) -> bool {
        !matches!(self, Operator::Exists | Operator::NotExists)
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge
        )
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data rule as configured (and stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRule {
    pub path: String,
    #[serde(rename = "op")]
    pub operator: Operator,
    #[serde(default)]
    pub value: String,
}

impl DataRule {
    /// Builds and validates a rule from its textual parts.
    pub fn new(path: &str, operator: &str, value: &str) -> Result<Self, DomainError> {
        let rule = DataRule {
            path: path.trim().to_string(),
            operator: Operator::parse(operator)?,
            value: value.to_string(),
        };
        rule.validate()?;
        Ok(rule)
    }

    /// Checks path syntax and that the value suits the operator.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_path(&self.path)?;
        let op = self.operator;
        if op.needs_value() && self.value.trim().is_empty() {
            return Err(DomainError::MissingValue { op: op.to_string() });
        }
        if op.is_numeric() && self.value.trim().parse::<f64>().is_err() {
            return Err(DomainError::NotANumber {
                op: op.to_string(),
                value: self.value.clone(),
            });
        }
        Ok(())
    }

    /// Pre-processes the rule for fast repeated evaluation.
    pub fn compile(&self) -> CompiledRule {
        let expected = match self.operator {
            Operator::In | Operator::NotIn => Expected::List(
                self.value
                    .split(',')
                    .map(|v| canonical(v.trim()).to_string())
                    .collect(),
            ),
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                Expected::Number(self.value.trim().parse().unwrap_or(f64::NAN))
            }
            Operator::Exists | Operator::NotExists => Expected::Nothing,
            Operator::Eq | Operator::Ne => Expected::Text(canonical(&self.value).to_string()),
        };
        CompiledRule {
            segments: self.path.split('.').map(str::to_string).collect(),
            operator: self.operator,
            expected,
        }
    }
}

/// A key path is one or more dot-separated segments of letters, digits, `_` or `-`.
pub fn validate_path(path: &str) -> Result<(), DomainError> {
    let ok = !path.is_empty()
        && path.len() <= 255
        && path.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(DomainError::InvalidPath(path.to_string()))
    }
}

/// Maps the documented boolean aliases onto Python's `True`/`False`; other text is unchanged.
pub fn canonical(value: &str) -> &str {
    match value {
        "true" | "True" | "yes" | "Yes" | "+" => "True",
        "false" | "False" | "no" | "No" | "-" => "False",
        other => other,
    }
}

#[derive(Debug, Clone)]
enum Expected {
    Text(String),
    List(Vec<String>),
    Number(f64),
    Nothing,
}

/// A rule ready for evaluation against payloads.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    segments: Vec<String>,
    operator: Operator,
    expected: Expected,
}

impl CompiledRule {
    /// Evaluates the rule against an event payload (the object under the signal's data key).
    pub fn matches(&self, payload: &Value) -> bool {
        let actual = lookup(payload, &self.segments);
        match (&self.expected, self.operator) {
            (_, Operator::Exists) => actual.is_some(),
            (_, Operator::NotExists) => actual.is_none(),
            (Expected::Text(want), Operator::Eq) => actual.is_some_and(|v| text_eq(v, want)),
            (Expected::Text(want), Operator::Ne) => !actual.is_some_and(|v| text_eq(v, want)),
            (Expected::List(wants), Operator::In) => {
                actual.is_some_and(|v| wants.iter().any(|w| text_eq(v, w)))
            }
            (Expected::List(wants), Operator::NotIn) => {
                !actual.is_some_and(|v| wants.iter().any(|w| text_eq(v, w)))
            }
            (Expected::Number(want), op) => match actual.and_then(as_number) {
                Some(n) => match op {
                    Operator::Lt => n < *want,
                    Operator::Le => n <= *want,
                    Operator::Gt => n > *want,
                    Operator::Ge => n >= *want,
                    _ => false,
                },
                None => false,
            },
            _ => false,
        }
    }
}

/// Follows a dot path; `null` counts as missing.
pub fn lookup<'a>(payload: &'a Value, segments: &[String]) -> Option<&'a Value> {
    let mut cur = payload;
    for seg in segments {
        cur = match cur {
            Value::Object(map) => map.get(seg.as_str())?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

fn text_eq(actual: &Value, want: &str) -> bool {
    match actual {
        Value::Bool(true) => want == "True",
        Value::Bool(false) => want == "False",
        Value::String(s) => canonical(s) == want,
        Value::Number(n) => {
            // Compare numerically so `5`, `5.0` and `5` all agree.
            match (n.as_f64(), want.parse::<f64>()) {
                (Some(a), Ok(b)) => a == b,
                _ => n.to_string() == want,
            }
        }
        Value::Null => false,
        // Objects and arrays compare by their JSON text.
        other => serde_json::to_string(other).is_ok_and(|text| text == want),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True when all rules match (an empty rule list matches every payload).
pub fn all_match(rules: &[CompiledRule], payload: &Value) -> bool {
    rules.iter().all(|r| r.matches(payload))
}

/// Every leaf key path of a JSON object, for suggesting rule paths from a sample payload.
pub fn leaf_paths(payload: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, child, out);
                }
            }
            _ if !prefix.is_empty() => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", payload, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(path: &str, op: &str, value: &str) -> CompiledRule {
        DataRule::new(path, op, value).unwrap().compile()
    }

    fn payload() -> Value {
        json!({"is_passing": true, "grade": 0.82, "attempts": "3",
               "course": {"course_key": "course-v1:OpenedX+DemoX+Demo_Course", "start": null},
               "user": {"pii": {"username": "jdoe"}}})
    }

    #[test]
    fn boolean_aliases_match_python_stringification() {
        let p = payload();
        for alias in ["true", "True", "yes", "Yes", "+"] {
            assert!(rule("is_passing", "=", alias).matches(&p), "{alias}");
            assert!(!rule("is_passing", "!=", alias).matches(&p), "{alias}");
        }
        for alias in ["false", "False", "no", "No", "-"] {
            assert!(!rule("is_passing", "=", alias).matches(&p), "{alias}");
            assert!(rule("is_passing", "!=", alias).matches(&p), "{alias}");
        }
    }

    #[test]
    fn equality_on_nested_paths() {
        let p = payload();
        assert!(rule(
            "course.course_key",
            "=",
            "course-v1:OpenedX+DemoX+Demo_Course"
        )
        .matches(&p));
        assert!(!rule("course.course_key", "=", "course-v1:Other").matches(&p));
        assert!(rule("course.course_key", "!=", "course-v1:Other").matches(&p));
    }

    #[test]
    fn missing_or_null_path_never_equals() {
        let p = payload();
        assert!(!rule("course.nope", "=", "x").matches(&p));
        assert!(!rule("course.start", "=", "None").matches(&p));
        assert!(rule("course.nope", "!=", "x").matches(&p));
        assert!(!rule("course.nope", "in", "x,y").matches(&p));
        assert!(rule("course.nope", "not_in", "x,y").matches(&p));
        assert!(!rule("course.nope", ">", "1").matches(&p));
        assert!(!rule("course.start", "exists", "").matches(&p));
        assert!(rule("course.start", "not_exists", "").matches(&p));
        assert!(rule("course.course_key", "exists", "").matches(&p));
    }

    #[test]
    fn list_and_numeric_operators() {
        let p = payload();
        assert!(rule(
            "course.course_key",
            "in",
            "a, course-v1:OpenedX+DemoX+Demo_Course"
        )
        .matches(&p));
        assert!(!rule(
            "course.course_key",
            "not_in",
            "a,course-v1:OpenedX+DemoX+Demo_Course"
        )
        .matches(&p));
        assert!(rule("grade", ">=", "0.8").matches(&p));
        assert!(rule("grade", "<", "1").matches(&p));
        assert!(!rule("grade", ">", "0.82").matches(&p));
        assert!(rule("grade", "<=", "0.82").matches(&p));
        assert!(
            rule("attempts", ">", "2").matches(&p),
            "numeric strings compare as numbers"
        );
        assert!(
            !rule("course.course_key", ">", "2").matches(&p),
            "text is not a number"
        );
    }

    #[test]
    fn validation_refuses_bad_rules() {
        assert_eq!(
            DataRule::new("a", "~", "x").unwrap_err().code(),
            "unknown_operator"
        );
        assert_eq!(
            DataRule::new("a..b", "=", "x").unwrap_err().code(),
            "invalid_path"
        );
        assert_eq!(
            DataRule::new("", "=", "x").unwrap_err().code(),
            "invalid_path"
        );
        assert_eq!(
            DataRule::new("a", "=", " ").unwrap_err().code(),
            "missing_value"
        );
        assert_eq!(
            DataRule::new("a", ">", "ten").unwrap_err().code(),
            "not_a_number"
        );
        assert!(DataRule::new("a", "exists", "").is_ok());
    }

    #[test]
    fn empty_rule_list_matches_everything() {
        assert!(all_match(&[], &payload()));
    }

    #[test]
    fn leaf_paths_lists_nested_keys() {
        let paths = leaf_paths(&payload());
        assert!(paths.contains(&"course.course_key".to_string()));
        assert!(paths.contains(&"user.pii.username".to_string()));
    }
}
