import itertools

from maildesk.core import refs


def test_new_references_are_valid_and_not_sequential():
    made = [refs.new_reference("IMO") for _ in range(2000)]
    assert len(set(made)) >= len(made) - 5  # 28 million references: a rare birthday collision only
    bodies = sorted(int("".join(str(refs.ALPHABET.index(c)).zfill(2) for c in r[4:9])) for r in made)
    assert min(b - a for a, b in zip(bodies, bodies[1:]) if b != a) > 0
    assert all(refs.normalize(r.split("-")[1]) == r.split("-")[1] for r in made)
    assert all(len(r) == len("IMO-4K7M2Q") for r in made)


def test_every_single_substitution_and_adjacent_swap_is_caught():
    ref = refs.new_reference("IMO").split("-")[1]
    for i, c in itertools.product(range(6), refs.ALPHABET):
        typo = ref[:i] + c + ref[i + 1:]
        if typo != ref:
            assert refs.normalize(typo) is None, typo
    for i in range(5):
        swapped = ref[:i] + ref[i + 1] + ref[i] + ref[i + 2:]
        if swapped != ref:
            assert refs.normalize(swapped) is None, swapped


def test_find_references_in_subjects():
    ref = refs.new_reference("IMO")
    assert refs.find_references("IMO", f"Re: RE: [{ref}] Colis") == [ref]
    assert refs.find_references("IMO", f"Re: [{ref.lower()}] Colis") == [ref]
    assert refs.find_references("IMO", f"Re: [ {ref.replace('-', ' - ')} ] x") == [ref]
    assert refs.find_references("IMO", "Re: [IMO-AAAAAA] x") == [] or refs.normalize("AAAAAA")
    assert refs.find_references("IMO", "no tag here") == []


def test_tagged_subject_keeps_one_tag_and_drops_reply_prefixes():
    ref = refs.new_reference("IMO")
    assert refs.tagged_subject(ref, f"Re: Tr: [{ref}] Colis") == f"[{ref}] Colis"


def test_without_tags_removes_every_tag_of_ours_and_keeps_the_rest():
    other = refs.new_reference("IMO")
    assert refs.without_tags("IMO", f"Re: [{other}] Colis abîmé") == "Re: Colis abîmé"
    assert refs.without_tags("IMO", f"Re:[{other.lower()}]  Colis [ imo - {other[4:]} ] encore") == "Re: Colis encore"
    assert refs.without_tags("IMO", f"[{other}]") == ""
    # a bare mention and other helpdesks' tags are the customer's words: kept
    assert refs.without_tags("IMO", f"Au sujet de {other} [TICKET-42]") == f"Au sujet de {other} [TICKET-42]"
    assert refs.without_tags("IMO", "") == ""


def test_read_reference_forgives_as_the_tag_reader_does():
    code = "0A0B0"
    ref = f"IMO-{code}{refs.check_symbol(code)}"
    for typed in (ref, ref.lower(), f"  {ref} ", f"[{ref}]", f"[ {ref.lower()} ]", f"[{ref}", f"{ref}]",
                  ref.replace("0", "O"), ref.replace("0", "o"), ref.replace("-", " - "), f"Re: [{ref}] Colis"):
        assert refs.read_reference("IMO", typed) == ref, typed
    other = refs.new_reference("IMO")
    for typed in (ref[:-1] + ("X" if ref[-1] != "X" else "Y"), "", "IMO-", f"{ref}x", f"[{ref}] [{other}]",
                  f"ABC-{code}{refs.check_symbol(code)}"):
        assert refs.read_reference("IMO", typed) is None, typed
