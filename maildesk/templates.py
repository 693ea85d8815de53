"""Jinja2 over `templates/<lang>/<name>.txt`.

A template reads like the mail it makes: a `Subject:` line, a blank line,
then the body. French is imolocale's language; a template missing in the
customer's language falls back to the configured one. Templates are read
once per process: restart the daemon to use edited ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

DEFAULT_DIR = Path(__file__).resolve().parent / "templates"  # in the wheel; a link to ../templates in a clone


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


def _date(value, tz=None, fmt="%d/%m/%Y %H:%M"):
    if value is None:
        return ""
    return (value.astimezone(tz) if tz else value).strftime(fmt)


class Templates:
    def __init__(self, directory: Path | None = None, default_lang: str = "fr", tz=None):
        self.directory = Path(directory or DEFAULT_DIR)
        self.default_lang = default_lang
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            # each template is read once per process: no stat() of every file (and of every
            # {% include %}) on every mail; a restart picks up edited templates
            auto_reload=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        )
        self.env.filters["date"] = lambda v, fmt="%d/%m/%Y %H:%M": _date(v, tz, fmt)
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
