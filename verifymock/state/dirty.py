"""What changed since the last commit, by record key: a commit writes those records and nothing else."""

from __future__ import annotations

Key = tuple[str, str]  # (kind, id)


class Dirty:
    """The keys of records changed since the last commit, in the order first changed (a new record is written
    after those created before it, which is the order a restore puts them back in). Kept only when a durable store
    will write them."""

    __slots__ = ("enabled", "keys")

    def __init__(self) -> None:
        self.enabled = False
        self.keys: dict[Key, None] = {}

    def __call__(self, kind: str, record_id: object) -> None:
        if self.enabled:
            self.keys[(kind, str(record_id))] = None

    def take(self) -> list[Key]:
        keys, self.keys = self.keys, {}
        return list(keys)
