"""HTML bodies -> readable text (html2text without Markdown noise), bounded for hostile input."""

from __future__ import annotations

import re

import html2text

MAX_HTML_TO_TEXT = 2_000_000  # chars of HTML converted; beyond that html2text gets slow
MAX_HTML_NESTING_TAGS = 2000  # more quote/list tags than this and they are dropped


class _HTML2Text(html2text.HTML2Text):
    """html2text without Markdown escaping: the result is read, not rendered."""

    def handle_data(self, data, entity_char=False):
        super().handle_data(data, True)


_MD_LINK = re.compile(r"\[([^\[\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")
_AUTO_LINK = re.compile(r"<((?:https?|ftp)://[^<>\s]+)>")
_MD_ESCAPE = re.compile(r"\\([()\[\]])")
_MD_HEADING = re.compile(r"^#{1,6} ", re.M)
_BLANK_RUNS = re.compile(r"\n{3,}")
_NESTING_TAG = re.compile(r"(?i)</?(?:blockquote|ul|ol|dl|dd)\b[^>]{0,500}>")
_CELL_END = re.compile(r"(?i)(</t[dh]\s*>)")


def _link(m: re.Match) -> str:
    label, url = m.group(1).strip(), m.group(2)
    if not label or label == url or url.startswith("mailto:"):
        return label or url
    return f"{label} ({url})"


def html_to_text(html: str) -> str:
    """Readable text from an HTML body: links kept, no Markdown noise, no wrapping."""
    if len(html) > MAX_HTML_TO_TEXT:
        html = html[:MAX_HTML_TO_TEXT]
    if len(_NESTING_TAG.findall(html, 0, MAX_HTML_TO_TEXT)) > MAX_HTML_NESTING_TAGS:
        # html2text indents every line by its quote/list depth: thousands of
        # nested blockquotes would make the text quadratic in size.
        html = _NESTING_TAG.sub(" ", html)
    h = _HTML2Text(bodywidth=0)
    h.ignore_images = True
    h.ignore_emphasis = True
    h.ignore_mailto_links = True
    h.ignore_tables = True
    h.unicode_snob = True
    h.skip_internal_links = True
    html = _CELL_END.sub(r"\1 ", html)  # keep table cells apart ("Lampe 20 €")
    text = h.handle(html)
    text = _MD_ESCAPE.sub(r"\1", text)
    text = _MD_LINK.sub(_link, text)
    text = _AUTO_LINK.sub(r"\1", text)
    text = _MD_HEADING.sub("", text)
    text = text.replace("\xa0", " ")
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))  # "[ \t]+$" is quadratic on long runs
    text = _BLANK_RUNS.sub("\n\n", text)
    return text
