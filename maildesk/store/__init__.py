"""The only place with SQL. `db` opens the database and holds `transaction()`; `migrations` the
numbered schema; `sql` the fragments built from the core's constants; the other modules are named
queries for one side of the house each, returning dataclasses or plain values (`sellers`,
`notices`, `quarantine`, `webhooks`, `maintenance` for recovery and import, `backups` for whole-
file copies, `history`). On PostgreSQL (`postgres`, `schema_pg`, `dialect`, `leader`, `copying`)
the same modules run, their SQLite spellings rewritten once per query."""
