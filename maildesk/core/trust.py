"""Whether a mail really comes from its sender's domain, from what our own
receiving server wrote: the topmost Authentication-Results header with our
authserv-id (RFC 8601). A staff address counts only when DMARC passed, or DKIM
passed for the sender's domain: anyone can type a staff address into From.
"""
from __future__ import annotations

import re

# --- Authentication-Results (RFC 8601) ----------------------------------------
#
# Every pattern here reads hostile header text: possessive quantifiers and a look-behind make
# each scan start only at a token's first character, so the work is linear in the header.

TRUST_LEVELS = ("dmarc", "dkim", "spf-aligned")  # [security] staff_trust, strongest first
GOOGLE_SEALERS = ("google.com",)  # the d= of an ARC-Seal that Gmail or Google Groups added
_RESULT = re.compile(r"\s*+([\w.-]++)\s*+=\s*+([\w-]++)")
_PROP = re.compile(r'(?<![\w.-])([\w.-]++)\s*+=\s*+("[^"]*+"|[^\s";]++)')
_ARC_COMMENT = re.compile(r"(?<![\w.-])arc\s*+=\s*+(\w++)\s*+\(([^()]*+)\)", re.I)
_INSTANCE = re.compile(r"\s*+i\s*+=\s*+(\d{1,6})\s*+;", re.A)
# Google Workspace signs with d=<domain, dots as hyphens>.<date>.gappssmtp.com until an admin
# starts DKIM for the domain itself
_GAPPS = re.compile(r"([a-z0-9-]++)\.\d{8}\.gappssmtp\.com", re.A)
# second-level labels under which organisations register (co.uk, com.au, ...): a small,
# documented stand-in for the Public Suffix List, used only to refuse a bare suffix as a parent
_SECOND_LEVEL = {"co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "go", "gouv", "asso", "nom"}


def _strip_comments(value: str) -> str:
    out, depth = [], 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _results(header: str) -> tuple[str, list[dict]]:
    """(authserv-id, [{method, result, props}]) from one header value, in linear time."""
    parts = [p.strip() for p in _strip_comments(header).split(";")]
    authserv = parts[0].split(None, 1)[0].lower() if parts and parts[0].strip() else ""
    results = []
    for part in parts[1:]:
        m = _RESULT.match(part)
        if not m:
            continue
        props = {k.lower(): v.strip('"').lower() for k, v in _PROP.findall(part, m.end())}
        results.append({"method": m.group(1).lower(), "result": m.group(2).lower(), "props": props})
    return authserv, results


def organisational(domain: str) -> str:
    """The registrable domain: the last two labels, or three under a second-level label of a
    two-letter country (imolocale.co.uk). A heuristic, not the Public Suffix List: it is only
    used to decide how far up a DKIM signer may be from the From domain."""
    labels = domain.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(signer: str, domain: str) -> bool:
    """Is `signer` the From domain or one of its parents, no higher than the organisation?"""
    if not signer or not domain:
        return False
    return signer == domain or (domain.endswith("." + signer) and signer.endswith(organisational(domain)))


def _signer(props: dict) -> str:
    return props.get("header.d") or props.get("header.i", "").rpartition("@")[2]


def workspace_signer(signer: str, domain: str) -> bool:
    """Google Workspace's default key for the domain (d=imolocale-fr.20230601.gappssmtp.com)."""
    m = _GAPPS.fullmatch(signer)
    return bool(m) and m.group(1) == domain.replace(".", "-")


def _arc_verdict(arc: tuple[tuple[str, str], ...], domain: str) -> str | None:
    """What the latest ARC set says for `domain`, if Google sealed it: "dmarc=pass" or
    "dkim=pass ...", else None. `arc` holds (header name, value) of the ARC-Seal and
    ARC-Authentication-Results fields."""
    seals, results = {}, {}
    for name, value in arc:
        m = _INSTANCE.match(value)
        if not m:
            continue
        (seals if name.lower() == "arc-seal" else results)[int(m.group(1))] = value[m.end():]
    if not seals:
        return None
    latest = max(seals)
    sealer = {k.lower(): v.lower() for k, v in _PROP.findall(_strip_comments(seals[latest]).replace(";", " "))}
    if sealer.get("d") not in GOOGLE_SEALERS or latest not in results:
        return None
    server, found = _results(results[latest])
    if not server.endswith("google.com"):
        return None
    for r in found:
        if r["method"] == "dmarc" and r["result"] == "pass" and r["props"].get("header.from") == domain:
            return "dmarc=pass"
        if r["method"] == "dkim" and r["result"] == "pass" and aligned(_signer(r["props"]), domain):
            return f"dkim=pass header.d={_signer(r['props'])}"
    return None


def verify_sender(auth_results: tuple[str, ...], sender: str, authserv_id: str,
                  arc: tuple[tuple[str, str], ...] = (), trust: str = "dmarc") -> tuple[bool, str]:
    """Did our own server (the topmost Authentication-Results with our authserv-id) see the
    sender's domain authenticated? Always: DMARC pass, DKIM pass by the From domain or its
    organisational parent, or a verified ARC chain (arc=pass) whose latest set Google sealed
    showing either. With staff_trust "dkim", also Google Workspace's default DKIM key for the
    domain; with "spf-aligned", also SPF pass for the From domain."""
    domain = sender.rpartition("@")[2].lower()
    for header in auth_results:  # topmost first: the one our server added
        server, results = _results(header)
        if server != authserv_id.lower():
            continue
        by = {r["method"]: [] for r in results}
        for r in results:
            by[r["method"]].append(r)
        for r in by.get("dmarc", []):
            if r["result"] == "pass" and r["props"].get("header.from", domain) == domain:
                return True, "dmarc=pass"
        for r in by.get("dkim", []):
            if r["result"] == "pass" and aligned(_signer(r["props"]), domain):
                return True, f"dkim=pass header.d={_signer(r['props'])}"
        if any(r["result"] == "pass" for r in by.get("arc", [])):
            verdict = _arc_verdict(arc, domain)
            if verdict:
                return True, f"arc=pass, sealed by Google: {verdict}"
        if trust in ("dkim", "spf-aligned"):
            for r in by.get("dkim", []):
                if r["result"] == "pass" and workspace_signer(_signer(r["props"]), domain):
                    return True, f"dkim=pass by Google Workspace's default key ({_signer(r['props'])}), staff_trust={trust}"
        if trust == "spf-aligned":
            for r in by.get("spf", []):
                mailfrom = r["props"].get("smtp.mailfrom", "").rpartition("@")[2]
                if r["result"] == "pass" and aligned(mailfrom, domain):
                    return True, f"spf=pass smtp.mailfrom={mailfrom}, staff_trust=spf-aligned"
        return False, f"{authserv_id} reports neither dmarc=pass nor dkim=pass for {domain}" + _lacks(results, domain)
    return False, f"no Authentication-Results from {authserv_id}"


def dmarc_pass(auth_results: tuple[str, ...], sender: str, authserv_id: str) -> bool:
    """Did our own server see DMARC pass for the sender's domain? (Rescuing mail from spam.)"""
    domain = sender.rpartition("@")[2].lower()
    for header in auth_results:
        server, results = _results(header)
        if server == authserv_id.lower():
            return any(r["method"] == "dmarc" and r["result"] == "pass"
                       and r["props"].get("header.from", domain) == domain for r in results)
    return False


def verify(mail, security) -> tuple[bool, str]:
    """verify_sender for a parsed mail, with the [security] settings."""
    arc = tuple((n, v) for n, v in mail.headers if n.lower() in ("arc-seal", "arc-authentication-results"))
    return verify_sender(mail.auth_results, mail.from_addr, security.authserv_id, arc, security.staff_trust)


def _lacks(results: list[dict], domain: str) -> str:
    """Why, in the words an admin can act on (see diagnose)."""
    problems = diagnose(results, domain)
    return f" ({'; '.join(problems)})" if problems else ""


def findings(results: list[dict], domain: str) -> list[tuple[str, str]]:
    """What the staff domain's mail lacked, from what our server saw, as (code, detail) pairs:
    dkim_not_started (detail: Google's default signer), no_dkim, no_dmarc, dmarc_fail. The codes
    are worded for staff and admins in the templates (_auth.txt) and for `check` in diagnose."""
    out = []
    signers = [_signer(r["props"]) for r in results if r["method"] == "dkim" and r["result"] == "pass"]
    default = next((s for s in signers if workspace_signer(s, domain)), None)
    if default:
        out.append(("dkim_not_started", default))
    elif not any(aligned(s, domain) for s in signers):
        out.append(("no_dkim", ""))
    dmarc = [r for r in results if r["method"] == "dmarc"]
    if not dmarc:
        out.append(("no_dmarc", ""))
    elif not any(r["result"] == "pass" for r in dmarc):
        out.append(("dmarc_fail", ""))
    return out


_FIXES = {  # for `maildesk check` and the log: English, as the CLI speaks
    "dkim_not_started": "DKIM for {domain} is not started: Google signs with its default key ({detail}). In the "
                        "Google Admin console, Apps > Google Workspace > Gmail > Authenticate email: generate the "
                        "DKIM record, publish it in the domain's DNS, then press Start authentication",
    "no_dkim": "no DKIM signature of {domain} passed: publish the domain's DKIM key and sign with it",
    "no_dmarc": "{domain} has no DMARC record: publish one in DNS, e.g. _dmarc.{domain} TXT "
                "\"v=DMARC1; p=none; rua=mailto:postmaster@{domain}\"",
}


def diagnose(results: list[dict], domain: str) -> list[str]:
    """What the staff domain lacks, from what Gmail saw, and what to do about it."""
    return [_FIXES[code].format(domain=domain, detail=detail)
            for code, detail in findings(results, domain) if code in _FIXES]


def refusal(mail, security) -> dict:
    """Which checks a refused staff mail failed, for the mails that explain it (templates'
    _auth.txt words each code): {checks: [codes], domain, signer, authserv_id}. "no_results":
    our receiving server left no verdict at all; "unverified": none of the rest, yet no pass."""
    domain = mail.from_addr.rpartition("@")[2].lower()
    facts = {"domain": domain, "signer": "", "authserv_id": security.authserv_id}
    for header in mail.auth_results:
        server, results = _results(header)
        if server == security.authserv_id.lower():
            found = findings(results, domain)
            signer = next((detail for code, detail in found if code == "dkim_not_started"), "")
            return {**facts, "checks": [code for code, _ in found] or ["unverified"], "signer": signer}
    return {**facts, "checks": ["no_results"]}


def auth_report(auth_results: tuple[str, ...], authserv_id: str, sender: str) -> list[str]:
    """`maildesk check`: what our server saw for this staff mail, and what the domain lacks."""
    domain = sender.rpartition("@")[2].lower()
    for header in auth_results:
        server, results = _results(header)
        if server == authserv_id.lower():
            return diagnose(results, domain)
    return [f"the mail carries no Authentication-Results from {authserv_id}: is [security] authserv_id right?"]
