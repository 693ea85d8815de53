"""What inbound/archives.py finds inside archives, built in memory here: Gmail refuses a blocked
type inside .zip/.tar/.gz/.rar/.bz2 as it refuses it bare."""
import bz2
import gzip
import io
import random
import struct
import tarfile
import zipfile
import zlib

from maildesk.inbound import archives


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tarred(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _rar_block(htype: int, flags: int, body: bytes) -> bytes:
    head = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head


def rar4(files: dict[str, bytes]) -> bytes:
    """A RAR 4 archive of stored files, written by hand (no rar tool here): marker, archive header,
    one file header per file (RAR technote), end block."""
    out = b"Rar!\x1a\x07\x00" + _rar_block(0x73, 0, b"\x00" * 6)
    for name, data in files.items():
        nb = name.encode()
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), 0x5A000000, 20, 0x30,
                           len(nb), 0x20) + nb
        out += _rar_block(0x74, 0x8000, body) + data
    return out + _rar_block(0x7B, 0x4000, b"")


def test_a_plain_file_is_not_an_archive():
    assert archives.listing("photo.jpg", b"\xff\xd8\xff\xe0 jpeg") is None


def test_zip_names_are_listed():
    found = archives.listing("photos.zip", zipped({"colis.jpg": b"x", "outil/setup.js": b"alert(1)"}))
    assert found.names == ("colis.jpg", "outil/setup.js") and found.unreadable is None


def test_a_zip_inside_a_zip_is_opened():
    inner = zipped({"run.exe": b"MZ"})
    found = archives.listing("a.zip", zipped({"b.zip": inner}))
    assert "b.zip/run.exe" in found.names


def test_tar_tgz_and_tar_bz2():
    files = {"a/facture.pdf": b"%PDF", "a/x.vbs": b"x"}
    assert archives.listing("a.tar", tarred(files)).names == ("a/facture.pdf", "a/x.vbs")
    assert "a/x.vbs" in archives.listing("a.tgz", tarred(files, "w:gz")).names
    assert "a/x.vbs" in archives.listing("a.tar.bz2", tarred(files, "w:bz2")).names


def test_gz_and_bz2_of_one_file_name_it_after_the_archive():
    assert archives.listing("setup.exe.gz", gzip.compress(b"MZ...")).names == ("setup.exe",)
    assert archives.listing("run.bat.bz2", bz2.compress(b"echo")).names == ("run.bat",)


def test_gzip_keeps_the_original_name_from_its_header():
    buf = io.BytesIO()
    with gzip.GzipFile(filename="inside.js", mode="wb", fileobj=buf) as f:
        f.write(b"alert(1)")
    assert archives.listing("harmless.gz", buf.getvalue()).names == ("inside.js",)


def test_rar_names_are_listed():
    found = archives.listing("pieces.rar", rar4({"photos/setup.js": b"alert(1)", "note.txt": b"hi"}))
    assert found.names == ("photos/setup.js", "note.txt")


def test_an_encrypted_archive_inside_a_zip_cannot_be_read():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.zip", b"PK\x03\x04 whatever")
    data = bytearray(buf.getvalue())
    # set the "encrypted" flag bit on the member, in its local and central headers
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.find(sig)
        offset = at + (6 if sig == b"PK\x03\x04" else 8)
        data[offset] |= 0x1
    found = archives.listing("outer.zip", bytes(data))
    assert found.names == ("inner.zip",) and found.unreadable == "password-protected archive inside"


def test_damaged_archive_says_so_and_does_not_raise():
    found = archives.listing("broken.zip", b"PK\x03\x04" + b"\x00" * 40)
    assert found.unreadable == "damaged archive"
    assert archives.listing("empty.rar", b"").unreadable == "damaged archive"


def test_a_zip_bomb_is_not_unpacked_past_the_budget(monkeypatch):
    monkeypatch.setattr(archives, "MAX_UNPACKED", 1000)
    noise = random.Random(1).randbytes(5000)  # does not compress: the inner zip is over the budget
    found = archives.listing("bomb.zip", zipped({"big.zip": zipped({"x.txt": noise})}))
    assert found.names == ("big.zip",)
    assert found.unreadable == "archive nested too deep or too large to look inside"


def test_nesting_stops_at_the_depth_limit():
    data = zipped({"deep.exe": b"MZ"})
    for level in range(archives.MAX_DEPTH + 1):
        data = zipped({f"level{level}.zip": data})
    found = archives.listing("top.zip", data)
    assert not any(n.endswith("deep.exe") for n in found.names)
    assert found.unreadable
