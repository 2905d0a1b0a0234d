//! `jetforge schema recipe|config|targets [--markdown]`: the JSON Schema of each file format,
//! made from the types that parse it, and the Markdown reference the README carries (a test
//! keeps the README equal to it).

use anyhow::Result;
use serde_json::Value;

use crate::cli::{SchemaArgs, SchemaKind};

pub fn run(a: &SchemaArgs) -> Result<()> {
    let schema = json_schema(a.what);
    if a.markdown {
        print!("{}", markdown(&schema));
    } else {
        println!("{}", serde_json::to_string_pretty(&schema)?);
    }
    Ok(())
}

fn json_schema(what: SchemaKind) -> Value {
    match what {
        SchemaKind::Recipe => crate::recipe::schema::json_schema(),
        SchemaKind::Config => crate::config::json_schema(),
        SchemaKind::Targets => crate::target::json_schema(),
    }
}

/// The reference: one table per TOML table, every key with its type, default and meaning.
fn markdown(schema: &Value) -> String {
    let mut out = String::new();
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        out.push_str(&format!("{}\n", one_line(d)));
    }
    table(schema, schema, "", &mut out);
    out
}

/// Writes the keys of `obj` (a table at `path`, "" for the top level) and then its sub-tables.
fn table(root: &Value, obj: &Value, path: &str, out: &mut String) {
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut keys = Vec::new();
    let mut subs = Vec::new();
    for (name, prop) in props {
        let shown = resolve(root, prop);
        let key = join(path, name);
        if let Some(t) = sub_table(root, &shown) {
            let (header, sub_path, body) = match t {
                Sub::Table(b) => (format!("`[{key}]`"), key, b),
                Sub::Array(b) => (format!("`[[{key}]]`"), key, b),
                Sub::Map(b) => (format!("`[{key}.NAME]`"), format!("{key}.NAME"), b),
            };
            subs.push((header, sub_path, describe(prop, &shown), body));
            continue;
        }
        keys.push(format!(
            "| `{name}` | {}{} | {} | {} |\n",
            type_name(root, &shown),
            if required.contains(&name.as_str()) {
                ", required"
            } else {
                ""
            },
            prop.get("default")
                .filter(|d| !d.is_null())
                .map_or(String::new(), |d| format!("`{d}`")),
            cell(&describe(prop, &shown)),
        ));
        // A key whose value may also be a table (a build step) gets that table's keys too.
        for alt in alternatives(&shown) {
            let alt = resolve(root, alt);
            if alt.get("properties").is_some() {
                subs.push((
                    format!("`{key}` as a table"),
                    key.clone(),
                    describe(&alt, &alt),
                    alt.clone(),
                ));
            }
        }
        if let Some(items) = shown.get("items") {
            for alt in alternatives(&resolve(root, items)) {
                let alt = resolve(root, alt);
                if alt.get("properties").is_some() {
                    subs.push((
                        format!("a `{key}` entry as a table"),
                        key.clone(),
                        describe(&alt, &alt),
                        alt.clone(),
                    ));
                }
            }
        }
    }
    if !keys.is_empty() {
        out.push_str("\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
        for k in keys {
            out.push_str(&k);
        }
    }
    for (header, sub_path, desc, body) in subs {
        out.push_str(&format!("\n#### {header}\n"));
        if !desc.is_empty() {
            out.push_str(&format!("\n{}\n", one_line(&desc)));
        }
        table(root, &body, &sub_path, out);
    }
}

enum Sub {
    Table(Value),
    Array(Value),
    Map(Value),
}

/// Whether a key's value is a table (or an array or map of tables) of its own.
fn sub_table(root: &Value, v: &Value) -> Option<Sub> {
    let is_table = |x: &Value| x.get("properties").is_some().then(|| x.clone());
    if let Some(t) = is_table(v) {
        return Some(Sub::Table(t));
    }
    if let Some(items) = v.get("items") {
        return is_table(&resolve(root, items)).map(Sub::Array);
    }
    if let Some(map) = v.get("additionalProperties").filter(|m| m.is_object()) {
        return is_table(&resolve(root, map)).map(Sub::Map);
    }
    None
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Follows `$ref` and drops the `null` of an optional value.
fn resolve(root: &Value, v: &Value) -> Value {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        let mut target = resolve(root, &root["$defs"][name]);
        if let (Some(d), Some(obj)) = (v.get("description"), target.as_object_mut()) {
            obj.insert("description".into(), d.clone());
        }
        return target;
    }
    let alts = alternatives(v);
    let non_null: Vec<&Value> = alts
        .iter()
        .copied()
        .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
        .collect();
    if alts.len() == 2 && non_null.len() == 1 {
        return resolve(root, non_null[0]);
    }
    v.clone()
}

fn alternatives(v: &Value) -> Vec<&Value> {
    v.get("anyOf")
        .or_else(|| v.get("oneOf"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn describe(prop: &Value, shown: &Value) -> String {
    prop.get("description")
        .or_else(|| shown.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn type_name(root: &Value, v: &Value) -> String {
    if let Some(e) = v.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let alts = alternatives(v);
    if !alts.is_empty() {
        return alts
            .iter()
            .map(|a| {
                let a = resolve(root, a);
                if a.get("properties").is_some() {
                    "table".to_string()
                } else {
                    type_name(root, &a)
                }
            })
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let ty = match v.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    match ty.as_str() {
        "array" => match v.get("items") {
            Some(items) => format!("array of {}", type_name(root, &resolve(root, items))),
            None => "array".to_string(),
        },
        "object" => match v.get("additionalProperties").filter(|m| m.is_object()) {
            Some(m) => format!("table of {}", type_name(root, &resolve(root, m))),
            None => "table".to_string(),
        },
        _ => ty,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}
