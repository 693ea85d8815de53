"""Which store a config names: PostgreSQL when [storage] url is set (its password from
password_env / password_file), else the SQLite file at [storage] database."""
from __future__ import annotations

import os

from maildesk.config import Config, read_secret
from maildesk.store.db import Store


def open_store(cfg: Config, env=os.environ, *, readonly: bool = False, migrate: bool = False,
               wait: float = 10.0) -> Store:
    """`wait`: how long PostgreSQL may take to answer before StoreUnreachable (one line)."""
    if cfg.storage.url:
        from maildesk.store.postgres import PgStore  # psycopg's pool is loaded only when used
        return PgStore(cfg.storage.url, read_secret("storage", cfg.storage, env), readonly=readonly,
                       migrate=migrate, wait=wait)
    return Store(cfg.database_path, readonly=readonly, migrate=migrate)
