"""Jinja2 over `templates/<lang>/<name>.txt`.

A template reads like the mail it makes: a `Subject:` line, a blank line,
then the body. French is imolocale's language; a template missing in the
customer's language falls back to the configured one. Templates are read
once per process: restart the daemon to use edited ones.

Canned answers (`#template NAME`, issue 18) are the exception: `templates/canned/<lang>/NAME.txt`,
first line a description for staff, the rest the text. Admins add them while the daemon runs, so
they are looked up and read from disk at each use (they are rare: one stat and one read per
canned answer sent) instead of turning on Jinja's `auto_reload`, which would stat every template
and include on every mail.

The templates ship inside the package (`setup.py` copies the top-level
`templates/`, their source, to `maildesk/shipped/templates`). An operator's
`[templates] dir` overrides them file by file: a file missing there is taken
from the shipped copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

PACKAGE = Path(__file__).resolve().parent.parent


def shipped(name: str) -> Path:
    """A file the package carries: inside an installed package (wheel, sdist, pipx) it is
    `maildesk/shipped/<name>`; in a checkout or an editable install, `<name>` at the top of
    the tree, its source."""
    inside = PACKAGE / "shipped" / name
    return inside if inside.exists() else PACKAGE.parent / name


DEFAULT_DIR = shipped("templates")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


# The words for the codes the database holds (a complaint's status, its level, a mail's kind...),
# one mapping for every template: {{ complaint.status|word("status") }}. A code missing here shows
# as itself, so a new one is never an error.
WORDS = {
    "fr": {
        "status": {"open": "en cours", "waiting_customer": "en attente du client", "resolved": "résolue",
                   "closed": "close", "imported": "importée (historique)"},
        "level": {1: "service client", 2: "équipe de résolution", 3: "équipe expérience client"},
        "seller_status": {"active": "actif", "flagged": "signalé", "restricted": "restreint",
                          "terminated": "résilié"},
        "strike": {"unanswered": "sans réponse dans le délai", "late": "réponse tardive",
                   "reported": "signalé par l'équipe (#uncooperative)"},
        "mail": {"ack": "accusé de réception", "ask": "demande d'information", "relay": "réponse de l'équipe",
                 "update": "point d'avancement", "resolution": "résolution", "reminder": "rappel",
                 "thanks": "remerciement", "contact_details": "coordonnées du vendeur", "escalation": "escalade",
                 "notify": "avis à l'équipe", "report": "alerte d'échéance", "command_error": "commande non comprise",
                 "alert": "alerte aux administrateurs", "digest": "digest", "outreach": "message au vendeur",
                 "decision": "décision sur un vendeur", "refused": "message refusé",
                 "staff_unlisted": "adresse non inscrite",
                 "status": "point demandé par le client", "canned_list": "liste des réponses types"},
    },
    "en": {
        "status": {"open": "open", "waiting_customer": "waiting for the customer", "resolved": "resolved",
                   "closed": "closed", "imported": "imported (history)"},
        "level": {1: "customer service", 2: "resolution team", 3: "customer experience team"},
        "seller_status": {"active": "active", "flagged": "flagged", "restricted": "restricted",
                          "terminated": "terminated"},
        "strike": {"unanswered": "no answer in time", "late": "late answer", "reported": "reported by staff (#uncooperative)"},
        "mail": {"ack": "acknowledgement", "ask": "request for information", "relay": "staff answer",
                 "update": "progress update", "resolution": "resolution", "reminder": "reminder", "thanks": "thanks",
                 "contact_details": "seller's details", "escalation": "escalation", "notify": "staff notice",
                 "report": "deadline alert", "command_error": "command not understood", "alert": "admin alert",
                 "digest": "digest", "outreach": "mail to a seller", "decision": "seller decision",
                 "refused": "refused message", "staff_unlisted": "unlisted address",
                 "status": "status on request", "canned_list": "canned answers list"},
    },
}


@jinja2.pass_context
def _word(context, code, category: str) -> str:
    """The word for a code in the template's language (WORDS), or the code itself."""
    words = WORDS.get(context.get("lang"), WORDS["en"]).get(category, {})
    return words.get(code, code)


def _date(value, tz=None, fmt="%d/%m/%Y %H:%M"):
    if value is None:
        return ""
    return (value.astimezone(tz) if tz else value).strftime(fmt)


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8") as f:
        return f.readline().strip()


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiling the 64 templates costs ~1 s, paid by every `run` and `once` (the start-up check
    renders them all): Jinja's own cache keeps the compiled code in a private folder of the user's
    (keyed by each template's source, so an edited template is compiled again). None when no
    such folder can be had: compiling then simply happens every time."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


class Templates:
    def __init__(self, directory: Path | None = None, default_lang: str = "fr", tz=None):
        self.directory = Path(directory or DEFAULT_DIR)
        self.default_lang = default_lang
        # the operator's files first, then the shipped ones for whatever they do not override
        self.search_path = list(dict.fromkeys([self.directory, DEFAULT_DIR]))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.search_path]),
            # each template is read once per process: no stat() of every file (and of every
            # {% include %}) on every mail; a restart picks up edited templates
            auto_reload=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            bytecode_cache=_bytecode_cache(),
        )
        self.env.filters["date"] = lambda v, fmt="%d/%m/%Y %H:%M": _date(v, tz, fmt)
        self.env.filters["word"] = _word
        self._found: dict[tuple[str, str, str], str | None] = {}

    def _get(self, name: str, lang: str, ext: str) -> jinja2.Template | None:
        # Which file serves (name, lang, ext) is looked up once: every mail asks for an HTML
        # version that rarely exists, and each miss costs four failed loads.
        key = (name, lang, ext)
        try:
            found = self._found[key]
        except KeyError:
            found = self._found[key] = self._find(name, lang, ext)
        if found is None:
            return None
        try:
            return self.env.get_template(found)
        except jinja2.TemplateNotFound:  # removed meanwhile: look again
            found = self._found[key] = self._find(name, lang, ext)
            return self.env.get_template(found) if found is not None else None

    def _find(self, name: str, lang: str, ext: str) -> str | None:
        for candidate in dict.fromkeys((lang, self.default_lang, "fr", "en")):
            try:
                self.env.get_template(f"{candidate}/{name}.{ext}")
            except jinja2.TemplateNotFound:
                continue
            return f"{candidate}/{name}.{ext}"
        return None

    # --- canned answers: read at each use, so a file added or edited is used without a restart ---
    def _canned_langs(self, lang: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys((lang, self.default_lang)))

    def canned(self, lang: str) -> dict[str, str]:
        """The canned answers for a customer writing `lang` (else the configured language):
        name -> description (the file's first line), the operator's files first."""
        found: dict[str, str] = {}
        for candidate in self._canned_langs(lang):
            for directory in self.search_path:
                folder = directory / "canned" / candidate
                for path in sorted(folder.glob("*.txt")) if folder.is_dir() else ():
                    if path.stem not in found:
                        found[path.stem] = _first_line(path)
        return dict(sorted(found.items()))

    def canned_path(self, name: str, lang: str) -> Path | None:
        """Which file serves canned answer `name` for `lang` (else the configured language)."""
        for candidate in self._canned_langs(lang):
            for directory in self.search_path:
                path = directory / "canned" / candidate / f"{name}.txt"
                if path.is_file():
                    return path
        return None

    def canned_files(self, lang: str) -> list[Path]:
        """Every canned file of exactly `lang`, one per name (the operator's over the shipped one)."""
        paths = {}
        for directory in reversed(self.search_path):
            folder = directory / "canned" / lang
            for path in folder.glob("*.txt") if folder.is_dir() else ():
                paths[path.stem] = path
        return [paths[k] for k in sorted(paths)]

    def render_canned(self, path: Path, lang: str, **context) -> str:
        """The text of a canned file (its description line left out), rendered like the others."""
        source = path.read_text(encoding="utf-8")
        body = "\n" + source.partition("\n")[2]  # the description line left blank: errors keep their line numbers
        return self.env.from_string(body).render(lang=lang, **context).strip()

    def render(self, name: str, lang: str, **context) -> Rendered:
        text_t = self._get(name, lang, "txt")
        if text_t is None:
            raise jinja2.TemplateNotFound(f"{lang}/{name}.txt")
        rendered = text_t.render(lang=lang, **context)
        head, _, body = rendered.partition("\n")
        if not head.startswith("Subject:"):
            raise ValueError(f"template {lang}/{name}.txt must start with a 'Subject:' line")
        html_t = self._get(name, lang, "html")
        html = html_t.render(lang=lang, **context) if html_t else None
        return Rendered(head[len("Subject:"):].strip(), body.lstrip("\n"), html)
