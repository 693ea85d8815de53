"""Staff trust as Google signs (issue 13 item 2), with Gmail's own header shapes, and the
Authentication-Results parser in linear time on hostile headers (issue 12 finding 9)."""
from __future__ import annotations

import pytest

from maildesk.core.trust import _results, auth_report, organisational, verify_sender
from tests.support import LINEAR, growth

# plain gmail.com staff: what Gmail writes for a mail from another gmail.com account
GMAIL = ("mx.google.com;\r\n       dkim=pass header.i=@gmail.com header.s=20230601 header.b=kX3xJ9aQ;\r\n"
         "       spf=pass (google.com: domain of julie.martin@gmail.com designates 209.85.220.41 as permitted "
         "sender) smtp.mailfrom=julie.martin@gmail.com;\r\n"
         "       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=gmail.com")
# Workspace before "Start authentication", and no DMARC record: no dmarc= part at all
WORKSPACE_NO_DKIM = (
    "mx.google.com;\r\n       dkim=pass header.i=@imolocale-fr.20230601.gappssmtp.com header.s=20230601 "
    "header.b=Qm9vb2s7;\r\n       spf=pass (google.com: domain of julie@imolocale.fr designates 209.85.220.41 "
    "as permitted sender) smtp.mailfrom=julie@imolocale.fr")
# Workspace with DKIM started, still no DMARC record
WORKSPACE_DKIM = ("mx.google.com;\r\n       dkim=pass header.i=@imolocale.fr header.s=google header.b=c2lnbmVk;\r\n"
                  "       spf=pass (google.com: domain of julie@imolocale.fr designates 209.85.220.41 as permitted "
                  "sender) smtp.mailfrom=julie@imolocale.fr")
# a subdomain's staff signed by the organisation's key
PARENT = ("mx.google.com;\r\n       dkim=pass header.i=@imolocale.fr header.s=google header.b=c2lnbmVk;\r\n"
          "       spf=neutral (google.com: 1.2.3.4 is neither permitted nor denied) smtp.mailfrom=julie@eu.imolocale.fr")
# through a Google Group: DMARC fails on the group's envelope, Gmail reports the ARC verdict
GROUP = ("mx.google.com;\r\n       dkim=pass header.i=@googlegroups.com header.s=20230601 header.b=Z3JvdXA=;\r\n"
         "       arc=pass (i=1 spf=pass spfdomain=imolocale.fr dkim=pass dkdomain=imolocale.fr dmarc=pass "
         "fromdomain=imolocale.fr);\r\n"
         "       spf=pass (google.com: domain of equipe+bncBD@imolocale.fr designates 2607:f8b0:4864:20::13c as "
         "permitted sender) smtp.mailfrom=equipe+bncBD@imolocale.fr;\r\n"
         "       dmarc=fail (p=NONE sp=NONE dis=NONE arc=pass) header.from=imolocale.fr")
GROUP_ARC = (
    ("ARC-Seal", "i=1; a=rsa-sha256; t=1732960000; cv=none; d=google.com; s=arc-20160816; b=U2VhbA=="),
    ("ARC-Authentication-Results", "i=1; mx.google.com;\r\n       dkim=pass header.i=@imolocale.fr header.s=google "
     "header.b=c2lnbmVk;\r\n       spf=pass (google.com: domain of julie@imolocale.fr designates 209.85.220.41 as "
     "permitted sender) smtp.mailfrom=julie@imolocale.fr;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) "
     "header.from=imolocale.fr"),
)
STAFF = "julie@imolocale.fr"


def test_plain_gmail_staff_pass_on_dmarc():
    assert verify_sender((GMAIL,), "julie.martin@gmail.com", "mx.google.com") == (True, "dmarc=pass")


def test_workspace_with_dkim_started_passes_without_a_dmarc_record():
    assert verify_sender((WORKSPACE_DKIM,), STAFF, "mx.google.com") == (True, "dkim=pass header.d=imolocale.fr")


def test_dkim_of_the_organisational_parent_is_trusted_but_not_of_a_bare_suffix():
    assert verify_sender((PARENT,), "julie@eu.imolocale.fr", "mx.google.com")[0]
    bare = PARENT.replace("header.i=@imolocale.fr", "header.i=@co.uk")
    assert not verify_sender((bare,), "julie@imolocale.co.uk", "mx.google.com")[0]
    assert organisational("eu.imolocale.co.uk") == "imolocale.co.uk"


def test_workspace_default_key_is_refused_by_default_and_says_what_to_do():
    trusted, why = verify_sender((WORKSPACE_NO_DKIM,), STAFF, "mx.google.com")
    assert not trusted and "Start authentication" in why and "no DMARC record" in why


def test_workspace_default_key_is_trusted_only_when_chosen():
    trusted, why = verify_sender((WORKSPACE_NO_DKIM,), STAFF, "mx.google.com", trust="dkim")
    assert trusted and "staff_trust=dkim" in why
    # another tenant's default key proves nothing about imolocale.fr
    other = WORKSPACE_NO_DKIM.replace("imolocale-fr.2023", "evil-example.2023")
    assert not verify_sender((other,), STAFF, "mx.google.com", trust="dkim")[0]


def test_spf_alone_only_with_spf_aligned():
    spf_only = WORKSPACE_NO_DKIM.replace("dkim=pass", "dkim=none")
    assert not verify_sender((spf_only,), STAFF, "mx.google.com", trust="dkim")[0]
    assert verify_sender((spf_only,), STAFF, "mx.google.com", trust="spf-aligned")[0]


def test_google_group_is_trusted_through_the_arc_chain_google_sealed():
    trusted, why = verify_sender((GROUP,), STAFF, "mx.google.com", arc=GROUP_ARC)
    assert trusted and why.startswith("arc=pass")


def test_arc_is_not_trusted_when_someone_else_sealed_it_or_gmail_did_not_verify_it():
    forged = tuple((n, v.replace("d=google.com", "d=evil.example")) for n, v in GROUP_ARC)
    assert not verify_sender((GROUP,), STAFF, "mx.google.com", arc=forged)[0]
    unverified = GROUP.replace("arc=pass (i=1", "arc=fail (i=1")
    assert not verify_sender((unverified,), STAFF, "mx.google.com", arc=GROUP_ARC)[0]
    # a later set by a forwarder that is not Google: the latest seal is not Google's
    later = GROUP_ARC + (("ARC-Seal", "i=2; a=rsa-sha256; cv=pass; d=forwarder.example; s=x; b=eA=="),
                         ("ARC-Authentication-Results", "i=2; mx.google.com; dmarc=pass header.from=imolocale.fr"))
    assert not verify_sender((GROUP,), STAFF, "mx.google.com", arc=later)[0]


def test_check_report_names_what_the_domain_lacks():
    lacks = auth_report((WORKSPACE_NO_DKIM,), "mx.google.com", STAFF)
    assert any("DKIM for imolocale.fr is not started" in line for line in lacks)
    assert any("_dmarc.imolocale.fr" in line for line in lacks)
    assert auth_report((GMAIL,), "mx.google.com", "julie.martin@gmail.com") == []



@pytest.mark.parametrize("unit", ["a", "a=", "a =", "a=\"", " ", "(", "x.y-", "=a "])
def test_the_parser_is_linear_on_hostile_headers(unit):
    """Before: 40 KB of one shape took 21 s (quadratic). 10 times the input must cost about
    10 times the work, not 100 times."""
    small = "other.example; dkim=pass " + unit * (100_000 // len(unit))
    large = "other.example; dkim=pass " + unit * (1_000_000 // len(unit))
    assert growth(_results, small, large) < LINEAR


def _mail(auth_results, sender=STAFF):
    from types import SimpleNamespace
    return SimpleNamespace(auth_results=auth_results, from_addr=sender)


def test_refusal_names_each_failed_check_for_the_explanations():
    """The codes the refused-staff mails word in plain French or English (issue 14 item 9)."""
    from maildesk.config import SecurityConfig
    from maildesk.core.trust import refusal
    sec = SecurityConfig()
    workspace = refusal(_mail((WORKSPACE_NO_DKIM,)), sec)
    assert workspace["checks"] == ["dkim_not_started", "no_dmarc"]
    assert workspace["signer"] == "imolocale-fr.20230601.gappssmtp.com" and workspace["domain"] == "imolocale.fr"
    forged = "mx.google.com; dkim=none; spf=softfail smtp.mailfrom=imolocale.fr; dmarc=fail header.from=imolocale.fr"
    assert refusal(_mail((forged,)), sec)["checks"] == ["no_dkim", "dmarc_fail"]
    assert refusal(_mail(()), sec)["checks"] == ["no_results"]
    assert refusal(_mail(("evil.example; dmarc=pass header.from=imolocale.fr",)), sec)["checks"] == ["no_results"]
