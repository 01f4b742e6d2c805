//! The replica's tables, made from the file's own `CREATE TABLE` and `CREATE INDEX` statements
//! (as SQLite keeps them in `sqlite_master`, every migration applied): the same columns, keys,
//! `UNIQUE` and `CHECK` constraints, word for word, and the indexes `source::REPLICA_INDEXES`
//! keeps (not the file's work queues). Only what PostgreSQL spells otherwise is
//! changed: `INTEGER` → `bigint`, `BLOB` → `bytea`, no `STRICT` / `WITHOUT ROWID`, and foreign
//! keys are checked at commit (`DEFERRABLE INITIALLY DEFERRED`), since one replication
//! transaction writes a consistent state in whatever order. Append-only tables stay so
//! (a trigger refuses UPDATE and DELETE, as in the file).

use super::source::{quote, Kind, Shape};
use crate::error::{Error, Result};

/// Splits SQL into words and the rest, leaving string literals, quoted identifiers and
/// comments untouched, and maps each bare word.
fn map_words(sql: &str, word: impl Fn(&str) -> Option<&'static str>) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 64);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            let end = sql[i + 1..]
                .find(c as char)
                .map_or(sql.len(), |j| i + 2 + j);
            out.push_str(&sql[i..end]);
            i = end;
        } else if sql[i..].starts_with("--") {
            let end = sql[i..].find('\n').map_or(sql.len(), |j| i + j);
            out.push_str(&sql[i..end]);
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let end = sql[i..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(sql.len(), |j| i + j);
            let w = &sql[i..end];
            out.push_str(word(w).unwrap_or(w));
            i = end;
        } else {
            let ch = sql[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The names a table's foreign keys reference.
fn references(create: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = create;
    while let Some(at) = rest.find("REFERENCES ") {
        rest = &rest[at + "REFERENCES ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push(name);
    }
    out
}

/// One `CREATE TABLE` in PostgreSQL's words.
pub fn create_table(shape: &Shape) -> Result<String> {
    let sql = shape.create.trim();
    // The table's options follow its last parenthesis: `STRICT`, `WITHOUT ROWID`.
    let close = sql.rfind(')').ok_or_else(|| {
        Error::internal(format!(
            "cannot read the definition of {}",
            shape.table.name
        ))
    })?;
    let body = &sql[..=close];
    let mapped = map_words(body, |w| match w.to_ascii_uppercase().as_str() {
        "INTEGER" => Some("bigint"),
        "BLOB" => Some("bytea"),
        _ => None,
    });
    // Foreign keys: `REFERENCES t(c)` checked at commit.
    let mut out = String::with_capacity(mapped.len() + 128);
    let mut rest = mapped.as_str();
    while let Some(at) = rest.find("REFERENCES ") {
        let after = &rest[at..];
        let end = after
            .find(')')
            .ok_or_else(|| Error::internal("a REFERENCES clause without its column"))?;
        out.push_str(&rest[..at + end + 1]);
        out.push_str(" DEFERRABLE INITIALLY DEFERRED");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if shape.table.kind == Kind::Stamped {
        // Updated in place at every cycle: room in each page lets PostgreSQL update a row
        // whose indexed columns did not change without touching its indexes (a HOT update).
        out.push_str(" WITH (fillfactor = 80)");
    }
    Ok(out)
}

/// Every statement that makes the replica's tables in the current schema (`search_path`):
/// tables in an order where each references only tables made before it, their indexes, and
/// the append-only triggers.
/// The body of the replica's `append_only()` trigger function (the check compares it).
pub const APPEND_ONLY_BODY: &str = "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END";

pub fn create_all(shapes: &[Shape]) -> Result<Vec<String>> {
    let mut statements = vec![format!(
        "CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
         {APPEND_ONLY_BODY} $$"
    )];
    let mut made: Vec<&str> = Vec::new();
    let mut left: Vec<&Shape> = shapes.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        let mut i = 0;
        while i < left.len() {
            let shape = left[i];
            let ready = references(&shape.create)
                .iter()
                .all(|r| r == shape.table.name || made.contains(&r.as_str()));
            if ready {
                statements.push(create_table(shape)?);
                made.push(shape.table.name);
                left.remove(i);
            } else {
                i += 1;
            }
        }
        if left.len() == before {
            return Err(Error::internal(format!(
                "the replicated tables reference tables that are not replicated: {}",
                left.iter()
                    .map(|s| s.table.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for shape in shapes {
        statements.extend(shape.indexes.iter().cloned());
        if let Kind::Appended { .. } = shape.table.kind {
            statements.push(format!(
                "CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {table}
                 FOR EACH ROW EXECUTE FUNCTION append_only()",
                name = shape.table.name,
                table = quote(shape.table.name)
            ));
        }
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_change_outside_literals_and_foreign_keys_are_checked_at_commit() {
        let shape = Shape {
            table: super::super::source::Table {
                name: "t",
                kind: Kind::Stamped,
            },
            columns: Vec::new(),
            create: "CREATE TABLE t (\n  id INTEGER PRIMARY KEY, -- an INTEGER\n  b BLOB, note TEXT CHECK (note <> 'INTEGER'),\n  u TEXT REFERENCES users(id)\n) STRICT, WITHOUT ROWID".into(),
            indexes: Vec::new(),
            rowid: false,
        };
        let sql = create_table(&shape).unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE t (\n  id bigint PRIMARY KEY, -- an INTEGER\n  b bytea, note TEXT CHECK (note <> 'INTEGER'),\n  u TEXT REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED\n) WITH (fillfactor = 80)"
        );
    }
}
