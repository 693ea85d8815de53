"""A customer's file made fit for a seller: nothing in it that identifies the customer. Images are
decoded and written again without their metadata (EXIF with its GPS position, camera owner and
thumbnail; XMP; comments; PNG text chunks) by Pillow; a file name that holds the customer's name
or address is replaced. P11: imolocale contacts the seller for the customer, who stays unnamed.

What is not an image is read, not rewritten: a document whose bytes name the customer (their address
in any spelling, or their name) is withheld, "it names the customer". Looked at: the raw bytes (a PDF's
Info dictionary, /Author, XMP), those bytes read as UTF-16, a PDF's hex strings and its Flate-compressed
streams, and every member of a zip-based document (docx/xlsx/pptx core.xml creator, odt meta.xml, the
text). Not seen: text a PDF draws through a font's own glyph codes. Photos and videos whose metadata
Pillow cannot remove (HEIC, HEIF, MOV, MP4) are withheld: they carry the GPS position."""
from __future__ import annotations

import io
import re
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps

from maildesk.core import sellers

# what Pillow writes back; other image types (HEIC, RAW, SVG ...) cannot be cleaned, so they are held
_FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"), "GIF": ("image/gif", ".gif"),
            "WEBP": ("image/webp", ".webp"), "TIFF": ("image/tiff", ".tif"), "BMP": ("image/bmp", ".bmp")}
MAX_PIXELS = 60_000_000  # a photo from any phone is well under; above it is a decompression bomb
SCAN_BUDGET = 64 * 1024 * 1024  # bytes a document's compressed parts may inflate to while it is read
NAMES_CUSTOMER = "it names the customer"
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


@dataclass(frozen=True)
class Identity:
    """What would name the customer: their address and display name (and any other words, e.g. a
    name they signed with)."""
    address: str
    name: str | None = None
    other: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cleaned:
    filename: str
    content_type: str
    content: bytes
    renamed: bool
    stripped: bool  # an image written again without its metadata


@dataclass(frozen=True)
class Withheld:
    why: str  # "image metadata cannot be removed (HEIC)", "damaged image"


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"[^a-z0-9@]+", " ", "".join(ch for ch in folded if not unicodedata.combining(ch))).strip()


def identifying_words(who: Identity) -> list[str]:
    """The pieces of the customer's identity a file name must not hold: the address, its local part
    and its dotted parts (jean.dupont -> jean, dupont), each word of the display name; words of fewer
    than three letters say nothing."""
    words = {_fold(who.address), _fold(who.address.rpartition("@")[0])}
    for source in (who.address.rpartition("@")[0], who.name or "", *who.other):
        words.update(_fold(source).split())
    return sorted((w for w in words if len(w.replace(" ", "")) >= 3), key=len, reverse=True)


def names_customer(filename: str, who: Identity) -> bool:
    folded = f" {_fold(filename.replace('_', ' ').replace('-', ' ').replace('.', ' '))} "
    compact = _fold(filename).replace(" ", "")
    for word in identifying_words(who):
        if f" {word} " in folded or (" " in word and word.replace(" ", "") in compact) or \
                (len(word) >= 5 and word.replace(" ", "") in compact):
            return True
    return False


def for_seller(filename: str, content_type: str, content: bytes, who: Identity, number: int) -> Cleaned | Withheld:
    """The file as the seller may see it, or why it stays with us. `number`: its place in the
    complaint's files, for a replacement name ("photo-2.jpg")."""
    stripped = False
    held = _unclean_media(content_type, content)
    if held:
        return held
    if content_type.startswith("image/") or _looks_like_image(content):
        image = _clean_image(content)
        if isinstance(image, Withheld):
            return image
        content, (content_type, ext), stripped = image[0], image[1], True
        if not filename.lower().endswith(ext) and not (ext == ".jpg" and filename.lower().endswith(".jpeg")):
            filename = filename.rsplit(".", 1)[0] + ext if "." in filename else filename + ext
    else:
        why = document_problem(content, who)
        if why:
            return Withheld(why)
    renamed = names_customer(filename, who) or sellers.address_pattern(who.address).found(filename)
    if renamed:
        ext = ("." + filename.rsplit(".", 1)[1].lower()) if "." in filename else ""
        kind = "photo" if content_type.startswith("image/") else "document"
        filename = f"{kind}-{number}{ext if len(ext) <= 6 and ext[1:].isalnum() else ''}"
    return Cleaned(filename, content_type, content, renamed, stripped)


def _unclean_media(content_type: str, content: bytes) -> Withheld | None:
    """HEIC/HEIF photos (iPhones) and videos keep a GPS position Pillow cannot take out."""
    brand = content[8:12] if content[4:8] == b"ftyp" else b""
    if brand in HEIF_BRANDS or content_type in ("image/heic", "image/heif", "image/avif"):
        return Withheld("HEIC/HEIF photo: its metadata (GPS position, camera owner) cannot be removed here; "
                        "ask the customer for a JPEG or a screenshot")
    if content_type.startswith("video/") or brand:
        return Withheld("video: its metadata (GPS position) cannot be removed here")
    return None


def document_problem(content: bytes, who: Identity) -> str | None:
    """Why a document may not go to the seller (it names the customer, or it cannot be read
    through), or None. See the module's docstring for what is read. Each reading is first looked
    through as bytes for a plain piece of the name or the address's domain (fast); only then are
    the slower patterns (accents, every spelling of the address) run."""
    address = sellers.address_pattern(who.address)
    name = _name_pattern(who)
    anchors = _anchors(who)
    domain = who.address.rpartition("@")[2].split(".")[0].lower()
    try:
        for data in _texts(content):
            low = data.lower()
            named = name is not None and (anchors is None or any(a in low for a in anchors))
            mailed = len(domain) < 2 or domain.encode() in low
            if not (named or mailed):
                continue
            for text in (data.decode("latin-1"), data.decode("utf-8", "replace")):
                if named and name.search(text) or mailed and _address_in(text, address, domain):
                    return NAMES_CUSTOMER
    except _GpsInside as e:
        return str(e)
    except _Unreadable as e:
        return f"it cannot be checked for the customer's name ({e})"
    return None


def _anchors(who: Identity) -> list[bytes] | None:
    """Plain lower-case pieces of the name's words (their longest unaccented run, and the word
    without accents), one of which any writing of the name holds; None when a word has none long
    enough to say anything: then every reading gets the full pattern."""
    found = []
    for n in [who.name or "", *who.other, who.address.rpartition("@")[0].partition("+")[0]]:
        for word in re.split(r"[\W_]+", n):
            if not word or word.isdigit():
                continue
            runs = [r for r in re.findall(r"[a-z]+", word.lower())]
            pieces = {max(runs, key=len, default=""), _fold(word).replace(" ", "")}
            pieces = {x for x in pieces if len(x) >= 3}
            if not pieces:
                return None
            found += [x.encode() for x in pieces]
    return found or None


class _Unreadable(Exception):
    pass


def _address_in(text: str, address, domain: str) -> bool:
    """The address in `text`: its full spellings are looked for near each mention of its domain's
    first label (a binary file is mostly not text; `Spellings` reads every character)."""
    if len(domain) < 2:
        return address.found(text)
    lowered = text.lower()
    start = lowered.find(domain)
    while start >= 0:
        if address.found(text[max(0, start - 300):start + 300]):
            return True
        start = lowered.find(domain, start + 300)
    return False


_ACCENTS: dict[str, str] = {}
for _code in range(0xC0, 0x250):
    _base = unicodedata.normalize("NFKD", chr(_code))[0].lower()
    if "a" <= _base <= "z":
        _ACCENTS[_base] = _ACCENTS.get(_base, "") + chr(_code).lower() + chr(_code).upper()


def _word_re(word: str) -> str:
    return "".join(f"[{re.escape(c)}{_ACCENTS.get(c, '')}]" if c.isalpha() else re.escape(c) for c in word)


def _name_pattern(who: Identity) -> re.Pattern | None:
    """The customer's name as a document would write it: its words in order or last name first,
    any case or accents, separated by spaces or punctuation. A name from the address's local part
    counts when it has parts (jean.dupont); a one-word local part (`contact`) says nothing."""
    names = [who.name or "", *who.other]
    local = who.address.rpartition("@")[0].partition("+")[0]
    if re.search(r"[._-]", local):
        names.append(local)
    forms = set()
    for n in names:
        words = [w for w in _fold(n).split() if not w.isdigit()]
        if not words or sum(len(w) for w in words) < 4:
            continue
        forms.add(r"[\W_]{1,4}".join(_word_re(w) for w in words))
        if len(words) == 2:
            forms.add(r"[\W_]{1,4}".join(_word_re(w) for w in reversed(words)))
    if not forms:
        return None
    letter = r"A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FD\u0100-\u024F"  # not þÿ: a UTF-16 mark
    return re.compile(rf"(?-i:(?<![{letter}]))(?:{'|'.join(sorted(forms))})(?-i:(?![{letter}]))", re.IGNORECASE)


def _texts(content: bytes):
    """The document read every way the module's docstring says, one reading (bytes) at a time."""
    budget = [SCAN_BUDGET]
    yield from _readings(content)
    if content[:1024].find(b"%PDF-") >= 0:
        for hexa in re.finditer(rb"<([0-9A-Fa-f\s]{8,})>", content):
            digits = re.sub(rb"\s", b"", hexa.group(1))
            data = bytes.fromhex(digits.decode()[: len(digits) // 2 * 2])
            yield data.decode("utf-16-be", "replace").encode() if data[:2] == b"\xfe\xff" else data
        for stream in re.finditer(rb"stream\r?\n", content):
            end = content.find(b"endstream", stream.end())
            inflated = _inflate(content[stream.end():end if end > 0 else len(content)], budget)
            if inflated:
                yield from _readings(inflated)
    elif content[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as zf:
                for info in zf.infolist():
                    if info.flag_bits & 0x1:
                        raise _Unreadable("encrypted")
                    if info.file_size > budget[0]:
                        raise _Unreadable("too large to read through")
                    budget[0] -= info.file_size
                    data = zf.open(info).read(info.file_size + 1)
                    if _gps_in_image(info.filename, data):
                        raise _GpsInside()
                    yield from _readings(data)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise _Unreadable(f"damaged archive: {type(e).__name__}") from None


class _GpsInside(_Unreadable):
    def __str__(self) -> str:
        return "an image inside it carries a GPS position"


def _gps_in_image(name: str, data: bytes) -> bool:
    if not name.lower().endswith((".jpg", ".jpeg", ".tif", ".tiff", ".png", ".webp")):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            return bool(im.getexif().get_ifd(0x8825))
    except Exception:
        return False


def _readings(data: bytes):
    """The bytes, and the bytes with their zero bytes dropped: UTF-16 text of Latin letters (a
    PDF's \\xfe\\xff strings) anywhere among other bytes."""
    yield data
    if b"\x00" in data:
        yield data.replace(b"\x00", b"")


def _inflate(data: bytes, budget: list[int]) -> bytes:
    """A Flate stream inflated within what is left of the budget; b"" if it is not one."""
    if budget[0] <= 0:
        raise _Unreadable("too large to read through")
    try:
        out = zlib.decompressobj().decompress(data, budget[0])
    except zlib.error:
        return b""
    budget[0] -= len(out)
    return out


def _looks_like_image(content: bytes) -> bool:
    return content[:3] == b"\xff\xd8\xff" or content[:8] == b"\x89PNG\r\n\x1a\n" or content[:4] == b"GIF8"


def _clean_image(content: bytes):
    """(bytes, (type, extension)) of the image written again with nothing but its pixels (turned
    upright first, as its EXIF said, since that goes), or Withheld."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as im:
                fmt = im.format
                if fmt not in _FORMATS:
                    return Withheld(f"image metadata cannot be removed ({fmt or 'unknown type'})")
                if im.width * im.height > MAX_PIXELS:
                    return Withheld("image too large to clean")
                im.load()
                upright = ImageOps.exif_transpose(im)
                icc = im.info.get("icc_profile")  # colours, not identity: kept
                pixels = upright.copy()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return Withheld("image too large to clean")
    except Exception:
        return Withheld("damaged image: it cannot be cleaned of its metadata")
    pixels.info = {}
    out = io.BytesIO()
    options = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        if pixels.mode not in ("RGB", "L", "CMYK"):
            pixels = pixels.convert("RGB")
        options.update(quality=92, optimize=True)
    elif fmt == "GIF":
        options.pop("icc_profile", None)
    pixels.save(out, format=fmt, **options)
    return out.getvalue(), _FORMATS[fmt]
