"""What a file's bytes are, and what is wrong with an attachment as it came: damaged base64,
an empty file, a declared type its bytes deny. Pure: bytes and headers in, plain words out.
The words are what `maildesk attachment` and `maildesk show` print beside the file."""
from __future__ import annotations

# kind -> (how it is named in a problem, the declared types that agree with it)
KINDS: dict[str, tuple[str, frozenset[str]]] = {
    "jpeg": ("a JPEG image", frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})),
    "png": ("a PNG image", frozenset({"image/png", "image/apng", "image/x-png"})),
    "gif": ("a GIF image", frozenset({"image/gif"})),
    "webp": ("a WebP image", frozenset({"image/webp"})),
    "tiff": ("a TIFF image", frozenset({"image/tiff", "image/tif"})),
    "isomedia": ("an HEIC/MP4 media file", frozenset({"image/heic", "image/heif", "image/avif", "image/heic-sequence",
                                                      "video/mp4", "video/quicktime", "audio/mp4", "video/3gpp",
                                                      "audio/x-m4a", "audio/m4a"})),
    "pdf": ("a PDF", frozenset({"application/pdf", "application/x-pdf", "application/acrobat"})),
    "zip": ("a ZIP archive", frozenset({"application/zip", "application/x-zip", "application/x-zip-compressed",
                                        "application/java-archive", "application/epub+zip",
                                        "application/vnd.android.package-archive",
                                        "application/msword", "application/vnd.ms-excel",
                                        "application/vnd.ms-powerpoint"})),  # modern Office files sent as the old types
    "ole2": ("an Office 97-2003 document", frozenset({"application/msword", "application/vnd.ms-excel",
                                                      "application/vnd.ms-powerpoint", "application/vnd.ms-outlook",
                                                      "application/x-msi", "application/x-ole-storage",
                                                      "application/vnd.visio"})),
    "exe": ("a Windows program (EXE)", frozenset({"application/x-msdownload", "application/x-dosexec",
                                                  "application/vnd.microsoft.portable-executable",
                                                  "application/x-msdos-program", "application/x-executable",
                                                  "application/exe", "application/x-exe"})),
    "rar": ("a RAR archive", frozenset({"application/vnd.rar", "application/x-rar-compressed", "application/x-rar"})),
    "gzip": ("a gzip archive", frozenset({"application/gzip", "application/x-gzip", "application/x-gtar",
                                          "application/x-tgz", "application/x-compressed-tar"})),
    "tar": ("a tar archive", frozenset({"application/x-tar", "application/x-ustar"})),
    "7z": ("a 7-Zip archive", frozenset({"application/x-7z-compressed"})),
}

# a declared type that says nothing about the bytes: never contradicted
GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown",
                     "application/download", "application/force-download", "application/x-download",
                     "application/binary"})

# declared types whose every file starts with its magic number: without it, the bytes deny the type
_STRICT = {declared: kind for kind in ("jpeg", "png", "gif", "pdf", "zip", "rar", "gzip", "7z")
           for declared in KINDS[kind][1] if not declared.startswith(("application/msword", "application/vnd.ms-"))}

# declared types of Office files that may be either the old (OLE2) or the new (ZIP) format
_OFFICE_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.",
                    "application/vnd.ms-")


def sniff(data: bytes) -> str | None:
    """The kind the first bytes show (a key of KINDS), or None when no magic number matches."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head[4:8] == b"ftyp":
        return "isomedia"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole2"
    if head.startswith(b"MZ"):
        return "exe"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if data[257:262] == b"ustar":
        return "tar"
    return None


def _agrees(kind: str, declared: str) -> bool:
    if declared in KINDS[kind][1]:
        return True
    if kind in ("zip", "ole2") and declared.startswith(_OFFICE_PREFIXES):
        return True
    return kind == "zip" and declared.endswith("+zip")


def _known(declared: str) -> bool:
    return declared.startswith(("text/", "image/", "audio/", "video/")) or any(
        declared in types for _, types in KINDS.values())


def type_problem(declared: str, data: bytes) -> str | None:
    """'declared image/jpeg, the bytes are a PDF' when the bytes contradict the declared type;
    None when they agree, when the declared type is generic or unknown to us."""
    declared = (declared or "").strip().lower()
    if declared in GENERIC or not data:
        return None
    kind = sniff(data)
    if kind is not None:
        if _agrees(kind, declared):
            return None
        if _known(declared) or kind == "exe":  # a program is worth saying whatever it claims to be
            return f"declared {declared}, the bytes are {KINDS[kind][0]}"
        return None
    if _STRICT.get(declared) == "pdf" and b"%PDF-" in data[:1024]:
        return None  # PDF readers accept a few bytes of junk before the header
    if declared in _STRICT:
        return f"declared {declared}, the bytes are not {KINDS[_STRICT[declared]][0]}"
    return None


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def base64_damage(text: str) -> str | None:
    """What is wrong with base64 text as received ('invalid characters', 'bad padding',
    'truncated'), or None when it decodes cleanly. C-speed passes only (18 MB of text: ~60 ms)."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        return "invalid characters"
    clean = data.translate(None, b" \t\r\n")
    if clean.translate(None, _B64_ALPHABET):
        return "invalid characters"
    stripped = clean.rstrip(b"=")
    if b"=" in stripped or len(clean) - len(stripped) > 2:
        return "bad padding"
    if len(stripped) % 4 == 1:
        return "truncated"
    if len(clean) % 4:
        return "bad padding"
    return None


DAMAGED_BASE64 = "damaged base64: stored as received"
EMPTY = "empty file"


def problem(declared: str, data: bytes, base64_text: str | None = None, defects: tuple[str, ...] = ()) -> str | None:
    """What is wrong with one attachment as it came, in plain words, or None. `base64_text`: the
    part's transfer-encoded text when it was base64; `defects`: the part's defect names."""
    if (base64_text is not None and base64_damage(base64_text)) or any(
            d.startswith("InvalidBase64") for d in defects):
        return DAMAGED_BASE64  # the bytes are the encoded text: their type cannot be judged
    if not data:
        return EMPTY
    return type_problem(declared, data)
