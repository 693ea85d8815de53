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


# --- documents: read, not rewritten; withheld when they name the customer -------------------------

def pdf(*objects: bytes) -> bytes:
    return b"%PDF-1.4\n" + b"\n".join(objects) + b"\n%%EOF\n"


def docx(core: str, body: str = "<w:t>Colis cass\u00e9</w:t>", image: bytes | None = None) -> bytes:
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("docProps/core.xml", core)
        zf.writestr("word/document.xml", body)
        if image:
            zf.writestr("word/media/image1.jpeg", image)
    return out.getvalue()


def test_a_pdf_naming_the_customer_in_its_info_dictionary_is_withheld():
    utf16 = b"<" + ("\ufeffJeanne Dupont".encode("utf-16-be").hex().upper().encode()) + b">"
    for author in (b"/Author (Jeanne Dupont)", b"/Author (DUPONT, Jeanne)", b"/Creator (jeanne.dupont@example.fr)",
                   b"/Author " + utf16, b"/Author (\xfe\xff" + "Jeanne Dupont".encode("utf-16-be") + b")"):
        out = for_seller("facture.pdf", "application/pdf", pdf(b"1 0 obj <<" + author + b">> endobj"), WHO, 2)
        assert out == Withheld("it names the customer"), author


def test_a_pdf_naming_the_customer_inside_a_compressed_stream_is_withheld():
    import zlib
    stream = zlib.compress(b"BT /F1 12 Tf (Livraison : Mme Jeanne Dupont, 12 rue des Lilas) Tj ET")
    out = for_seller("facture.pdf", "application/pdf",
                     pdf(b"4 0 obj <</Filter /FlateDecode>> stream\n" + stream + b"\nendstream"), WHO, 2)
    assert out == Withheld("it names the customer")


def test_a_pdf_that_does_not_name_the_customer_goes_renamed_if_its_name_did():
    clean = pdf(b"1 0 obj <</Author (Boutique Lumiere) /Title (Facture 784512)>> endobj")
    out = for_seller("facture-Jeanne-Dupont.pdf", "application/pdf", clean, WHO, 2)
    assert isinstance(out, Cleaned) and out.filename == "document-2.pdf" and out.content == clean


def test_an_office_document_whose_creator_is_the_customer_is_withheld():
    named = docx("<dc:creator>Jeanne Dupont</dc:creator>")
    assert for_seller("lettre.docx", "application/octet-stream", named, WHO, 3) == Withheld("it names the customer")
    mailed = docx("<dc:creator>x</dc:creator>", body="<w:t>jeanne.dupont&#64;example.fr</w:t>")
    assert for_seller("lettre.docx", "application/octet-stream", mailed, WHO, 3) == Withheld("it names the customer")
    clean = docx("<dc:creator>Service client</dc:creator>")
    assert isinstance(for_seller("lettre.docx", "application/octet-stream", clean, WHO, 3), Cleaned)


def test_an_office_document_holding_a_photo_with_a_gps_position_is_withheld():
    out = for_seller("rapport.docx", "application/octet-stream", docx("<x/>", image=photo()), WHO, 3)
    assert isinstance(out, Withheld) and "GPS" in out.why


def test_similar_names_are_not_the_customer():
    other = b"%PDF-1.4 /Author (Jeannette Duponteau) /Subject (dupont-de-nemours)"
    assert isinstance(for_seller("x.pdf", "application/pdf", other, WHO, 1), Cleaned)


def test_heic_photos_and_videos_are_withheld_with_the_reason():
    heic = for_seller("IMG_0042.HEIC", "application/octet-stream", b"\x00\x00\x00\x18ftypheic" + b"\0" * 64, WHO, 1)
    assert isinstance(heic, Withheld) and heic.why.startswith("HEIC/HEIF photo") and "GPS" in heic.why
    mov = for_seller("IMG_0043.MOV", "video/quicktime", b"\x00\x00\x00\x14ftypqt  " + b"\0" * 64, WHO, 1)
    assert isinstance(mov, Withheld) and mov.why.startswith("video")


def test_a_file_name_with_any_spelling_of_the_address_is_replaced():
    out = for_seller("scan_jeanne.dupont[at]example.fr.pdf", "application/pdf", b"%PDF-1.4", WHO, 4)
    assert out.filename == "document-4.pdf"


def test_accents_and_case_do_not_hide_the_name_in_a_document():
    who = Identity("h.dupre@example.org", "Hélène Dupré")
    for written in ("HELENE DUPRE".encode(), "Dupré, Hélène".encode("utf-8"), "Hélène Dupré".encode("latin-1")):
        assert for_seller("x.pdf", "application/pdf", b"%PDF-1.4 /Author (" + written + b")", who, 1) == \
            Withheld("it names the customer"), written
