"""`maildesk search`: the FTS5 index (migration 9, kept by triggers) read, best first.

Ranked with bm25 (lower is better); a complaint counts once, at its best hit, whose
snippet is shown. A query SQLite refuses as FTS5 syntax is asked again as plain words
(core/search.py), so a search never fails on its syntax.

On PostgreSQL the same index is a tsvector column of accent-folded words (store/schema_pg.py),
read with to_tsquery from the same syntax (core/search.tsquery: words, "phrases", OR, NOT, prefix*;
every word quoted, so no text is refused) and ranked with ts_rank, negated so that there too lower
is better.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from maildesk.core.search import plain_words, tsquery
from maildesk.store.db import Store, iso

MARK = ("[", "]")  # around each matched word in a snippet

# the best-ranked hits first (FTS5 sorts by rank itself: ~3x faster than grouping every hit); a complaint
# counts once, at its best hit; only when those hits hold fewer complaints than asked for is every hit
# grouped (_ALL)
_TOP = """
    SELECT s.complaint_id, s.rowid AS hit, s.source, s.rank AS score
    FROM search_index s {join} WHERE search_index MATCH ? {since} ORDER BY s.rank LIMIT ?
"""
_ALL = """
    WITH hits AS MATERIALIZED (
        SELECT s.complaint_id, s.rowid AS hit, s.source, bm25(search_index) AS score
        FROM search_index s {join} WHERE search_index MATCH ? {since})
    SELECT complaint_id, hit, source, min(score) AS score
    FROM hits GROUP BY complaint_id ORDER BY score, complaint_id LIMIT ?
"""
_SINCE = ("JOIN complaints c ON c.id = s.complaint_id", "AND c.first_contact >= ?")
_PG_BEST = """
    SELECT complaint_id, hit, source, score FROM (
        SELECT DISTINCT ON (s.complaint_id) s.complaint_id, s.id AS hit, s.source, -ts_rank(s.words, q) AS score
        FROM search_index s {join} CROSS JOIN to_tsquery('md_search', ?) q
        WHERE s.words @@ q {since} ORDER BY s.complaint_id, score, s.id) best
    ORDER BY score, complaint_id LIMIT ?
"""
_PG_SNIPPET = ("SELECT ts_headline('md_search', body, to_tsquery('md_search', ?), "
               "'StartSel=[, StopSel=], MaxWords=12, MinWords=4, FragmentDelimiter=…, MaxFragments=1') "
               "FROM search_index WHERE id = ?")
TOP_HITS_PER_RESULT = 8


@dataclass(frozen=True)
class Hit:
    ref: str
    score: float
    source: str  # where the best match is: complaint (subject, customer), message, note, seller
    snippet: str
    status: str
    level: int
    first_contact: str
    customer_addr: str
    customer_name: str
    subject: str


def search(store: Store, text: str, *, since: datetime | None = None, limit: int = 20) -> list[Hit]:
    """The complaints matching `text`, best first; [] when the text holds nothing to look for."""
    plain = plain_words(text)
    if not plain:
        return []
    if store.kind == "postgresql":
        text = tsquery(text)
        if not text:
            return []
    try:
        rows = _hits(store, text, since, limit)
    except sqlite3.OperationalError:  # FTS5 syntax SQLite refuses: the same words, plainly
        text = plain
        rows = _hits(store, plain, since, limit)
    found = []
    for row in rows:
        c = store.one("SELECT ref, status, level, first_contact, customer_addr, customer_name, subject "
                      "FROM complaints WHERE id = ?", row["complaint_id"])
        if store.kind == "postgresql":
            snip = store.scalar(_PG_SNIPPET, text, row["hit"])
        else:
            snip = store.scalar("SELECT snippet(search_index, 2, ?, ?, '…', 12) FROM search_index "
                                "WHERE search_index MATCH ? AND rowid = ?", *MARK, text, row["hit"])
        found.append(Hit(c["ref"], row["score"], row["source"], snip or "", c["status"], c["level"],
                         c["first_contact"], c["customer_addr"], c["customer_name"], c["subject"]))
    return found


def _hits(store: Store, query: str, since: datetime | None, limit: int) -> list[sqlite3.Row]:
    join, where = _SINCE if since else ("", "")
    args = (query, iso(since)) if since else (query,)
    if store.kind == "postgresql":
        return store.all(_PG_BEST.format(join=join, since=where), *args, limit)
    cap = limit * TOP_HITS_PER_RESULT
    top = store.all(_TOP.format(join=join, since=where), *args, cap)
    best: dict[int, sqlite3.Row] = {}
    for row in top:
        best.setdefault(row["complaint_id"], row)
    if len(best) >= limit or len(top) < cap:
        return list(best.values())[:limit]
    return store.all(_ALL.format(join=join, since=where), *args, limit)
