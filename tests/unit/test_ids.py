"""Record identifiers: canonical random version-4 UUIDs, as the vendors' own (the specs declare format: uuid)."""

from __future__ import annotations

import uuid

from verifymock.ids import new_id


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
    # the 122 random bits: each is set in some ids and clear in others
    values = [uuid.UUID(i).int for i in ids[:2000]]
    fixed = (0xF000 << 64) | (0xC000 << 48)
    either = 0
    for value in values:
        either |= value
    both = ~0
    for value in values:
        both &= value
    assert (either & ~fixed) == (((1 << 128) - 1) & ~fixed)
    assert both & ~fixed == 0
