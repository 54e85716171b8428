"""Identifiers and codes the mock makes: version-4 UUIDs in form (as the vendors' own are), hex reference ids and
numeric verification codes.

A UUID's first 48 bits are the time it was made, in milliseconds since the epoch, as in a version-7 UUID; the other
74 are random. So ids sort in the order they were made (to the millisecond), and a store's b-tree keyed by them
grows at one end: with random ids, each record created dirtied a leaf page of its own anywhere in the SQLite file's
index of records, and updating or deleting one read such a page back. Telnyx's ids are random version-4 UUIDs, and
the version nibble still says 4: a client sees the same form, only in creation order.

They come from a generator seeded once from the OS, not from the OS each time: `uuid.uuid4()` asks the kernel for
16 bytes and builds a `UUID` object, about 3.5% of a call verification's cost under load, and each `secrets` draw is
a system call too. Nothing a mock makes needs to be unguessable (its codes are shown to anyone who asks the handset
API); they need only to be unique and well-formed, and codes spread evenly.
"""

from __future__ import annotations

import os
import random
import time

_random = random.Random(os.urandom(32))
_VERSION_4 = 0x4000 << 64  # the version nibble (4)
_VARIANT = 0x8000 << 48  # the RFC 4122 variant bits (10)
_KEEP = ~((0xF000 << 64) | (0xC000 << 48))  # every bit but those


def new_id() -> str:
    """A UUID in canonical form, made now, e.g. 019ae3c4-7b21-4c7e-b1a0-5e6f7a8b9c0d."""
    made = time.time_ns() // 1_000_000
    h = "%032x" % ((made << 80) | (_random.getrandbits(80) & _KEEP) | _VERSION_4 | _VARIANT)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_hex(nbytes: int) -> str:
    """`nbytes` random bytes as upper-case hex, e.g. TeleSign's 32-character reference ids."""
    return f"{_random.getrandbits(8 * nbytes):0{2 * nbytes}X}"


def new_digits(count: int) -> str:
    """A code of `count` decimal digits, every value equally likely (leading zeros kept)."""
    return str(_random.randrange(10**count)).zfill(count)
