"""Templates ship with the package, an operator's folder overrides them file by file, and every
template is rendered once before any mail needs it (template_check)."""
from __future__ import annotations


import pytest

from maildesk.service import template_check
from maildesk.outbound.templates import DEFAULT_DIR, Templates
from tests.support import ROOT, make_config

CFG = make_config()


def test_every_template_file_is_rendered_by_the_check():
    """A template added without a sample context here would go unchecked at startup."""
    checked = {f"{name}.txt" for name in [*template_check.MAILS, *template_check.FRAGMENTS]}
    checked |= {f"{name}.html" for name in template_check.HTML}
    for lang in template_check.LANGUAGES:
        files = {p.name for p in (ROOT / "templates" / lang).iterdir() if not p.name.startswith("_")}
        assert files == checked, lang


def test_the_shipped_templates_all_render():
    assert template_check.problems(Templates(None, "fr", CFG.tz), CFG) == []
    on_disk = sum(1 for lang in template_check.LANGUAGES for p in (ROOT / "templates" / lang).iterdir()
                  if not p.name.startswith("_"))  # the partials are rendered inside the others
    assert template_check.count() == on_disk


def test_an_operator_folder_overrides_file_by_file(tmp_path):
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "ack.txt").write_text("Subject: Bien reçu {{ ref }}\n\nMerci.\n", encoding="utf-8")
    templates = Templates(tmp_path, "fr", CFG.tz)
    context = {"ref": "IMO-4K7M2Q"}
    assert templates.render("ack", "fr", **context).subject == "Bien reçu IMO-4K7M2Q"
    assert templates.env.get_template("fr/update.txt").filename == str(DEFAULT_DIR / "fr" / "update.txt")
    assert template_check.problems(templates, CFG) == []


@pytest.mark.parametrize("text, expected", [
    ("Subject: {{ ref }\n", "fr/ack.txt line 1: unexpected '}'"),
    ("Subject: {{ reff }}\n", "fr/ack.txt: UndefinedError: 'reff' is undefined"),
    ("Bonjour {{ ref }}\n", "fr/ack.txt: ValueError: must start with a 'Subject:' line"),
    ("Subject: x\n{% include 'fr/_signatur.txt' %}\n", "template fr/_signatur.txt is missing"),
])
def test_a_broken_template_is_named_in_one_line(tmp_path, text, expected):
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "ack.txt").write_text(text, encoding="utf-8")
    found = template_check.problems(Templates(tmp_path, "fr", CFG.tz), CFG)
    assert len(found) == 1 and expected in found[0] and "\n" not in found[0]


def test_templates_missing_from_the_package_are_named(monkeypatch, tmp_path):
    """What a wheel without its templates looked like: every mail failed with TemplateNotFound."""
    import maildesk.outbound.templates as module
    monkeypatch.setattr(module, "DEFAULT_DIR", tmp_path / "nowhere")
    found = template_check.problems(Templates(None, "fr", CFG.tz), CFG)
    assert found[0] == f"template fr/ack.txt is missing (looked in {tmp_path / 'nowhere'})"


def test_the_templates_dir_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "mine").mkdir()
    assert make_config(base_dir=tmp_path, templates={"dir": "mine"}).templates_dir == tmp_path / "mine"
    assert make_config(base_dir=tmp_path).templates_dir is None
    from maildesk.config import ConfigError
    with pytest.raises(ConfigError, match="templates.dir .* is not a folder"):
        make_config(base_dir=tmp_path, templates={"dir": "missing"})



def test_every_shipped_canned_answer_is_rendered_by_the_check_in_both_languages():
    templates = Templates(None, "fr", CFG.tz)
    for lang in template_check.LANGUAGES:
        names = {p.stem for p in templates.canned_files(lang)}
        assert len(names) >= 4 and names == {p.stem for p in (ROOT / "templates" / "canned" / lang).glob("*.txt")}
    assert templates.canned("fr")["photos"].startswith("Demande de photos")  # the first line describes it


def test_a_broken_canned_answer_in_the_operator_folder_is_named(tmp_path):
    (tmp_path / "canned" / "fr").mkdir(parents=True)
    (tmp_path / "canned" / "fr" / "photos.txt").write_text("Photos\nBonjour {{ complaint.nom }}\n", encoding="utf-8")
    found = template_check.problems(Templates(tmp_path, "fr", CFG.tz), CFG)
    assert len(found) == 1 and "canned/fr/photos.txt" in found[0] and "nom" in found[0]
