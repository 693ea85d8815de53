"""The composition root: config, store, templates, workflow, inbox, outbox
and clock jobs built once and handed to the daemon and the CLI."""
from __future__ import annotations

import os
from datetime import datetime
from typing import Callable

from . import oauth2
from .config import Config, read_secret
from .digest import DigestJob
from .imap import Inbox
from .outbox import Outbox
from .store import Store
from .templates import Templates
from .workflow import Workflow


class App:
    def __init__(self, cfg: Config, *, dry_run: bool = False, env=os.environ):
        self.cfg = cfg
        self.env = env
        self.dry_run = dry_run or cfg.mailbox.read_only
        self.store = Store(cfg.database_path)
        self.templates = Templates(cfg.templates_dir, cfg.policy.language, cfg.tz)
        self.workflow = Workflow(cfg, self.store, self.templates)
        self.token_source = oauth2.token_source(cfg, env)  # None: passwords ([oauth2] absent)
        self.outbox = Outbox(cfg, self.store, password=self.smtp_password(),
                             dry_run_dir=cfg.resolve(cfg.storage.dry_run_dir) if self.dry_run else None,
                             token_source=self.token_source)
        self.clock_jobs: list[Callable[[datetime], None]] = []
        self.clock_jobs += self.workflow.sellers.clock_jobs()  # outreach deadlines, decision web hooks
        self.clock_jobs.append(DigestJob(self))  # the admins' daily digest, once a day after [digest] send_at

    def imap_password(self) -> str | None:
        return read_secret("mailbox", self.cfg.mailbox, self.env)

    def smtp_password(self) -> str | None:
        return read_secret("smtp", self.cfg.smtp, self.env)

    def make_inbox(self) -> Inbox:
        mailbox = self.cfg.mailbox
        if self.dry_run and not mailbox.read_only:
            from dataclasses import replace
            mailbox = replace(mailbox, read_only=True)
        return Inbox(mailbox, self.imap_password(), token_source=self.token_source,
                     attachment_max_bytes=int(self.cfg.storage.attachment_max_mb * 1024 * 1024))

    def close(self) -> None:
        self.store.close()
