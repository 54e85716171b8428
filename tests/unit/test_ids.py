"""Record identifiers: canonical version-4 UUIDs, as the vendors' own (the specs declare format: uuid), whose first
48 bits are the millisecond they were made."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from verifymock.ids import new_digits, new_hex, new_id


def test_new_ids_are_canonical_version_4_uuids() -> None:
    for _ in range(10_000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower case, dashed, 36 characters
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_new_ids_do_not_repeat_and_use_every_random_bit() -> None:
    ids = [new_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    # the 74 random bits below the time: each is set in some ids and clear in others
    values = [uuid.UUID(i).int for i in ids[:2000]]
    fixed = (0xF000 << 64) | (0xC000 << 48)
    random_bits = ((1 << 80) - 1) & ~fixed
    either = 0
    for value in values:
        either |= value
    both = ~0
    for value in values:
        both &= value
    assert either & random_bits == random_bits
    assert both & random_bits == 0


def test_new_ids_begin_with_the_millisecond_they_were_made_so_they_sort_in_that_order() -> None:
    made = []
    for _ in range(5):
        before = time.time_ns() // 1_000_000
        made.append((before, new_id(), time.time_ns() // 1_000_000))
        time.sleep(0.002)
    for before, text, after in made:
        assert before <= uuid.UUID(text).int >> 80 <= after
    ids = [text for _, text, _ in made]
    assert sorted(ids) == ids  # (as text too: the time is the leading hex digits)


def test_codes_have_their_length_keep_leading_zeros_and_spread_evenly() -> None:
    codes = [new_digits(5) for _ in range(20_000)]
    assert all(len(code) == 5 and code.isdigit() for code in codes)
    assert 1_500 < sum(code.startswith("0") for code in codes) < 2_500  # a tenth of them: 2,000 expected
    counts = Counter(new_digits(1) for _ in range(10_000))
    assert sorted(counts) == list("0123456789")
    assert all(850 < n < 1_150 for n in counts.values())  # 1,000 each expected, 30 the standard deviation


def test_hex_tokens_are_upper_case_and_use_every_bit() -> None:
    tokens = [new_hex(16) for _ in range(2_000)]
    assert all(len(token) == 32 and token == token.upper() for token in tokens)
    values = [int(token, 16) for token in tokens]
    either, both = 0, (1 << 128) - 1
    for value in values:
        either |= value
        both &= value
    assert (either, both) == ((1 << 128) - 1, 0)
    assert len(set(tokens)) == len(tokens)
