"""outbound/evidence.py: a customer's file as a seller may see it. The EXIF is read back with Pillow."""
import io

from PIL import Image, PngImagePlugin

from maildesk.outbound.evidence import Cleaned, Identity, Withheld, for_seller, names_customer

WHO = Identity("jeanne.dupont@example.fr", "Jeanne Dupont")
GPS, OWNER, ORIENTATION = 0x8825, 0x013B, 0x0112


def photo(fmt: str = "JPEG", orientation: int | None = None, size=(40, 20)) -> bytes:
    im = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[OWNER] = "Jeanne Dupont"
    exif[0x010F] = "Canon"
    exif[GPS] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    if orientation:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", "jeanne.dupont@example.fr")
        im.save(out, "PNG", exif=exif, pnginfo=info)
    else:
        im.save(out, fmt, exif=exif, comment=b"jeanne.dupont@example.fr")
    return out.getvalue()


def test_the_test_photo_really_carries_gps_and_the_owner():
    with Image.open(io.BytesIO(photo())) as im:
        exif = im.getexif()
        assert exif[OWNER] == "Jeanne Dupont" and exif.get_ifd(GPS)
    assert b"jeanne.dupont@example.fr" in photo()


def test_a_jpeg_loses_its_exif_gps_owner_and_comment():
    out = for_seller("colis.jpg", "image/jpeg", photo(), WHO, 1)
    assert isinstance(out, Cleaned) and out.stripped and not out.renamed
    with Image.open(io.BytesIO(out.content)) as im:
        assert im.format == "JPEG" and im.size == (40, 20)
        exif = im.getexif()
        assert OWNER not in exif and not exif.get_ifd(GPS) and "comment" not in im.info
    assert b"jeanne" not in out.content.lower() and b"Canon" not in out.content


def test_a_png_loses_its_text_chunks_and_exif():
    out = for_seller("colis.png", "image/png", photo("PNG"), WHO, 1)
    assert isinstance(out, Cleaned)
    with Image.open(io.BytesIO(out.content)) as im:
        assert im.format == "PNG" and not im.getexif() and "Author" not in im.info
    assert b"jeanne" not in out.content.lower()


def test_the_photo_is_turned_upright_before_its_orientation_tag_goes():
    out = for_seller("colis.jpg", "image/jpeg", photo(orientation=6), WHO, 1)  # 6: rotate 90 degrees
    with Image.open(io.BytesIO(out.content)) as im:
        assert im.size == (20, 40) and ORIENTATION not in im.getexif()


def test_a_file_name_with_the_customer_name_or_address_is_replaced():
    out = for_seller("Jeanne_Dupont_colis.jpg", "image/jpeg", photo(), WHO, 3)
    assert out.filename == "photo-3.jpg" and out.renamed
    pdf = for_seller("facture-jeanne.dupont@example.fr.pdf", "application/pdf", b"%PDF-1.4", WHO, 2)
    assert pdf.filename == "document-2.pdf" and pdf.content == b"%PDF-1.4" and not pdf.stripped
    kept = for_seller("facture-1234.pdf", "application/pdf", b"%PDF-1.4", WHO, 2)
    assert kept.filename == "facture-1234.pdf" and not kept.renamed


def test_which_names_identify_the_customer():
    assert names_customer("DUPONT.pdf", WHO)
    assert names_customer("jeannedupont.jpg", WHO)
    assert names_customer("Jéanne-photo.jpg", WHO)  # accents and case do not hide a name
    assert not names_customer("IMG_2043.jpg", WHO)
    assert not names_customer("dupontel-colis.jpg", Identity("x@y.fr", "Al Pont"))  # short words say nothing


def test_images_pillow_cannot_rewrite_are_withheld():
    assert isinstance(for_seller("colis.heic", "image/heic", b"\x00\x00\x00\x18ftypheic", WHO, 1), Withheld)
    assert for_seller("broken.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 not an image", WHO, 1).why.startswith("damaged")


def test_a_decompression_bomb_is_withheld_not_decoded():
    huge = io.BytesIO()
    Image.new("1", (10000, 10000)).save(huge, "PNG")  # 100 megapixels of one colour: a few KB
    out = for_seller("x.png", "image/png", huge.getvalue(), WHO, 1)
    assert isinstance(out, Withheld) and "too large" in out.why
