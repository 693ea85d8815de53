"""The seller registry in SQLite: sellers, their history, outreach rows and
strikes. Reads and writes rows; the rules live in `sellers.py`.

Writes expect the caller's open `Store.transaction()`.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from maildesk.core import sellers
from maildesk.store.db import Store, from_iso, iso


class AddressLookup:
    """`address in lookup` asks the database, so classifying a mail never
    loads the whole registry (what `Workflow.seller_addresses()` returns)."""

    def __init__(self, store: Store):
        self.store = store

    def __contains__(self, address) -> bool:
        return self.store.one("SELECT 1 FROM sellers WHERE address = ?", str(address).lower()) is not None


class Registry:
    def __init__(self, store: Store):
        self.store = store

    # --- sellers -------------------------------------------------------------
    def get(self, seller_id: str | None) -> sqlite3.Row | None:
        if not seller_id:
            return None
        return self.store.one("SELECT * FROM sellers WHERE id = ? COLLATE NOCASE", seller_id)

    def by_address(self, address: str) -> sqlite3.Row | None:
        return self.store.one("SELECT * FROM sellers WHERE address = ?", address.strip().lower())

    def find(self, key: str) -> sqlite3.Row | None:
        """A seller named by id or by address, as staff type it."""
        key = key.strip().strip("<>")
        return self.by_address(key) if "@" in key else self.get(key)

    def address_of(self, seller_id: str | None) -> str | None:
        row = self.get(seller_id)
        return row["address"] if row else None

    def all(self, status: str | None = None) -> list[sqlite3.Row]:
        if status:
            return self.store.all("SELECT * FROM sellers WHERE status = ? ORDER BY id", status)
        return self.store.all("SELECT * FROM sellers ORDER BY id")

    def names(self) -> dict[str, str]:
        """Normalised shop name -> seller id, for hints."""
        return {sellers.name_key(r["shop_name"]): r["id"]
                for r in self.store.all("SELECT id, shop_name FROM sellers")}

    def addresses(self) -> dict[str, str]:
        return {r["address"]: r["id"] for r in self.store.all("SELECT id, address FROM sellers")}

    def add(self, row: sellers.Row, now: datetime, actor: str) -> None:
        self.store.insert("sellers", {"id": row.id, "shop_name": row.shop_name, "address": row.address,
                                      "phone": row.phone, "status": "active", "created_at": iso(now),
                                      "updated_at": iso(now)})
        self.event(row.id, now, actor, "registered", shop_name=row.shop_name, address=row.address,
                   phone=row.phone)

    def change(self, seller_id: str, changes: dict, now: datetime, actor: str, kind: str = "updated",
               **detail) -> None:
        self.store.conn.execute(
            f"UPDATE sellers SET {', '.join(f'{k} = ?' for k in changes)}, updated_at = ? WHERE id = ?",
            (*changes.values(), iso(now), seller_id))
        if kind:
            self.event(seller_id, now, actor, kind, **{**changes, **detail})

    def event(self, seller_id: str, at: datetime, actor: str, kind: str, complaint_id: int | None = None,
              **detail) -> None:
        self.store.insert("seller_events", {
            "seller_id": seller_id, "complaint_id": complaint_id, "at": iso(at), "actor": actor, "kind": kind,
            "detail": json.dumps({k: v for k, v in detail.items() if v is not None}, ensure_ascii=False,
                                 default=str)})

    def history(self, seller_id: str) -> list[sqlite3.Row]:
        return self.store.all("SELECT e.*, c.ref FROM seller_events e LEFT JOIN complaints c ON c.id = e.complaint_id "
                              "WHERE e.seller_id = ? ORDER BY e.at, e.id", seller_id)

    def complaints(self, seller_id: str) -> list[sqlite3.Row]:
        return self.store.all("SELECT ref, status, level, first_contact FROM complaints WHERE seller_id = ? "
                              "ORDER BY first_contact", seller_id)

    # --- strikes ---------------------------------------------------------------
    def strike(self, seller_id: str, kind: str, at: datetime, actor: str, *, complaint_id: int | None = None,
               outreach_id: int | None = None, reason: str | None = None) -> None:
        assert kind in sellers.STRIKE_KINDS
        self.store.insert("seller_strikes", {"seller_id": seller_id, "complaint_id": complaint_id,
                                             "outreach_id": outreach_id, "kind": kind, "reason": reason,
                                             "actor": actor, "at": iso(at)})

    def strikes(self, seller_id: str) -> list[sqlite3.Row]:
        return self.store.all("SELECT s.*, c.ref FROM seller_strikes s LEFT JOIN complaints c ON c.id = s.complaint_id "
                              "WHERE s.seller_id = ? ORDER BY s.at, s.id", seller_id)

    def cooperation_count(self, seller_id: str, now: datetime, window_days: float) -> int:
        seller = self.get(seller_id)
        times = [from_iso(r["at"]) for r in self.store.all(
            "SELECT at FROM seller_strikes WHERE seller_id = ? AND at <= ?", seller_id, iso(now))]
        return sellers.cooperation_count(times, now, window_days, from_iso(seller["strikes_cleared_at"]))

    def late_answer(self, outreach_id: int) -> bool:
        """An unanswered strike becomes a late one; True when there was one."""
        cur = self.store.conn.execute("UPDATE seller_strikes SET kind = 'late' WHERE outreach_id = ? "
                                      "AND kind = 'unanswered'", (outreach_id,))
        return cur.rowcount > 0

    # --- outreach ------------------------------------------------------------------
    def open_outreach(self, complaint_id: int, seller_id: str, actor: str, now: datetime,
                      response_hours: float) -> int:
        remind_at, due_at = sellers.outreach_times(now, response_hours)
        return self.store.insert("outreach", {
            "complaint_id": complaint_id, "seller_id": seller_id, "status": "waiting", "actor": actor,
            "sent_at": iso(now), "remind_at": iso(remind_at), "due_at": iso(due_at), "next_due": iso(remind_at)})

    def outreach(self, outreach_id: int) -> sqlite3.Row | None:
        return self.store.one("SELECT * FROM outreach WHERE id = ?", outreach_id)

    def last_outreach_mail(self, complaint_id: int, address: str) -> int | None:
        """The stored row of the last outreach mail to `address` on a complaint."""
        return self.store.scalar("SELECT max(id) FROM messages WHERE complaint_id = ? AND direction = 'out' "
                                 "AND kind = 'seller:outreach' AND to_addrs = ?", complaint_id, address)

    def outreaches(self, complaint_id: int | None = None, seller_id: str | None = None,
                   status: str | None = None) -> list[sqlite3.Row]:
        where, params = [], []
        for column, value in (("complaint_id", complaint_id), ("seller_id", seller_id), ("status", status)):
            if value is not None:
                where.append(f"o.{column} = ?")
                params.append(value)
        return self.store.all("SELECT o.*, c.ref FROM outreach o JOIN complaints c ON c.id = o.complaint_id "
                              + ("WHERE " + " AND ".join(where) if where else "") + " ORDER BY o.sent_at, o.id",
                              *params)

    def due_outreach(self, now: datetime, limit: int = 500) -> list[sqlite3.Row]:
        return self.store.all("SELECT * FROM outreach WHERE next_due IS NOT NULL AND next_due <= ? "
                              "ORDER BY next_due LIMIT ?", iso(now), limit)

    def update_outreach(self, outreach_id: int, **values) -> None:
        row = dict(self.outreach(outreach_id))
        row.update({k: iso(v) if isinstance(v, datetime) else v for k, v in values.items()})
        due = sellers.outreach_next_due(row["status"], row["reminded_at"], from_iso(row["remind_at"]),
                                        from_iso(row["due_at"]))
        row["next_due"] = iso(due) if due else None
        self.store.update("outreach", outreach_id, {k: row[k] for k in (*values, "next_due")})

    def failed(self, complaint_id: int, seller_id: str) -> bool:
        return self.store.one("SELECT 1 FROM outreach WHERE complaint_id = ? AND seller_id = ? "
                              "AND status = 'failed'", complaint_id, seller_id) is not None
