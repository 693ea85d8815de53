"""A customer's file made fit for a seller: nothing in it that identifies the customer. Images are
decoded and written again without their metadata (EXIF with its GPS position, camera owner and
thumbnail; XMP; comments; PNG text chunks) by Pillow; a file name that holds the customer's name
or address is replaced. P11: imolocale contacts the seller for the customer, who stays unnamed."""
from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

# what Pillow writes back; other image types (HEIC, RAW, SVG ...) cannot be cleaned, so they are held
_FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"), "GIF": ("image/gif", ".gif"),
            "WEBP": ("image/webp", ".webp"), "TIFF": ("image/tiff", ".tif"), "BMP": ("image/bmp", ".bmp")}
MAX_PIXELS = 60_000_000  # a photo from any phone is well under; above it is a decompression bomb


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
    if content_type.startswith("image/") or _looks_like_image(content):
        image = _clean_image(content)
        if isinstance(image, Withheld):
            return image
        content, (content_type, ext), stripped = image[0], image[1], True
        if not filename.lower().endswith(ext) and not (ext == ".jpg" and filename.lower().endswith(".jpeg")):
            filename = filename.rsplit(".", 1)[0] + ext if "." in filename else filename + ext
    renamed = names_customer(filename, who)
    if renamed:
        ext = ("." + filename.rsplit(".", 1)[1].lower()) if "." in filename else ""
        kind = "photo" if content_type.startswith("image/") else "document"
        filename = f"{kind}-{number}{ext if len(ext) <= 6 else ''}"
    return Cleaned(filename, content_type, content, renamed, stripped)


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
