"""The store's queries are written once, in the SQL both engines share, with SQLite's spelling of
the few things they do not; `to_postgres` rewrites those for PostgreSQL, once per query text.

What is rewritten (outside string literals): `?` and `:name` parameters to psycopg's `%s` and
`%(name)s`; `INSERT OR IGNORE` to `ON CONFLICT DO NOTHING`; `LIKE` to `ILIKE` (SQLite's LIKE
ignores ASCII case); the scalar `min(a, b)` / `max(a, b)` to `LEAST` / `GREATEST`; `rowid` to the
`id` the PostgreSQL tables declare; a blob read as text to its escaped text; the unary `+` that
keeps SQLite's planner off an index (`WHERE +c.first_contact <= ...`), its `INDEXED BY`, and its
`CROSS JOIN ... ON` (a join in the order written) made a plain JOIN: PostgreSQL's planner chooses. Functions SQLite has
and PostgreSQL lacks (`instr`, `json_extract`, `julianday`, `mailbox_key`, ...) are created in the
PostgreSQL schema instead (`store/schema_pg.py`), so the query keeps its one spelling. The one
exception is `julianday(column)`, written out as the schema's function computes it: PostgreSQL
cannot inline that function (its text-to-time cast depends on the session's time zone), and
called once per row it made the digest's medians over 100,000 complaints three times slower.
"""
from __future__ import annotations

import re
from functools import lru_cache

_STRING = re.compile(r"'(?:[^']|'')*'")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_LIKE = re.compile(r"\bLIKE\b", re.I)
_ROWID = re.compile(r"\browid\b", re.I)
_BEGIN = re.compile(r"^\s*BEGIN\s+IMMEDIATE\s*$", re.I)
_BLOB_TEXT = re.compile(r"\bCAST\(\s*(\w+)\s+AS\s+TEXT\s*\)", re.I)
_MIN_MAX = re.compile(r"\b(min|max)\s*\(", re.I)
_CROSS_JOIN_ON = re.compile(r"\bCROSS\s+JOIN\b(?=[^()]*?\bON\b)", re.I)  # SQLite: join in this order
_INDEXED_BY = re.compile(r"\s+INDEXED\s+BY\s+\w+", re.I)
_UNARY_PLUS = re.compile(r"\b(WHERE|AND|OR|ON)(\s+)\+(?=[A-Za-z_])", re.I)  # SQLite's "not by this index"
_JULIANDAY_OF_COLUMN = re.compile(r"\bjulianday\(\s*([A-Za-z_][\w.]*)\s*\)", re.I)


@lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """The PostgreSQL spelling of one query written for SQLite (see the module docstring)."""
    if _BEGIN.match(sql):
        return "BEGIN"
    strings: list[str] = []

    def hide(m: re.Match) -> str:
        strings.append(m.group(0))
        return f"\x00{len(strings) - 1}\x00"

    code = _STRING.sub(hide, sql)
    code = code.replace("%", "%%").replace("?", "%s")
    code = _NAMED.sub(r"%(\1)s", code)
    ignore = bool(_INSERT_OR_IGNORE.search(code))
    code = _INSERT_OR_IGNORE.sub("INSERT INTO", code)
    code = _LIKE.sub("ILIKE", code)
    code = _ROWID.sub("id", code)
    code = _BLOB_TEXT.sub(r"encode(\1, 'escape')", code)
    code = _scalar_min_max(code)
    code = _UNARY_PLUS.sub(r"\1\2", code)
    code = _INDEXED_BY.sub("", code)
    code = _CROSS_JOIN_ON.sub("JOIN", code)
    code = _JULIANDAY_OF_COLUMN.sub(r"(extract(epoch FROM \1::timestamptz) / 86400.0 + 2440587.5)", code)
    if ignore:
        code = code.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return re.sub("\x00(\\d+)\x00", lambda m: strings[int(m.group(1))].replace("%", "%%"), code)


def _scalar_min_max(code: str) -> str:
    """`max(a, b, ...)` with more than one argument is SQLite's scalar max: PostgreSQL's GREATEST."""
    out, at = [], 0
    for m in _MIN_MAX.finditer(code):
        depth, commas, i = 1, 0, m.end()
        while i < len(code) and depth:
            ch = code[i]
            depth += ch == "("
            depth -= ch == ")"
            commas += ch == "," and depth == 1
            i += 1
        if commas:
            out += [code[at:m.start()], "LEAST(" if m.group(1).lower() == "min" else "GREATEST("]
            at = m.end()
    return "".join(out) + code[at:]
