"""`maildesk search`: the FTS5 index (migration 9, kept by triggers) read, best first.

Ranked with bm25 (lower is better); a complaint counts once, at its best hit, whose
snippet is shown. A query SQLite refuses as FTS5 syntax is asked again as plain words
(core/search.py), so a search never fails on its syntax.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from maildesk.core.search import plain_words
from maildesk.store.db import Store, iso

MARK = ("[", "]")  # around each matched word in a snippet

_HITS = """
    WITH hits AS MATERIALIZED (
        SELECT complaint_id, rowid AS hit, source, bm25(search_index) AS score
        FROM search_index WHERE search_index MATCH ?)
    SELECT h.complaint_id, h.hit, h.source, min(h.score) AS score
    FROM hits h {join}
    GROUP BY h.complaint_id ORDER BY score, h.complaint_id LIMIT ?
"""


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
    try:
        rows = _hits(store, text, since, limit)
    except sqlite3.OperationalError:  # FTS5 syntax SQLite refuses: the same words, plainly
        text = plain
        rows = _hits(store, plain, since, limit)
    found = []
    for row in rows:
        c = store.one("SELECT ref, status, level, first_contact, customer_addr, customer_name, subject "
                      "FROM complaints WHERE id = ?", row["complaint_id"])
        snip = store.scalar("SELECT snippet(search_index, 2, ?, ?, '…', 12) FROM search_index "
                            "WHERE search_index MATCH ? AND rowid = ?", *MARK, text, row["hit"])
        found.append(Hit(c["ref"], row["score"], row["source"], snip or "", c["status"], c["level"],
                         c["first_contact"], c["customer_addr"], c["customer_name"], c["subject"]))
    return found


def _hits(store: Store, query: str, since: datetime | None, limit: int) -> list[sqlite3.Row]:
    if since is None:
        return store.all(_HITS.format(join=""), query, limit)
    return store.all(_HITS.format(join="JOIN complaints c ON c.id = h.complaint_id WHERE c.first_contact >= ?"),
                     query, iso(since), limit)
