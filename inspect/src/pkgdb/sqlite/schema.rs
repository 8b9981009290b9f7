//! The schema table on page 1 (`sqlite_schema`: type, name, tbl_name, rootpage, sql) and a
//! minimal parse of a `CREATE TABLE` statement's column list.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use super::record::{Record, Value};
use super::{Database, SqliteError, corrupt};

/// A column of a table, from its `CREATE TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The name, unquoted.
    pub name: String,
    /// `INTEGER PRIMARY KEY`: the column is the rowid, stored as NULL in records.
    pub rowid_alias: bool,
    /// False for a virtual generated column (`AS (...)` without `STORED`), which has no
    /// place in records.
    pub stored: bool,
}

/// A rowid table: where its b-tree starts and its columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The name as the schema holds it.
    pub name: String,
    /// The root page of its b-tree.
    pub root: u32,
    /// Its columns in declaration order.
    pub columns: Vec<Column>,
}

impl Table {
    /// The index of the column named `name` (ASCII case-insensitive, as SQLite compares).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The value of column `column` (an index into [`Table::columns`]) in row `rowid`,
    /// whose record is `record`: the rowid for a rowid alias.
    pub fn value<'r>(
        &self,
        record: &Record<'r>,
        rowid: i64,
        column: usize,
    ) -> Result<Value<'r>, SqliteError> {
        let Some(col) = self.columns.get(column) else {
            return Err(SqliteError::NoColumn {
                table: self.name.clone(),
                column: format!("#{column}"),
            });
        };
        if !col.stored {
            return Err(SqliteError::Unsupported(format!(
                "column {:?} of {:?} is computed (a virtual generated column)",
                col.name, self.name
            )));
        }
        let index = self.columns[..column].iter().filter(|c| c.stored).count();
        match record.column(index)? {
            Value::Null if col.rowid_alias => Ok(Value::Integer(rowid)),
            v => Ok(v),
        }
    }
}

impl Database<'_> {
    /// The rowid table named `name` (ASCII case-insensitive), from the schema on page 1;
    /// `None` when there is none. `WITHOUT ROWID` and virtual tables are
    /// [`SqliteError::Unsupported`].
    pub fn table(&self, name: &str) -> Result<Option<Table>, SqliteError> {
        if name.eq_ignore_ascii_case("sqlite_schema") || name.eq_ignore_ascii_case("sqlite_master")
        {
            return Ok(Some(Table {
                name: name.into(),
                root: 1,
                columns: ["type", "name", "tbl_name", "rootpage", "sql"]
                    .iter()
                    .map(|&n| Column {
                        name: n.into(),
                        rowid_alias: false,
                        stored: true,
                    })
                    .collect(),
            }));
        }
        let mut found: Option<(String, i64, String)> = None;
        self.walk(1, &mut |_, record| {
            let text = |i| match record.column(i)? {
                Value::Text(t) => Ok(Some(self.decode_text(t))),
                _ => Ok::<_, SqliteError>(None),
            };
            if text(0)?.as_deref() != Some("table") {
                return Ok(ControlFlow::Continue(()));
            }
            let Some(table) = text(1)?.filter(|t| t.eq_ignore_ascii_case(name)) else {
                return Ok(ControlFlow::Continue(()));
            };
            let root = match record.column(3)? {
                Value::Integer(r) => r,
                _ => 0,
            };
            let sql = text(4)?.unwrap_or_default();
            found = Some((table, root, sql));
            Ok(ControlFlow::Break(()))
        })?;
        let Some((table, root, sql)) = found else {
            return Ok(None);
        };
        let columns = parse_create_table(&sql).map_err(|e| match e {
            SqliteError::Corrupt(m) => corrupt(format!("table {table:?}: {m}")),
            e => e,
        })?;
        if root == 0 {
            return Err(SqliteError::Unsupported(format!(
                "table {table:?} has no b-tree (a virtual table)"
            )));
        }
        let root = u32::try_from(root)
            .ok()
            .filter(|&r| r <= self.page_count)
            .ok_or_else(|| {
                corrupt(format!(
                    "table {table:?}: root page {root} is out of range (the database has {} \
                     pages)",
                    self.page_count
                ))
            })?;
        Ok(Some(Table {
            name: table,
            root,
            columns,
        }))
    }
}

/// A token of SQL text.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A keyword, bare identifier, number or operator run.
    Word(String),
    /// A quoted identifier or string ('...', "...", `...`, [...]), unquoted.
    Quoted(String),
    /// One of ( ) , ;
    Punct(char),
}

impl Tok {
    fn is(&self, keyword: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    /// An identifier's name, bare or quoted.
    fn name(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            Tok::Punct(_) => None,
        }
    }
}

fn tokens(sql: &str) -> Result<Vec<Tok>, SqliteError> {
    let mut out = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '-' if sql[at..].starts_with("--") => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if sql[at..].starts_with("/*") => {
                chars.next();
                let mut star = false;
                for (_, c) in chars.by_ref() {
                    if star && c == '/' {
                        break;
                    }
                    star = c == '*';
                }
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(corrupt(format!("unterminated {c} in its sql"))),
                        Some((_, d)) if d == close => {
                            // A doubled quote stands for itself (not inside [...]).
                            if close != ']' && chars.peek().map(|&(_, e)| e) == Some(close) {
                                chars.next();
                                s.push(close);
                            } else {
                                break;
                            }
                        }
                        Some((_, d)) => s.push(d),
                    }
                }
                out.push(Tok::Quoted(s));
            }
            '(' | ')' | ',' | ';' => out.push(Tok::Punct(c)),
            _ => {
                let mut w = String::new();
                w.push(c);
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || "()',;\"`[".contains(d) {
                        break;
                    }
                    chars.next();
                    w.push(d);
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// Words that start a table constraint instead of a column definition.
const TABLE_CONSTRAINTS: [&str; 5] = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

/// Words that end a column's type name.
const COLUMN_CONSTRAINTS: [&str; 11] = [
    "CONSTRAINT",
    "PRIMARY",
    "NOT",
    "NULL",
    "UNIQUE",
    "CHECK",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
    "AS",
];

/// The columns of a `CREATE TABLE` statement: the parenthesised list split at its top-level
/// commas, each definition's first token a column name unless it starts a table constraint.
/// A column whose type is exactly `INTEGER` and that is the primary key (by `PRIMARY KEY`
/// in its definition, not followed by `DESC`, or as the only column of a table-level
/// `PRIMARY KEY (...)`) is the rowid.
pub(super) fn parse_create_table(sql: &str) -> Result<Vec<Column>, SqliteError> {
    let toks = tokens(sql)?;
    if toks.iter().take(3).any(|t| t.is("VIRTUAL")) {
        return Err(SqliteError::Unsupported("a virtual table".into()));
    }
    let open = toks
        .iter()
        .position(|t| *t == Tok::Punct('('))
        .ok_or_else(|| corrupt("no column list in its sql"))?;
    // The definitions, split at commas at depth 1.
    let mut defs: Vec<&[Tok]> = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut close = None;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    defs.push(&toks[start..i]);
                    close = Some(i);
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => {
                defs.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| corrupt("unbalanced parentheses in its sql"))?;
    let rest = &toks[close + 1..];
    if rest
        .windows(2)
        .any(|w| w[0].is("WITHOUT") && w[1].is("ROWID"))
    {
        return Err(SqliteError::Unsupported("a WITHOUT ROWID table".into()));
    }
    let mut columns = Vec::new();
    let mut integer = Vec::new();
    let mut table_pk: Option<Vec<String>> = None;
    for def in defs {
        let Some(first) = def.first() else {
            return Err(corrupt("an empty column definition in its sql"));
        };
        if TABLE_CONSTRAINTS.iter().any(|k| first.is(k)) {
            if let Some(pk) = def
                .windows(3)
                .position(|w| w[0].is("PRIMARY") && w[1].is("KEY") && w[2] == Tok::Punct('('))
            {
                // The first token of each comma-separated element in the parentheses.
                let mut names = Vec::new();
                let mut expect_name = true;
                let mut depth = 0usize;
                for t in &def[pk + 2..] {
                    match t {
                        Tok::Punct('(') => depth += 1,
                        Tok::Punct(')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Tok::Punct(',') if depth == 1 => expect_name = true,
                        t if expect_name && depth == 1 => {
                            names.extend(t.name().map(String::from));
                            expect_name = false;
                        }
                        _ => {}
                    }
                }
                table_pk = Some(names);
            }
            continue;
        }
        let name = first
            .name()
            .ok_or_else(|| corrupt("a column definition without a name in its sql"))?;
        let rest = &def[1..];
        let type_len = rest
            .iter()
            .position(|t| matches!(t, Tok::Punct(_)) || COLUMN_CONSTRAINTS.iter().any(|k| t.is(k)))
            .unwrap_or(rest.len());
        let is_integer = type_len == 1 && rest[0].is("INTEGER");
        let pk = rest
            .windows(2)
            .position(|w| w[0].is("PRIMARY") && w[1].is("KEY"))
            .map(|i| !rest.get(i + 2).is_some_and(|t| t.is("DESC")));
        let generated = rest
            .windows(2)
            .any(|w| w[0].is("AS") && w[1] == Tok::Punct('('));
        columns.push(Column {
            name: name.into(),
            rowid_alias: is_integer && pk == Some(true),
            stored: !generated || rest.iter().any(|t| t.is("STORED")),
        });
        integer.push(is_integer);
    }
    if columns.is_empty() {
        return Err(corrupt("no columns in its sql"));
    }
    if let Some([pk]) = table_pk.as_deref()
        && let Some(i) = columns.iter().position(|c| c.name.eq_ignore_ascii_case(pk))
        && integer[i]
    {
        columns[i].rowid_alias = true;
    }
    Ok(columns)
}
