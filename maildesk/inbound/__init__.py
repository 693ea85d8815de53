"""Raw bytes -> InboundMail: parse.py runs decode, mime, html, reply and extract in order."""
