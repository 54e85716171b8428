"""`--state redis://HOST:PORT/DB`: the engine's state in Redis (or Valkey), behind the store interface (store.py).

Every key sits under one prefix inside a hash tag, `{verifymock}` unless the URL's `prefix` query names another,
so a Redis Cluster keeps them in one slot and a Lua script may touch any of them:

    {P}:r:KIND:ID        a record: a hash of v (version), d (JSON data), s (creation seq), e (its index entries)
    {P}:k:KIND           a kind's record ids, scored by creation seq (scans)
    {P}:kinds            the kinds that have records
    {P}:i:NAME:VALUE     an index value's "KIND:ID" members, scored by their record's creation seq
    {P}:u:NAME:VALUE     the one "KIND:ID" holding a unique entry
    {P}:t                timers by number (zero-padded, so ties in due time sort by number): their JSON
    {P}:due              timer numbers scored by due time on the simulated clock
    {P}:inflight         timer numbers leased to a process, scored by the lease's end on Redis's own clock (ms)
    {P}:fence            each timer's fencing counter, bumped by every claim
    {P}:journal          a stream of journal entries, each under its own id (ID-1), trimmed to the journal's size
    {P}:feed             a stream, one entry per commit naming the keys it changed; its ids are {P}:feedseq's count
    {P}:meta             meta values as JSON (the clock, the signing key, the next ids, the layout's number)
    {P}:lease:NAME       a named lease: its holder's token, expiring on Redis's clock

One Lua script commits a unit of work: it checks every version the decision read, the consumed timer's fence and
the unique index entries, and only then writes, so a refused commit writes nothing. Timers are claimed by another
script on Redis's clock, never by keyspace notifications (they are fire-and-forget and arrive late).

The connection is made per event loop: redis.asyncio's connections belong to the loop that opened them, and the
engine reads the state at start-up in a loop of its own before the server's loop runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
import redis
import redis.asyncio as aioredis

from verifymock import __version__, jsonio
from verifymock.clock import Timer
from verifymock.errors import ConfigError
from verifymock.journal import Entry
from verifymock.state.store import Changes, Claimed, Conflict, Key, Loaded, Record

log = logging.getLogger("verifymock.state")

LAYOUT = 1  # the key layout this code writes; a store written in a newer one is refused
TIMEOUT_S = 10.0  # the longest one call to Redis may take
FEED_KEPT = 10_000  # commits the change feed remembers (about: the stream is trimmed lazily)
DEFAULT_PREFIX = "verifymock"
_CONFLICT = "CONFLICT "
_URL_FIX = "use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0"

# Checks first, then writes: a script that stops half-way through does not undo what it wrote.
_COMMIT = """
local p = ARGV[1]
local c = cjson.decode(ARGV[2])
local null = cjson.null
local function rec(kind, id) return p .. ":r:" .. kind .. ":" .. id end
local function refuse(message) return redis.error_reply("CONFLICT " .. message) end

if c.term ~= null and redis.call("GET", p .. ":lease:" .. c.term[1]) ~= c.term[2] then
  return refuse("the lease " .. c.term[1] .. " is no longer this process's")
end
if #ARGV > 2 and c.journal_size > 0 then
  local last = redis.call("XREVRANGE", p .. ":journal", "+", "-", "COUNT", 1)[1]
  if last and tonumber(string.match(last[1], "^%d+")) >= c.journal_first then
    return refuse("journal entry " .. c.journal_first .. " is not after the last one kept")
  end
end

for _, e in ipairs(c.expect) do
  local v = tonumber(redis.call("HGET", rec(e[1], e[2]), "v") or "0")
  if v ~= e[3] then
    return refuse(e[1] .. " " .. e[2] .. " is at version " .. v .. ", the decision read " .. e[3])
  end
end

local held = {}
local function entries_of(key)
  if held[key] == nil then held[key] = redis.call("HGET", key, "e") or "[]" end
  return held[key]
end
local freed, claimed = {}, {}
local function free(key, member)
  for _, entry in ipairs(cjson.decode(entries_of(key))) do
    if entry[3] == 1 then freed[p .. ":u:" .. entry[1] .. ":" .. entry[2]] = member end
  end
end
for _, x in ipairs(c.put) do
  if x[4] ~= null then free(rec(x[1], x[2]), x[1] .. ":" .. x[2]) end
end
for _, x in ipairs(c.delete) do free(rec(x[1], x[2]), x[1] .. ":" .. x[2]) end
for _, x in ipairs(c.put) do
  if x[4] ~= null then
    local member = x[1] .. ":" .. x[2]
    for _, entry in ipairs(cjson.decode(x[4])) do
      if entry[3] == 1 then
        local ukey = p .. ":u:" .. entry[1] .. ":" .. entry[2]
        local holder = claimed[ukey] or redis.call("GET", ukey)
        if holder and holder ~= member and freed[ukey] ~= holder then
          return refuse("the unique entry " .. entry[1] .. " " .. entry[2] .. " is held by " .. holder)
        end
        claimed[ukey] = member
      end
    end
  end
end
if c.consume ~= null then
  local m = c.consume[1]
  local fence = tonumber(redis.call("HGET", p .. ":fence", m) or "0")
  if redis.call("HEXISTS", p .. ":t", m) == 0 or fence ~= c.consume[2] then
    return refuse("timer " .. m .. " was claimed by another process after its lease ran out")
  end
end

local function unindex(key, member, text)
  for _, entry in ipairs(cjson.decode(text)) do
    redis.call("ZREM", p .. ":i:" .. entry[1] .. ":" .. entry[2], member)
    if entry[3] == 1 then
      local ukey = p .. ":u:" .. entry[1] .. ":" .. entry[2]
      if redis.call("GET", ukey) == member then redis.call("DEL", ukey) end
    end
  end
end
local function index(member, seq, text)
  for _, entry in ipairs(cjson.decode(text)) do
    redis.call("ZADD", p .. ":i:" .. entry[1] .. ":" .. entry[2], seq, member)
    if entry[3] == 1 then redis.call("SET", p .. ":u:" .. entry[1] .. ":" .. entry[2], member) end
  end
end
for _, x in ipairs(c.put) do
  local key, member, entries = rec(x[1], x[2]), x[1] .. ":" .. x[2], x[4]
  local seq = redis.call("HGET", key, "s")
  if seq then
    redis.call("HINCRBY", key, "v", 1)
    redis.call("HSET", key, "d", x[3])
    if entries ~= null and entries ~= entries_of(key) then
      unindex(key, member, entries_of(key))
      index(member, seq, entries)
      redis.call("HSET", key, "e", entries)
    end
  else
    seq = redis.call("INCR", p .. ":seq")
    if entries == null then entries = "[]" end
    redis.call("HSET", key, "v", 1, "d", x[3], "s", seq, "e", entries)
    redis.call("ZADD", p .. ":k:" .. x[1], seq, x[2])
    redis.call("SADD", p .. ":kinds", x[1])
    index(member, seq, entries)
  end
end
for _, x in ipairs(c.delete) do
  local key = rec(x[1], x[2])
  if redis.call("EXISTS", key) == 1 then
    unindex(key, x[1] .. ":" .. x[2], entries_of(key))
    redis.call("ZREM", p .. ":k:" .. x[1], x[2])
    redis.call("DEL", key)
  end
end

local function untime(m)
  redis.call("HDEL", p .. ":t", m)
  redis.call("ZREM", p .. ":due", m)
  redis.call("ZREM", p .. ":inflight", m)
  redis.call("HDEL", p .. ":fence", m)
end
if c.consume ~= null then untime(c.consume[1]) end
for _, m in ipairs(c.cancel) do untime(m) end
for _, t in ipairs(c.schedule) do
  redis.call("HSET", p .. ":t", t[1], t[3])
  redis.call("ZADD", p .. ":due", t[2], t[1])
  redis.call("ZREM", p .. ":inflight", t[1])
end
for _, kv in ipairs(c.meta) do redis.call("HSET", p .. ":meta", kv[1], kv[2]) end
if c.journal_size > 0 then
  for i = 3, #ARGV, 4 do
    redis.call(
      "XADD", p .. ":journal", "MAXLEN", c.journal_size, ARGV[i] .. "-1",
      "m", ARGV[i + 1], "q", ARGV[i + 2], "r", ARGV[i + 3]
    )
  end
end
if c.feed ~= null then
  local n = redis.call("INCR", p .. ":feedseq")
  redis.call("XADD", p .. ":feed", "MAXLEN", "~", c.feed_kept, n .. "-1", "k", c.feed)
  return n
end
return 0
"""

# Due timers nobody holds a live lease on, in due order (ties by number), each leased and its fence bumped.
_CLAIM = """
local p, now, limit, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call("TIME")
local real = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, offset = {}, 0
while #out < limit do
  local batch = redis.call("ZRANGEBYSCORE", p .. ":due", "-inf", now, "LIMIT", offset, 100)
  if #batch == 0 then break end
  offset = offset + #batch
  for _, m in ipairs(batch) do
    local until_ms = redis.call("ZSCORE", p .. ":inflight", m)
    if not until_ms or tonumber(until_ms) < real then
      local fence = redis.call("HINCRBY", p .. ":fence", m, 1)
      redis.call("ZADD", p .. ":inflight", real + lease_ms, m)
      out[#out + 1] = {redis.call("HGET", p .. ":t", m), fence}
      if #out >= limit then break end
    end
  end
end
return out
"""

_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""

_RENEW = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0
"""


def parse_url(spec: str) -> tuple[str, str]:
    """The connection URL (without our own `prefix` query) and the key prefix, hash tag included."""
    parts = urlsplit(spec)
    query = parse_qs(parts.query, keep_blank_values=True)
    name = query.pop("prefix", [DEFAULT_PREFIX])[-1]
    if not name or any(c in name for c in "{}"):
        raise ConfigError("--state", spec, "has an empty prefix or one with braces", "use e.g. ?prefix=qa1")
    url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    return url, "{" + name + "}"


class RedisStore:
    shared = True  # any number of processes, on any number of machines

    def __init__(self, spec: str) -> None:
        self.url, self.prefix = parse_url(spec)
        self.location = spec
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._start()

    # -- start-up, in plain blocking calls (before any event loop runs) --------------------------------------------

    def _start(self) -> None:
        """Check the server and the layout (a prefix written by a newer verifymock is refused)."""
        try:
            sync = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        except ValueError as exc:
            raise ConfigError("--state", self.location, f"is not a Redis URL ({exc})", _URL_FIX) from exc
        try:
            self._check_layout(sync)
        except redis.RedisError as exc:
            raise ConfigError(
                "--state", self.location, f"cannot be reached or used ({exc})", "start Redis there, or pass its URL"
            ) from exc
        finally:
            sync.close()

    def _check_layout(self, sync: redis.Redis) -> None:
        meta = sync.hgetall(f"{self.prefix}:meta")
        layout = int(json.loads(meta.get(b"layout", b"0")))
        if layout > LAYOUT:
            written_by = json.loads(meta.get(b"version", b'"?"'))
            raise ConfigError(
                "--state",
                self.location,
                f"was written by verifymock {written_by} (Redis layout {layout}); this is {__version__}, which "
                f"reads layout {LAYOUT}",
                "upgrade verifymock, or use another prefix (?prefix=NAME)",
            )
        sync.hset(f"{self.prefix}:meta", mapping={"layout": LAYOUT, "version": json.dumps(__version__)})

    def _client(self) -> Any:  # (redis-py types its answers as bytes or str by a flag: ours are bytes)
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [k for k in self._clients if k.is_closed()]:
                del self._clients[old]
            # (a server that stops answering fails the request that waits on it, rather than holding it forever)
            client = self._clients[loop] = aioredis.Redis.from_url(
                self.url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
        return client

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- reads -------------------------------------------------------------------------------------------------------

    async def load(self, journal_size: int) -> Loaded:
        r = self._client()
        kinds = sorted(k.decode() for k in await r.smembers(self._key("kinds")))
        records: list[Record] = []
        for kind in kinds:
            ids = [i.decode() for i in await r.zrange(self._key("k", kind), 0, -1)]
            for start in range(0, len(ids), 1000):
                found = await self.get_many([(kind, i) for i in ids[start : start + 1000]])
                records += found.values()
        records.sort(key=lambda record: record.seq)
        journal = await self._journal_tail(journal_size) if journal_size else []
        return Loaded(await self.meta(), records, await self.timers(), journal)

    async def get_many(self, keys: list[Key]) -> dict[Key, Record]:
        if not keys:
            return {}
        async with self._client().pipeline(transaction=False) as pipe:
            for kind, record_id in keys:
                pipe.hmget(self._key("r", kind, record_id), "v", "d", "s")
            rows = await pipe.execute()
        return {
            (kind, record_id): Record(kind, record_id, int(v), jsonio.loads(d), int(s))
            for (kind, record_id), (v, d, s) in zip(keys, rows, strict=True)
            if v is not None
        }

    async def scan(self, kind: str, *, after: int = 0, limit: int = 100) -> list[Record]:
        found = await self.get_many([(kind, i) for _, i in await self.ids(kind, after=after, limit=limit)])
        return sorted(found.values(), key=lambda record: record.seq)

    async def ids(self, kind: str, *, after: int = 0, limit: int = 100) -> list[tuple[int, str]]:
        found = await self._client().zrangebyscore(
            self._key("k", kind), f"({after}", "+inf", start=0, num=limit, withscores=True
        )
        return [(int(seq), record_id.decode()) for record_id, seq in found]

    async def index(self, name: str, value: str, *, limit: int = 100) -> list[str]:
        members = await self._client().zrevrange(self._key("i", name, value), 0, limit - 1)
        return [m.decode().partition(":")[2] for m in members]

    async def timers(self) -> list[Timer]:
        stored = await self._client().hgetall(self._key("t"))
        return sorted((Timer.from_data(orjson.loads(text)) for text in stored.values()), key=lambda t: (t.due, t.seq))

    async def get_timers(self, ids: list[str]) -> dict[str, Timer]:
        if not ids:
            return {}
        texts = await self._client().hmget(self._key("t"), [_member(int(i[1:])) for i in ids])
        return {i: Timer.from_data(orjson.loads(text)) for i, text in zip(ids, texts, strict=True) if text is not None}

    async def next_due(self) -> float | None:
        first = await self._client().zrange(self._key("due"), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def meta(self) -> dict[str, Any]:
        stored = await self._client().hgetall(self._key("meta"))
        return {k.decode(): json.loads(v) for k, v in stored.items()}

    async def journal(self, *, after: int = 0, limit: int = 100) -> list[Entry]:
        rows = await self._client().xrange(self._key("journal"), min=f"({after}-1", count=limit)
        return [_entry(fields) for _, fields in rows]

    async def _journal_tail(self, count: int) -> list[Entry]:
        newest = await self._client().xrevrange(self._key("journal"), count=count)
        return [_entry(fields) for _, fields in reversed(newest)]

    async def feed(self, after: int | None, *, limit: int = 1000) -> tuple[int, list[tuple[int, list[Key]]]]:
        r = self._client()
        if after is None:
            return int(await r.get(self._key("feedseq")) or 0), []
        found = await r.xrange(self._key("feed"), min=f"({after}-1", count=limit)
        rows = [
            (int(stream_id.split(b"-")[0]), [(kind, record_id) for kind, record_id in orjson.loads(fields[b"k"])])
            for stream_id, fields in found
        ]
        return (rows[-1][0] if rows else after), rows

    # -- writes ------------------------------------------------------------------------------------------------------

    async def commit(self, changes: Changes, journal_size: int) -> int:
        keys = changes.feed_keys()
        payload = {
            "expect": [[kind, record_id, version] for (kind, record_id), version in changes.expect.items()],
            "put": [
                [kind, record_id, put.text, None if put.indexes is None else _entries(put)]
                for (kind, record_id), put in changes.put.items()
            ],
            "delete": [list(key) for key in changes.delete],
            "schedule": [[_member(t.seq), repr(t.due), orjson.dumps(t.to_data()).decode()] for t in changes.schedule],
            "cancel": [_member(int(timer_id[1:])) for timer_id in changes.cancel],
            "consume": None if changes.consume is None else [_member(changes.consume.timer.seq), changes.consume.fence],
            "meta": [[k, json.dumps(v)] for k, v in changes.meta.items()],
            "journal_size": journal_size,
            "feed": orjson.dumps(keys).decode() if keys else None,
            "feed_kept": FEED_KEPT,
            "term": None if changes.term is None else list(changes.term),
            "journal_first": changes.journal[0].id if changes.journal else 0,
        }
        journal: list[str | bytes] = []
        for e in changes.journal:
            journal += [str(e.id), _entry_meta(e), e.request_raw, e.response_raw]
        try:
            number = await self._client().eval(
                _COMMIT, 1, self._key("meta"), self.prefix, orjson.dumps(payload), *journal
            )
        except redis.ResponseError as exc:
            if str(exc).startswith(_CONFLICT):
                raise Conflict(str(exc)[len(_CONFLICT) :]) from None
            raise
        return int(number)

    async def claim_due(self, now: float, *, limit: int, lease_s: float) -> list[Claimed]:
        rows = await self._client().eval(
            _CLAIM, 1, self._key("due"), self.prefix, repr(now), limit, int(lease_s * 1000)
        )
        return [Claimed(Timer.from_data(orjson.loads(text)), int(fence)) for text, fence in rows]

    async def acquire(self, name: str, ttl_s: float) -> str | None:
        token = secrets.token_hex(8)
        taken = await self._client().set(self._key("lease", name), token, nx=True, px=max(1, int(ttl_s * 1000)))
        return token if taken else None

    async def renew(self, name: str, token: str, ttl_s: float) -> bool:
        return bool(await self._client().eval(_RENEW, 1, self._key("lease", name), token, max(1, int(ttl_s * 1000))))

    async def release(self, name: str, token: str) -> bool:
        return bool(await self._client().eval(_RELEASE, 1, self._key("lease", name), token))

    async def clear(self) -> None:
        """Everything under the prefix but the leases, the layout and the counters (cursors stay valid)."""
        r = self._client()
        kept = {self._key(k).encode() for k in ("seq", "feedseq", "meta")}
        leases = self._key("lease:").encode()
        async for key in r.scan_iter(match=f"{_glob(self.prefix)}:*", count=1000):
            if key not in kept and not key.startswith(leases):
                await r.unlink(key)
        meta = self._key("meta")
        await r.hdel(meta, *[k for k in await r.hkeys(meta) if k not in (b"layout", b"version")] or [b"-"])

    async def close(self) -> None:
        await self._client().aclose()
        self._clients.clear()


def _member(seq: int) -> str:
    return f"{seq:015d}"


def _glob(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _entries(put: Any) -> str:
    return orjson.dumps([(e.name, e.value, int(e.unique)) for e in put.indexes]).decode()


def _entry_meta(e: Entry) -> str:
    fields = [e.id, e.at, e.method, e.path, e.query, e.operation_id, e.vendor, e.status, e.request_headers]
    return orjson.dumps([*fields, e.duration_ms, e.touched, e.dropped]).decode()


def _entry(fields: dict[bytes, bytes]) -> Entry:
    m = orjson.loads(fields[b"m"])
    headers = tuple((str(k), str(v)) for k, v in m[8])
    return Entry(
        m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7],
        headers, fields[b"q"], fields[b"r"], m[9], tuple(m[10]), m[11],
    )  # fmt: skip
