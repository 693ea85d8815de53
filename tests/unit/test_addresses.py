import pytest

from maildesk.addresses import mailbox_key


@pytest.mark.parametrize("spelling, key", [
    ("Bob@Example.TEST", "bob@example.test"),
    ("bob+1@example.test", "bob@example.test"),
    ("bob+a+b@example.test", "bob@example.test"),
    ("b.o.b@example.test", "b.o.b@example.test"),        # dots matter outside Gmail
    ("B.o.B+x@gmail.com", "bob@gmail.com"),
    ("bob@googlemail.com", "bob@gmail.com"),
    ('"a+b"@example.test', '"a+b"@example.test'),         # a quoted local part is taken as it is
    ("+only@example.test", "+only@example.test"),         # nothing left without the tag: keep it
    ("not-an-address", "not-an-address"),
])
def test_spellings_of_one_mailbox_share_a_key(spelling, key):
    assert mailbox_key(spelling) == key


def test_different_mailboxes_keep_different_keys():
    assert mailbox_key("bob@example.test") != mailbox_key("bobby@example.test")
    assert mailbox_key("bob@example.test") != mailbox_key("bob@example.org")
