"""The admin commands, one module each: status, check and init, digest, outbox, quarantine and
spam, store copy. main.py only parses; the work is in these modules so the command line stays thin. Each
command prints lines a person reads, or `--json` a script parses, and exits 0 when all is well,
1 when something needs attention, 2 for bad config or usage. Loops over many items show a
progress bar on a terminal and stay quiet in a pipe.
"""
from __future__ import annotations

from maildesk.cli import check, digest, dossier, export, folders, outbox, search, status, store_copy


def add_parsers(sub) -> None:
    status.add_parser(sub)
    check.add_parsers(sub)  # check, init
    digest.add_parser(sub)
    outbox.add_parser(sub)
    folders.add_parsers(sub)  # quarantine, spam
    export.add_parser(sub)
    search.add_parser(sub)
    dossier.add_parser(sub)
    store_copy.add_parser(sub)  # store copy --to postgresql://...


COMMANDS = {"digest": digest.digest_command, "outbox": outbox.outbox_command,
            "quarantine": folders.quarantine_command, "spam": folders.spam_command,
            "export": export.export_command,
            "search": search.search_command, "dossier": dossier.dossier_command}
WITHOUT_APP = {"status": status.status, "check": check.check}  # they report missing secrets instead of stopping on them
WITHOUT_APP["store"] = store_copy.store_command  # it opens the SQLite file and a PostgreSQL database itself
