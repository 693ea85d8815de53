"""The seller registry read from a CSV or JSON file as sellers' tools write them."""
from __future__ import annotations

from maildesk.service.seller_import import read_rows


def test_read_rows_csv_with_semicolons_and_bom_and_json(tmp_path):
    csv_file = tmp_path / "s.csv"
    csv_file.write_text("\ufeffid;shop_name;address\nS1;Café, Thé & Co;a@b.example\n", encoding="utf-8")
    [(where, row)] = read_rows(csv_file)
    assert where == "line 2" and row["shop_name"] == "Café, Thé & Co"
    json_file = tmp_path / "s.json"
    json_file.write_text('[{"id": "S1", "shop_name": "X", "address": "a@b.example"}]')
    assert read_rows(json_file)[0][1]["id"] == "S1"
