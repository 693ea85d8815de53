"""The composition root: config, clock, store, templates, workflow, inbox, outbox
and clock jobs built once and handed to the daemon and the CLI. Tests pass their
hooks here (an SMTP client factory), never patch the adapters."""
from __future__ import annotations

import os
from datetime import datetime
from functools import cached_property
from typing import Callable

from maildesk.adapters import connect, oauth2
from maildesk.clock import Clock
from maildesk.config import Config, read_secret
from maildesk.service.digest import DigestJob
from maildesk.service.retention import RetentionJob
from maildesk.adapters.imap import Inbox
from maildesk.adapters.outbox import Outbox
from maildesk.store.opening import open_store
from maildesk.outbound.templates import Templates
from maildesk.service.workflow import Workflow


class App:
    """Secrets are read when first needed (`token_source`, `outbox`, `make_inbox`), so commands
    that never connect run without them; `readonly` opens the database for reading only."""

    def __init__(self, cfg: Config, *, dry_run: bool = False, env=os.environ, readonly: bool = False,
                 clock: Clock | None = None, smtp_client=connect.smtp_client, part_fetch=None):
        self.cfg = cfg
        self.env = env
        self.clock = clock or Clock()
        self.smtp_client = smtp_client  # [smtp] -> an unconnected aiosmtplib client
        self.part_fetch = part_fetch  # None, or the inbox's FETCH of a large message's parts
        self.dry_run = dry_run or cfg.mailbox.read_only
        self.store = open_store(cfg, env, readonly=readonly)
        self.templates = Templates(cfg.templates_dir, cfg.policy.language, cfg.tz)
        self.workflow = Workflow(cfg, self.store, self.templates)
        self.clock_jobs: list[Callable[[datetime], None]] = []
        self.clock_jobs += self.workflow.sellers.clock_jobs()  # outreach deadlines, decision web hooks
        self.clock_jobs.append(self.workflow.notices.flush)  # alerts and flood notices that waited their hour
        self.clock_jobs.append(RetentionJob(self))  # personal data anonymised once [retention] days passed
        self.clock_jobs.append(DigestJob(self))  # the admins' daily digest, once a day after [digest] send_at

    @cached_property
    def token_source(self):
        return oauth2.token_source(self.cfg, self.env)  # None: passwords ([oauth2] absent)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.cfg, self.store, password=self.smtp_password(),
                      dry_run_dir=self.cfg.dry_run_path if self.dry_run else None,
                      token_source=self.token_source,
                      sent_lookup=self.sent_copies if self.cfg.smtp_saves_to_sent else None,
                      smtp_client=self.smtp_client)

    def imap_password(self) -> str | None:
        """None with [oauth2]: the password keys are then not needed at all."""
        return None if self.cfg.oauth2 else read_secret("mailbox", self.cfg.mailbox, self.env)

    def smtp_password(self) -> str | None:
        return None if self.cfg.oauth2 else read_secret("smtp", self.cfg.smtp, self.env)

    def make_inbox(self) -> Inbox:
        mailbox = self.cfg.mailbox
        if self.dry_run and not mailbox.read_only:
            from dataclasses import replace
            mailbox = replace(mailbox, read_only=True)
        return Inbox(mailbox, self.imap_password(), token_source=self.token_source,
                     attachment_max_bytes=int(self.cfg.storage.attachment_max_mb * 1024 * 1024),
                     part_fetch=self.part_fetch)

    def sent_copies(self, message_ids: list[str]) -> set[str]:
        """Which of our Message-IDs the Sent folder holds (the outbox asks after a crash)."""
        inbox = self.make_inbox()
        inbox.connect()
        try:
            return inbox.sent_copies(message_ids)
        finally:
            inbox.close()

    def close(self) -> None:
        self.store.close()
