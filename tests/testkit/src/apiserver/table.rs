//! The `meta.k8s.io/v1` Table kubectl asks for (`Accept: ...;as=Table`) when printing.

use serde_json::{Value, json};

pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

pub fn render(items: &[Value], resource_version: &str) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let metadata = &item["metadata"];
            json!({
                "cells": [metadata["name"], age(now, metadata["creationTimestamp"].as_str())],
                "object": item,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version },
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
        ],
        "rows": rows,
    })
}

fn age(now: jiff::Timestamp, created: Option<&str>) -> String {
    let Some(created) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let seconds = now.as_second().saturating_sub(created.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_only_served_when_asked_first() {
        assert!(wanted(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wanted("application/json"));
        let table = render(
            &[json!({"metadata": {"name": "a", "creationTimestamp": "2000-01-01T00:00:00Z"}})],
            "5",
        );
        assert_eq!(table["rows"][0]["cells"][0], "a");
        assert!(
            table["rows"][0]["cells"][1]
                .as_str()
                .unwrap()
                .ends_with('d')
        );
    }
}
