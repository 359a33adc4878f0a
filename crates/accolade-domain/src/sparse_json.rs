//! Reading only the parts of a stored event that rules look at.
//!
//! A backfill replays millions of stored events, and building a whole `serde_json::Value` of
//! each (a `String` per key and value, a map per object) costs several times more than the rest
//! of the replay. A [`PathTree`] holds the payload paths a template's rules name; parsing an
//! event's stored body with it keeps those paths and skips everything else without allocating,
//! giving a payload on which every rule evaluates exactly as on the whole one
//! ([`crate::rules::lookup`] sees the same value at each kept path, `null` and missing alike).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The payload paths to keep (segments as in data rules: object keys, or array indexes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PathTree {
    children: BTreeMap<String, PathTree>,
    /// Keep the whole value here (a rule's path ends at this node).
    whole: bool,
}

impl PathTree {
    /// Adds one path.
    pub fn add<S: AsRef<str>>(&mut self, segments: &[S]) {
        match segments.split_first() {
            None => self.whole = true,
            Some((first, rest)) => self
                .children
                .entry(first.as_ref().to_string())
                .or_default()
                .add(rest),
        }
    }

    /// Adds every path of `other`.
    pub fn merge(&mut self, other: &PathTree) {
        self.whole |= other.whole;
        for (k, o) in &other.children {
            self.children.entry(k.clone()).or_default().merge(o);
        }
    }

    /// Whether every path `other` keeps is kept here (whole, or down to at least the same
    /// depth), so a payload parsed with this tree serves rules needing `other`'s paths.
    pub fn covers(&self, other: &PathTree) -> bool {
        self.whole
            || (!other.whole
                && other
                    .children
                    .iter()
                    .all(|(k, o)| self.children.get(k).is_some_and(|mine| mine.covers(o))))
    }

    /// Whether nothing is kept (no rule names a path).
    pub fn is_empty(&self) -> bool {
        !self.whole && self.children.is_empty()
    }

    /// The payload (the object under the event's one `data` key) of a stored event body
    /// (`{"data":{"<key>":{…}}, "event_type", …}`), holding only this tree's paths. `Null` when
    /// the body has no data object.
    pub fn payload_of_event(&self, body: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(body);
        let v = EventSeed(self).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    /// `value` parsed keeping only this tree's paths (for a payload given on its own).
    pub fn parse(&self, text: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let v = Node(self).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The whole event: only `data` is read.
struct EventSeed<'t>(&'t PathTree);

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut payload = Value::Null;
        while let Some(Key(k)) = map.next_key::<Key<'_>>()? {
            if k == "data" {
                payload = map.next_value_seed(DataSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(payload)
    }
}

/// `{"<data key>": payload}`: the first key's value is the payload.
struct DataSeed<'t>(&'t PathTree);

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event's data object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut payload = None;
        while map.next_key::<IgnoredAny>()?.is_some() {
            if payload.is_none() {
                payload = Some(map.next_value_seed(Node(self.0))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(payload.unwrap_or(Value::Null))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A value at one node of the tree: whole, or only the children the tree names.
struct Node<'t>(&'t PathTree);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.whole {
            Value::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(k)) = map.next_key::<Key<'_>>()? {
            match self.0.children.get(k.as_ref()) {
                Some(child) => {
                    let v = map.next_value_seed(Node(child))?;
                    out.insert(k.into_owned(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Kept elements stay at their index (a rule path `items.2.x` indexes the array);
        // skipped ones become null, which rules treat as missing.
        // Segments index arrays as `lookup` parses them (`00` is index 0); when two segments
        // name one index, the element is kept whole.
        let mut by_index: BTreeMap<usize, Vec<&PathTree>> = BTreeMap::new();
        for (k, child) in &self.0.children {
            if let Ok(i) = k.parse::<usize>() {
                by_index.entry(i).or_default().push(child);
            }
        }
        let whole = PathTree {
            children: BTreeMap::new(),
            whole: true,
        };
        let mut out = Vec::new();
        loop {
            let next = match by_index.get(&out.len()).map(Vec::as_slice) {
                Some([child]) => seq.next_element_seed(Node(child))?,
                Some(_) => seq.next_element_seed(Node(&whole))?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match next {
                Some(v) => out.push(v),
                None => break,
            }
        }
        while out.last() == Some(&Value::Null) {
            out.pop();
        }
        Ok(Value::Array(out))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{lookup, DataRule};
    use proptest::prelude::*;
    use serde_json::json;

    fn tree(paths: &[&str]) -> PathTree {
        let mut t = PathTree::default();
        for p in paths {
            t.add(&p.split('.').collect::<Vec<_>>());
        }
        t
    }

    #[test]
    fn keeps_only_the_named_paths() {
        let body = json!({
            "data": {"course_passing_status": {
                "is_passing": true,
                "course": {"course_key": "course-v1:A+B+C", "display_name": "Long name"},
                "user": {"pii": {"username": "ann", "email": "a@x"}, "id": 7},
                "grades": [0.5, {"score": 9}, 3],
            }},
            "event_type": "t", "id": "e", "time": "2026-01-01T00:00:00Z",
        })
        .to_string();
        let t = tree(&[
            "is_passing",
            "course.course_key",
            "grades.1.score",
            "missing.x",
        ]);
        assert_eq!(
            t.payload_of_event(&body).unwrap(),
            json!({"is_passing": true, "course": {"course_key": "course-v1:A+B+C"},
                   "grades": [null, {"score": 9}]})
        );
        // A path ending at an object keeps it whole.
        let t = tree(&["user.pii"]);
        assert_eq!(
            t.payload_of_event(&body).unwrap(),
            json!({"user": {"pii": {"username": "ann", "email": "a@x"}}})
        );
        assert_eq!(
            PathTree::default().payload_of_event(&body).unwrap(),
            json!({})
        );
    }

    #[test]
    fn a_tree_covers_its_subtrees() {
        let big = tree(&["a.b", "c", "d.e.f"]);
        assert!(big.covers(&tree(&["a.b"])));
        assert!(big.covers(&tree(&["c.x", "d.e.f"])));
        assert!(big.covers(&PathTree::default()));
        assert!(!big.covers(&tree(&["a"])));
        assert!(!big.covers(&tree(&["a.b", "z"])));
        assert!(!tree(&["a.b"]).covers(&tree(&["a.c"])));
    }

    #[test]
    fn escaped_keys_and_bad_json() {
        let t = tree(&["a"]);
        assert_eq!(
            t.payload_of_event(r#"{"data":{"k":{"\u0061":1,"b":[1,2]}}}"#)
                .unwrap(),
            json!({"a": 1})
        );
        assert!(t.payload_of_event(r#"{"data":{"k":{"a":1}"#).is_err());
        assert_eq!(t.payload_of_event(r#"{"id":"x"}"#).unwrap(), Value::Null);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-c]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c0-2]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Every rule sees the same value on the sparse payload as on the whole one.
        #[test]
        fn rules_see_the_same_values(
            payload in json_value(),
            paths in prop::collection::vec("[a-c0-2]{1,2}(\\.[a-c0-2]{1,2}){0,2}", 1..4),
        ) {
            let body = json!({"data": {"k": payload}, "id": "e"}).to_string();
            // The whole payload as parsed from the same text (a float's text need not parse
            // back to the generated value's last bit).
            let payload: Value = serde_json::from_str::<Value>(&body).unwrap()["data"]["k"].clone();
            let t = tree(&paths.iter().map(String::as_str).collect::<Vec<_>>());
            let sparse = t.payload_of_event(&body).unwrap();
            for p in &paths {
                let segs: Vec<String> = p.split('.').map(str::to_string).collect();
                prop_assert_eq!(lookup(&sparse, &segs), lookup(&payload, &segs), "{}", p);
                for op in ["=", "exists", ">"] {
                    let rule = DataRule::new(p, op, "1").unwrap().compile();
                    prop_assert_eq!(rule.matches(&sparse), rule.matches(&payload));
                }
            }
        }
    }
}
