"""The engine's root object: configuration, the loaded specs and the state every handler reads through it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from verifymock.calls import Phones
from verifymock.clock import Clock, Timer
from verifymock.config import Config
from verifymock.coverage import MAX_TEST_NAME, TEST_HEADER, Coverage
from verifymock.errors import ApiError, ConfigError, ConfigErrors, Problem
from verifymock.faults import Faults, delay, error_for
from verifymock.journal import Journal
from verifymock.paths import bundled
from verifymock.registry import TIMERS
from verifymock.resolver import Resolution, resolve_spec
from verifymock.scenarios import HEADER as SCENARIO_HEADER
from verifymock.scenarios import Scenario, Scenarios
from verifymock.scenarios import load as load_scenarios
from verifymock.selfcheck import ResponseChecker
from verifymock.specs import ROUTED_SEPARATOR, Operation, Spec, load_spec, spec_files, template_regex
from verifymock.state.dirty import Dirty
from verifymock.state.records import INDEXED, KINDS, Records
from verifymock.state.store import DAMAGED, Changes, Conflict, Key, Loaded, Store, open_store
from verifymock.state.term import NAME as TERM_NAME
from verifymock.state.term import TTL_S as TERM_TTL_S
from verifymock.state.term import Term, Unavailable, keep
from verifymock.timeline import Timelines
from verifymock.ui import Listeners
from verifymock.vendors.cm import CM
from verifymock.vendors.telesign import TeleSign
from verifymock.vendors.telnyx import Telnyx
from verifymock.vendors.tollfree import FINAL as TOLLFREE_FINAL
from verifymock.vendors.tollfree import TollFree
from verifymock.webhooks import TelnyxSigner, Webhooks

log = logging.getLogger("verifymock")

PERSIST_DELAY = 0.05  # seconds: changes made outside requests are committed together after this
# With a store, finished records beyond the newest HOT_FINISHED of each kind live on disk only, read back when asked.
HOT_FINISHED = 1000
EVICTED = ("call", "message", "verification", "transaction")
# Set (to anything) to check, after every commit, that the store holds exactly the state: the tests' net for a change
# that was made without being marked. It reads the whole store each time: for tests only.
AUDIT_VARIABLE = "VERIFYMOCK_AUDIT_STATE"
# With a store shared by several processes: how often one that is idle reads what the others committed (so that
# its clock wakes for their timers), and how long an advance's lease on the clock lasts between renewals.
FOLLOW_S = 0.25
ADVANCE_LEASE_S = 5.0
LIVE_LEASE_S = 5.0  # a process that stops renewing its liveness this long is taken for dead: others take its rounds
FEED_PAGE = 1000  # commits read from the feed at a time

_current: ContextVar[Mock] = ContextVar("verifymock_engine")

# When a record's work is over, so that retention may let go of it.
FINISHED: dict[str, Callable[[Any], bool]] = {
    "verification": lambda v: v.status != "pending",
    "transaction": lambda t: t.status_code != 103,
    "tollfree": lambda r: r.status in TOLLFREE_FINAL,
}


@dataclass
class RequestContext:
    """What the engine needs to know of the request being served."""

    headers: dict[str, str]
    touched: list[str]
    raw_body: bytes = b""
    principal: str | None = None  # who the credentials name (a TeleSign customer id, ...)
    scenario: str | None = None  # the scenario the request ran under, for the log
    line: str | None = None  # "METHOD /path", which coverage names as the request that reached an outcome
    told: list[str] = field(default_factory=list)  # the stories this request is in, which its answer ends
    fault: str | None = None  # a connection fault the gate carries out: close or reset


_request: ContextVar[RequestContext | None] = ContextVar("verifymock_request", default=None)


def _cancel(clock: Clock, record: Any) -> None:
    """A dropped record's timers go with it: a call's, or the one timer a verification or review keeps."""
    for timer_id in [*getattr(record, "timers", ()), getattr(record, "timer", None)]:
        clock.cancel(timer_id)


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _requested() -> tuple[str | None, str | None]:
    """The test an `X-Verifymock-Test` header names on the request being served, and its "METHOD /path"."""
    context = _request.get()
    if context is None:
        return None, None
    test = context.headers.get(TEST_HEADER)
    return (test[:MAX_TEST_NAME] if test else None), context.line


def engine() -> Mock:
    """The mock serving the current request (handlers call this instead of keeping globals)."""
    return _current.get()


@dataclass
class Mounted:
    """A spec as served: how its operations resolve and how its responses are checked."""

    spec: Spec
    resolutions: dict[str, Resolution]
    checker: ResponseChecker
    user: bool

    @property
    def vendor(self) -> str:
        return self.spec.vendor


def mount(config: Config, paths: list[Path], fresh: bool = False) -> tuple[list[Mounted], list[ConfigError]]:
    """Load and resolve each spec file; every problem is collected rather than raised one by one."""
    errors: list[ConfigError] = []
    mounted: list[Mounted] = []
    bundled_specs = bundled("specs").resolve()
    for path in paths:
        try:
            spec = load_spec(path)
            resolutions = resolve_spec(spec, config.handler_dirs(), fresh=fresh)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            errors.append(exc)
            continue
        user = path.resolve().parent != bundled_specs
        mounted.append(Mounted(spec, resolutions, ResponseChecker(spec), user))
    # a user's spec is routed first, so it wins where it overlaps a bundled one
    return sorted(mounted, key=lambda m: not m.user), errors


class Mock:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.journal = Journal(config.journal_size, config.journal_bytes)
        self.clock = Clock(config.clock)
        self.scenarios = Scenarios(load_scenarios(config.scenario_dirs()))
        self.phones = Phones(self.clock)
        self.phones.mock = self
        self.clock.fire = self._fire
        self.signer = TelnyxSigner(config.telnyx_signing_key)
        self.webhooks = Webhooks(self.clock, self.signer, config.callback_hosts())
        self.clock.settle = self.webhooks.settle
        self.telnyx = Telnyx(self)
        self.telesign = TeleSign(self)
        self.cm = CM(self)
        self.tollfree = TollFree(self)
        self.faults = Faults()
        self.coverage = Coverage(lambda: self.clock.now_datetime().isoformat(), _requested)
        self.webhooks.reach = self.coverage.reach
        self.timelines = Timelines(self.clock.now)
        self.webhooks.tell = self.phones.tell = self.timelines.tell
        self.webhooks.telesign_key = self.telesign.customers.get
        self.dirty = Dirty()  # enabled when the store is durable
        for part in (self.phones, self.webhooks, self.scenarios, self.faults, self.coverage, self.timelines):
            part.dirty = self.dirty
        self.records = Records(self)
        self._finished: dict[str, deque[str]] = {kind: deque() for kind in FINISHED}
        # how many finished records of each kind are kept on disk only (with a store): retention drops those first.
        # Their ids are not kept in memory: the store is asked (by key, index or scan) for what memory lacks.
        self._on_disk: dict[str, int] = dict.fromkeys((*EVICTED, *FINISHED), 0)
        self._disk_cursor: dict[str, int] = dict.fromkeys(EVICTED, 0)  # where retention's scan of the file goes on
        self.mounted: list[Mounted] = self._load(config)
        self._by_prefix = sorted(self.mounted, key=lambda m: len(m.spec.prefix), reverse=True)
        self.concrete_paths = self._concrete_paths(self.mounted)
        # None: memory, the engine's dicts are the state
        self.store: Store | None = open_store(config.state, worker=config.worker)
        self.location = self.store.location if self.store else "memory"
        self.versions: dict[Key, int] = {}  # each stored record's version, which its next commit must find
        self._dirty = False
        self._commit_pending = False
        self._unwritten = Changes()  # a commit that failed, written with the next
        self._group: asyncio.Task[bool] | None = None  # the commit the requests of this loop turn wait for
        self._tasks: set[asyncio.Task[bool]] = set()
        self._committing = asyncio.Lock()  # one commit at a time
        self._meta_written: dict[str, Any] = {}
        self.audit = bool(os.environ.get(AUDIT_VARIABLE))
        self.restored = False
        self.changes = Listeners()
        self.clock.persist = self.webhooks.persist = self.persist
        # a store shared with other processes: one decides at a time (the term), each first reading what the
        # others committed since it last looked, from the change feed's cursor
        self.term: Term | None = Term(self.store, self.catch_up) if self.store and self.store.shared else None
        self._cursor = 0
        self._own: set[int] = set()  # feed numbers of this process's own commits, which it need not read back
        self._following: asyncio.Lock | None = None
        self._reset_mark = ""  # moved by each reset, which the other processes see in the meta
        self.refused = 0  # commits refused on a shared store: the requests they held are served again (gate)
        if self.term is not None:
            self.clock.unit = self.unit
            self.webhooks.owner = secrets.token_hex(6)
        if self.store is not None:
            self.journal.unsaved = []
            self.dirty.enabled = self.clock.tracking = True
            self.webhooks.written = self.commit_soon
            try:
                self.restored = asyncio.run(self._restore(self.store))
            except ConfigError:
                raise
            except Exception as exc:  # a damaged file: whatever sqlite or the decoder says, one line names it
                raise ConfigError(
                    "--state",
                    self.location,
                    f"cannot be read ({type(exc).__name__}: {exc})",
                    DAMAGED,
                ) from exc

    # -- state -----------------------------------------------------------------------------------------------------

    def vendors(self) -> tuple[Telnyx, TeleSign, CM, TollFree]:
        return self.telnyx, self.telesign, self.cm, self.tollfree

    def trim(self) -> None:
        """Keep at most `retain` of each kind of record by letting go of finished work, the oldest finished first
        (with any timer it still had), so a long-running mock under load holds bounded memory. Work under way (a live
        call, a pending verification, a review or a delivery not over) is never dropped, however many there are;
        profiles and templates, which people create, stay. With a store, finished records beyond the newest
        HOT_FINISHED of each kind then leave memory and stay on disk. Those finished before any record in memory,
        so retention drops them first, at the next commit (`_trim_disk`)."""
        limit, on_disk, phones = self.config.retain, self._on_disk, self.phones
        self.timelines.trim(limit)
        while not on_disk["call"] and len(phones.by_id) > limit and (call := phones.drop_oldest_ended()) is not None:
            _cancel(self.clock, call)
        while not on_disk["message"] and len(phones.messages) > limit:
            phones.drop_oldest_message()
        webhooks = self.webhooks
        while len(webhooks.by_id) > limit and webhooks.done:
            delivery = webhooks.by_id.get(webhooks.done.popleft())
            if delivery is not None:
                webhooks.drop(delivery)
        for kind, records in self._retained():
            finished = self._finished[kind]
            while not on_disk[kind] and len(records) > limit and finished:
                record_id = finished.popleft()
                record = records.get(record_id)
                if record is not None and FINISHED[kind](record):
                    _cancel(self.clock, records.pop(record_id))
                    self.dirty(kind, record_id)
        if self.store is not None and self.term is None:  # (shared: every process holds what the others wrote)
            self._evict()

    async def _trim_disk(self, store: Store) -> None:
        """Retention's share of the records kept on disk only: the oldest of each kind beyond `retain` (counting
        those in memory) are marked for the commit to delete. They are found by scanning the file in creation
        order from where the last scan stopped, passing what memory holds."""
        for kind in EVICTED:
            excess = min(self._on_disk[kind], self.records.count(kind) + self._on_disk[kind] - self.config.retain)
            restarted = False
            while excess > 0:
                page = await store.ids(kind, after=self._disk_cursor[kind], limit=max(excess, 100))
                if not page:
                    if restarted:  # (the count is off: nothing more to find)
                        break
                    self._disk_cursor[kind], restarted = 0, True  # some were evicted behind the cursor
                    continue
                for seq, record_id in page:
                    self._disk_cursor[kind] = seq
                    if self._in_memory(kind, record_id):
                        continue
                    self.dirty(kind, record_id)
                    self._on_disk[kind] -= 1
                    excess -= 1
                    if not excess:
                        break

    def _in_memory(self, kind: str, record_id: str) -> bool:
        """Held in memory, or changed there since the last commit (a deletion on its way)."""
        return self.records.held(kind, record_id) or (kind, record_id) in self.dirty.keys

    def _evict(self) -> None:
        """Finished records beyond the newest HOT_FINISHED of each kind leave memory, the oldest finished first, once
        their last change is written; they stay on disk, and `fetch` reads one back when a request asks for it. The
        timers a finished record still has would find nothing to do, and are cancelled."""
        dirty, phones = self.dirty.keys, self.phones
        while len(phones.ended) > HOT_FINISHED:
            call = phones.by_id.get(phones.ended[0])
            if call is None or call.live:  # dropped already
                phones.ended.popleft()
                continue
            if ("call", call.id) in dirty:
                break
            phones.ended.popleft()
            del phones.by_id[call.id]
            self._to_disk("call", call.id)
        while len(phones.messages) > HOT_FINISHED and ("message", phones.messages[0].id) not in dirty:
            message = phones.messages.popleft()
            del phones.messages_by_id[message.id]
            self._to_disk("message", message.id)
        for kind, records in self._retained()[:2]:  # verifications and transactions (toll-free requests are few)
            finished = self._finished[kind]
            while len(finished) > HOT_FINISHED:
                record = records.get(finished[0])
                if record is None or not FINISHED[kind](record):
                    finished.popleft()
                    continue
                if (kind, finished[0]) in dirty or self._in_use(record):
                    break
                record_id = finished.popleft()
                _cancel(self.clock, records.pop(record_id))
                self._to_disk(kind, record_id)

    def _in_use(self, record: Any) -> bool:
        """A verification whose call is still live: its flow may yet read it."""
        call = self.phones.by_id.get(getattr(record, "call_id", None) or "")
        return call is not None and call.live

    def _to_disk(self, kind: str, record_id: str) -> None:
        self.versions.pop((kind, record_id), None)
        self._on_disk[kind] += 1

    async def fetch(self, kind: str, *record_ids: str) -> None:
        """Bring records that live on disk only back into memory, for a request that reads or changes them; an id
        that is neither there nor on disk is left for the caller to answer as not found."""
        if self.store is None or not self._on_disk.get(kind):
            return
        wanted = [record_id for record_id in record_ids if not self._in_memory(kind, record_id)]
        found = await self.store.get_many([(kind, record_id) for record_id in wanted]) if wanted else {}
        for record_id in wanted:
            record = found.get((kind, record_id))
            if record is None or self._in_memory(kind, record_id):  # (absent, or read back meanwhile)
                continue
            self.records.adopt(kind, record_id, record.data)
            self.versions[(kind, record_id)] = record.version
            self._on_disk[kind] -= 1

    async def fetch_by(self, kind: str, index: str, value: str) -> None:
        """`fetch` every record of a kind under an index value (a phone number's verifications, ...)."""
        if self.store is not None and self._on_disk[kind]:
            await self.fetch(kind, *await self.store.index(index, value, limit=self.config.retain))

    async def on_disk(self, kind: str, index: str | None = None, value: str = "") -> list[Any]:
        """The records of a kind that live on disk only (those under an index value, if given), oldest first, read
        for a view without keeping them in memory."""
        if self.store is None or not self._on_disk.get(kind):
            return []
        if index is not None:
            ids = await self.store.index(index, value, limit=self.config.retain)
            ids = [i for i in reversed(ids) if not self._in_memory(kind, i)]
            found = await self.store.get_many([(kind, i) for i in ids])
            return [self.records.decode(kind, found[(kind, i)].data) for i in ids if (kind, i) in found]
        records, after = [], 0
        while page := await self.store.scan(kind, after=after, limit=1000):
            records += [self.records.decode(kind, r.data) for r in page if not self._in_memory(kind, r.id)]
            after = page[-1].seq
        return records

    def _retained(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        return (
            ("verification", self.telnyx.verifications),
            ("transaction", self.telesign.transactions),
            ("tollfree", self.tollfree.requests),
        )

    @staticmethod
    def is_finished(kind: str, record: Any) -> bool:
        return FINISHED[kind](record)

    def finished(self, kind: str, record_id: str) -> None:
        """A record's work is over: retention may let go of it from now on, oldest finished first."""
        self._finished[kind].append(record_id)

    def _fire(self, timer: Timer) -> None:
        """Run a timer that fell due: its kind names the function."""
        known = TIMERS.get(timer.kind)
        if known is None:  # written by another version of verifymock: it cannot be run, and is dropped
            log.error("timer %s is of kind %r, which this version does not know: dropped", timer.id, timer.kind)
            return
        function, record = known
        self.dirty(record, timer.key)  # what it changes in its own record is written with the next commit
        function(self, timer)

    def changed(self) -> None:
        """Something outside the records may have changed (the clock, the next ids): the next commit writes them."""
        self._dirty = True

    async def commit(self) -> bool:
        """Write what changed to a durable store: the records marked, the timers set and gone, new journal entries
        and the meta values that moved. False if that failed (a full disk, a file made read-only): logged, kept to
        be written at the next commit, and the request it was for is not acknowledged."""
        if self.store is None:
            return True
        try:
            if self.term is not None and not self.term.units:  # (timers ran or webhooks were attempted)
                async with self.unit():
                    await self._write(self.store)
            else:
                await self._write(self.store)
        except Exception:  # the cause is loud in the log; the answer says only that it could not be kept
            log.exception("saving state to %s failed", self.location)
            return False
        return True

    async def commit_soon(self) -> bool:
        """`commit`, shared by every request that asks in the same turn of the event loop: one transaction for all
        of them (a group commit), each answered once it is written. False if it could not be written."""
        if self.store is None:
            return True
        if self._group is None:  # the group's commit starts at the next turn of the loop, with what all asked for
            self._group = self._background(self._commit_group())
        return bool(await asyncio.shield(self._group))

    async def _commit_group(self) -> bool:
        self._group = None  # from here on, a request that asks is in the next group
        return await self.commit()

    def _background(self, work: Coroutine[Any, Any, bool]) -> asyncio.Task[bool]:
        """A commit under way, held until it is done (the loop keeps only weak references to tasks)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _changes(self, reindex: bool) -> Changes:
        """What changed since the last commit, as one unit of work: each record under the version last written
        (with `reindex`, every record's index entries too, fixed ones included)."""
        changes = Changes()
        for key in self.dirty.take():
            kind, record_id = key
            version = self.versions.get(key, 0)
            put = self.records.put(kind, record_id, stored=version > 0 and not reindex)
            if put is not None:
                changes.put[key] = put
                changes.expect[key] = version
            else:  # gone from memory: dropped, or (on disk only) dropped by retention
                changes.delete.add(key)
                if key in self.versions:
                    changes.expect[key] = self.versions[key]
        changes.schedule, changes.cancel = self.clock.take_changes()
        changes.journal = self.journal.take_unsaved()
        if self._dirty:  # the meta values that moved (the clock's next timer number, mostly)
            meta = self._meta()
            changes.meta = {k: v for k, v in meta.items() if self._meta_written.get(k) != v}
        return changes

    async def _write(self, store: Store, reindex: bool = False) -> None:
        """One commit of what changed. A failed one is kept and merged into the next, so nothing is lost; the
        request it was for is answered 503. One at a time, and what changed is taken only once the commit before
        is over: each expects the versions the one before it wrote (a record changed by two requests in a row,
        taken while the first commit was under way, would expect the version that commit replaced)."""
        async with self._committing:
            await self._trim_disk(store)
            changes, self._unwritten = self._unwritten, Changes()
            if changes:  # (a failed commit's, which goes first)
                changes.merge(self._changes(reindex))
            else:
                changes = self._changes(reindex)
            self._dirty = False
            if changes:
                try:
                    await self._commit(store, changes)
                except Conflict:
                    if self.term is None:
                        self._unwritten = changes
                    raise  # (shared: what was decided is thrown away with the state it was decided on)
                except Exception:
                    self._unwritten = changes
                    raise
                self._meta_written.update(changes.meta)
            if self.audit:
                await self._audit(store)

    async def _commit(self, store: Store, changes: Changes) -> None:
        if self.term is not None:
            await self._commit_shared(store, changes)
            return
        try:
            await store.commit(changes, self.config.journal_size)
        except Conflict as conflict:
            await self._overwrite(store, changes, conflict)
        for key in changes.put:
            self.versions[key] = changes.expect[key] + 1
        for key in changes.delete:
            self.versions.pop(key, None)

    async def _commit_shared(self, store: Store, changes: Changes) -> None:
        """Under the term, whose holder is the only one deciding: a conflict means this process lost the term
        while it decided (it stalled past its lease). What it decided is thrown away, it reads the whole state
        again, and the requests of that commit are served again under a new term (the gate), up to its ATTEMPTS."""
        assert self.term is not None
        # (a commit that somehow runs after the term was given back is refused, never written unchecked)
        changes.term = self.term.held or (TERM_NAME, "")
        try:
            number = await store.commit(changes, self.config.journal_size)
        except Conflict as conflict:
            log.warning("state commit refused (%s): this process reads the state again", conflict)
            self.refused += 1
            await self._reload(store)
            raise
        if number:
            self._own.add(number)
        for key in changes.put:
            self.versions[key] = changes.expect[key] + 1
        for key in changes.delete:
            self.versions.pop(key, None)

    # -- several processes ---------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        """A unit of work on a shared store: this process holds the term, caught up with the others, and what the
        unit changed is committed before the term can pass on. Without a shared store, nothing to do."""
        if self.term is None:
            yield
            return
        await self.term.enter()
        try:
            yield
            self.changed()
            await self.commit_soon()
        finally:
            self.term.leave()

    async def enter(self) -> bool:
        """Start a request's unit of work; False if the shared store cannot be reached (nothing can be kept)."""
        if self.term is not None:
            try:
                await self.term.enter()
            except Unavailable:
                return False
        return True

    def leave(self) -> None:
        if self.term is not None:
            self.term.leave()

    async def catch_up(self) -> None:
        """Read what other processes committed since this one last looked, and hold it: the records they put or
        deleted, their timers, the meta values they moved, their journal entries. A feed that no longer reaches
        back to the cursor (or a reset) means reading everything again."""
        assert self.store is not None
        store = self.store
        if self._following is None:
            self._following = asyncio.Lock()
        # (never while this process's own commit is under way: its rows would be read as another's)
        async with self._following, self._committing:
            while True:
                cursor, rows = await store.feed(self._cursor, limit=FEED_PAGE)
                if not rows:
                    return
                keys: dict[Key, None] = {}
                for number, changed in rows:
                    if number in self._own:
                        self._own.discard(number)
                    else:
                        keys.update(dict.fromkeys(changed))
                if rows[0][0] != self._cursor + 1 or (keys and await self._follow(store, list(keys))):
                    await self._reload(store)  # (it moves the cursor to the feed's end)
                    self.changes.notify()
                    return
                self._cursor = cursor
                if keys:
                    self.changes.notify()  # the web page's stream: a change made through another process
                if len(rows) < FEED_PAGE:
                    return

    async def _follow(self, store: Store, keys: list[Key]) -> bool:
        """Hold what the store holds for these keys; True if the whole state must be read again (a reset)."""
        records = [key for key in keys if key[0] in KINDS]  # (a kind another version writes is not this one's)
        found = await store.get_many(records) if records else {}
        for key in records:
            record = found.get(key)
            if record is None:
                if self.versions.pop(key, None) is not None or self._in_memory(*key):
                    self.records.replace(*key, None)
            elif self.versions.get(key) != record.version:
                self.records.replace(*key, record.data)
                self.versions[key] = record.version
        timer_ids = [record_id for kind, record_id in keys if kind == "timer"]
        if timer_ids:
            timers = await store.get_timers(timer_ids)
            for timer_id in timer_ids:
                if timer_id in timers:
                    self.clock.adopt(timers[timer_id])
                else:
                    self.clock.forget(timer_id)
        if any(kind == "meta" for kind, _ in keys):
            meta = await store.meta()
            if meta.get("reset") != self._meta_written.get("reset"):
                return True
            self._use_meta(meta)
        if any(kind == "journal" for kind, _ in keys) and self.config.journal_size:
            entries = await store.journal(after=self.journal.last_id, limit=self.config.journal_size)
            if entries:
                self.journal.restore(entries)
        return False

    def _use_meta(self, meta: dict[str, Any]) -> None:
        if "clock" in meta:
            self.clock.follow(meta["clock"])
        if self.signer.generated and "signer" in meta:  # one key signs for every process
            self.signer.use_seed(meta["signer"])
        self.webhooks.continue_from(int(meta.get("webhook_ids", 1)))
        self.faults.continue_from(max(int(meta.get("fault_ids", 1)), self.faults.next_id()))
        self.coverage.test = meta.get("test", self.coverage.test)
        self._meta_written.update(meta)
        self._reset_mark = str(meta.get("reset", ""))

    async def _reload(self, store: Store) -> None:
        """Throw away what this process holds and read the whole state again."""
        self._forget_everything()
        self._cursor, _ = await store.feed(None)
        self._own.clear()
        await self._adopt(await store.load(self.config.journal_size))

    async def follow(self) -> None:
        """While the server runs with a shared store: say this process lives, read what the others commit while
        idle (so that this process's clock wakes for their timers too), and take over webhook rounds left under way
        by a process that died."""
        assert self.term is not None and self.store is not None
        store, me = self.store, f"process:{self.webhooks.owner}"
        token = await store.acquire(me, LIVE_LEASE_S)
        beat = 0
        while True:
            try:
                await self._take_over_rounds()
                await asyncio.sleep(FOLLOW_S)
                beat += 1
                if token is None or (beat % 4 == 0 and not await store.renew(me, token, LIVE_LEASE_S)):
                    token = await store.acquire(me, LIVE_LEASE_S)
                if self.term.token is None and not self.term.units:
                    await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the other processes failed")

    async def _take_over_rounds(self) -> None:
        orphans = [d for d in self.webhooks.by_id.values() if d.in_flight and d.owner != self.webhooks.owner]
        gone = [d for d in orphans if not await self._lives(d.owner)]
        if not gone:
            return
        async with self.unit():  # caught up: another process may have taken them first
            for delivery in gone:
                if (
                    delivery.in_flight
                    and delivery.owner != self.webhooks.owner
                    and not await self._lives(delivery.owner)
                ):
                    log.info(
                        "webhook %s: its round was under way in a process that stopped; attempted again", delivery.id
                    )
                    self.webhooks.start_round(delivery)

    async def _lives(self, owner: str) -> bool:
        """Whether the process that started a round still renews its liveness lease."""
        assert self.store is not None
        if not owner:
            return False
        probe = await self.store.acquire(f"process:{owner}", 0.001)
        if probe is None:
            return True
        await self.store.release(f"process:{owner}", probe)
        return False

    async def advance(self, seconds: float) -> int:
        """Move the clock (`Clock.advance`); with a shared store, one advance at a time across every process."""
        if self.term is None or self.store is None:
            return await self.clock.advance(seconds)
        token = await self.store.acquire("advance", ADVANCE_LEASE_S)
        if token is None:
            raise ApiError(
                Problem.CONFLICT,
                "The clock is already being advanced; wait for that advance to answer (if the process advancing it "
                f"died, its hold on the clock runs out within {ADVANCE_LEASE_S:g} s).",
            )
        renewing = asyncio.get_running_loop().create_task(keep(self.store, "advance", token, ADVANCE_LEASE_S))
        try:
            return await self.clock.advance(seconds)
        finally:
            renewing.cancel()
            await self.store.release("advance", token)

    async def _overwrite(self, store: Store, changes: Changes, conflict: Conflict) -> None:
        """This process is the file's only writer (it holds its lock), so what it holds is the state: a version
        that moved under it, or a unique index entry its own rules let two records have, is a bug. It is logged,
        and the engine's records are written over the file's (without the uniqueness, if that was what failed),
        so that one bug never stops every later commit."""
        log.error("state commit conflict (%s): the engine's records are written over the file's", conflict)
        found = await store.get_many(list(changes.expect))
        changes.expect = {key: found[key].version if key in found else 0 for key in changes.expect}
        changes.delete = {key for key in changes.delete if key in found}
        try:
            await store.commit(changes, self.config.journal_size)
        except Conflict:
            for put in changes.put.values():
                if put.indexes:
                    put.indexes = tuple(entry._replace(unique=False) for entry in put.indexes)
            await store.commit(changes, self.config.journal_size)

    def _meta(self) -> dict[str, Any]:
        return {
            "clock": self.clock.export(),
            "signer": self.signer.seed,
            "webhook_ids": self.webhooks.next_id(),
            "fault_ids": self.faults.next_id(),
            "indexed": INDEXED,
            "test": self.coverage.test,
            **({"reset": self._reset_mark} if self.term is not None else {}),
        }

    async def _audit(self, store: Store) -> None:
        """The store must hold exactly what the engine holds, at the versions it expects (see AUDIT_VARIABLE)."""
        held = dict(self.records.items())
        loaded = await store.load(0)
        on_disk = {(r.kind, r.id) for r in loaded.records if r.kind in EVICTED and (r.kind, r.id) not in held}
        stored = {(r.kind, r.id): r.data for r in loaded.records if (r.kind, r.id) not in on_disk}
        wrong = sorted(key for key in held.keys() | stored.keys() if held.get(key) != stored.get(key))
        if wrong:
            raise AssertionError(f"state audit: the store differs from the engine for {wrong[:5]}")
        counted = {kind: sum(1 for k, _ in on_disk if k == kind) for kind in EVICTED}
        if counted != {kind: self._on_disk[kind] for kind in EVICTED}:
            raise AssertionError(f"state audit: records on disk only {counted}, the engine counts {self._on_disk}")
        versions = {(r.kind, r.id): r.version for r in loaded.records if (r.kind, r.id) not in on_disk}
        if versions != self.versions:
            raise AssertionError("state audit: the versions the engine expects are not the store's")
        timers = {t.id for t in self.clock.pending()}
        stored_timers = {t.id for t in loaded.timers}
        if timers != stored_timers:
            raise AssertionError(f"state audit: timers differ: {sorted(timers ^ stored_timers)[:5]}")

    def persist(self) -> None:
        """State changed outside a request (timers ran, webhooks were attempted): listeners hear of it, and a
        durable store commits soon, once for a burst."""
        self.changed()
        self.trim()
        self.changes.notify()
        if self._commit_pending or self.store is None:
            return
        self._commit_pending = True

        def commit() -> None:
            self._commit_pending = False
            self._background(self.commit())

        asyncio.get_running_loop().call_later(PERSIST_DELAY, commit)

    async def _restore(self, store: Store) -> bool:
        if self.term is not None:  # what others commit while this reads is read again at the first catch-up
            self._cursor, _ = await store.feed(None)
        loaded = await store.load(self.config.journal_size)
        if not await self._adopt(loaded):
            return False
        if loaded.meta.get("indexed") != INDEXED:  # written by a version that kept other index entries, or none
            await self._reindex(store)
        if self.scenarios.prune():
            self.changed()
        self.trim()  # finished records beyond the newest few of each kind stay on disk only
        log.info("state restored from %s", self.location)
        return True

    async def _reindex(self, store: Store) -> None:
        """Write every record's index entries again. On a shared store, under the term (other workers start too):
        the first to hold it writes them, and the others, reading the store again under it, find them written."""
        if self.term is None:
            await self._write_index(store)
            return
        while (token := await store.acquire(TERM_NAME, TERM_TTL_S)) is None:
            await asyncio.sleep(0.05)
        self.term.token = token  # (a start-up's loop of its own: the term's machinery runs on the server's)
        try:
            await self._reload(store)
            if self._meta_written.get("indexed") != INDEXED:
                await self._write_index(store)
        finally:
            self.term.token = None
            await store.release(TERM_NAME, token)

    async def _write_index(self, store: Store) -> None:
        for key in self.versions:
            self.dirty(*key)
        self.changed()
        await self._write(store, reindex=True)
        log.info("state file %s: index entries written again", self.location)

    async def _adopt(self, loaded: Loaded) -> bool:
        """Hold what a store holds (False: it holds no state yet)."""
        self.journal.restore(loaded.journal if self.config.journal_size else [])
        meta = loaded.meta
        if "clock" not in meta:
            return False
        self.records.restore([(r.kind, r.id, r.data) for r in loaded.records])
        self.versions = {(r.kind, r.id): r.version for r in loaded.records}
        for kind, records in self._retained():
            self._finished[kind].extend(i for i, record in records.items() if FINISHED[kind](record))
        self.clock.restore(meta["clock"], loaded.timers)
        if self.signer.generated:  # receivers that pinned the public key keep verifying after a restart
            self.signer.use_seed(meta["signer"])
        self.webhooks.continue_from(int(meta["webhook_ids"]))
        self.faults.continue_from(int(meta["fault_ids"]))
        self.coverage.test = meta.get("test")
        self._meta_written = dict(meta)
        self._reset_mark = str(meta.get("reset", ""))
        self.dirty.take()  # what was read is what is stored
        self.clock.take_changes()
        return True

    def resume(self) -> None:
        """On the event loop, after a restore: webhooks that were being delivered are attempted again (with a
        shared store, `follow` takes those of processes that died, once it knows which)."""
        if self.term is None:
            self.webhooks.resume()

    def reload_scenarios(self) -> None:
        """Scenario files read again; bindings stay. Raises ConfigErrors and changes nothing if one is broken."""
        bindings = self.scenarios.bindings
        self.scenarios = Scenarios(load_scenarios(self.config.scenario_dirs()))
        self.scenarios.dirty = self.dirty
        self.scenarios.bindings = bindings
        self.scenarios.prune()

    def reload_specs(self) -> None:
        """Specs and handler modules read again. Raises ConfigErrors and changes nothing if one is broken."""
        self.use(self._load(self.config, fresh=True))

    def use(self, mounted: list[Mounted]) -> None:
        self.mounted = mounted
        self._by_prefix = sorted(self.mounted, key=lambda m: len(m.spec.prefix), reverse=True)
        self.concrete_paths = self._concrete_paths(self.mounted)

    @classmethod
    def check_specs(cls, config: Config) -> None:
        """Raise ConfigErrors if the configured specs, handlers or scenarios would not load."""
        cls._load(config)
        load_scenarios(config.scenario_dirs())

    @staticmethod
    def _load(config: Config, fresh: bool = False) -> list[Mounted]:
        mounted, errors = mount(config, spec_files(config.spec_dirs()), fresh)
        if errors:
            raise ConfigErrors(errors)
        return mounted

    @staticmethod
    def _concrete_paths(mounted: list[Mounted]) -> dict[str, frozenset[str]]:
        """Full paths without templates, with their methods. OpenAPI matches these before templated paths, so
        GET /v2/verifications/sms is a 405 (only POST is declared there), not a lookup of verification "sms"."""
        paths: dict[str, set[str]] = {}
        for m in mounted:
            for operation in m.spec.operations.values():
                if "{" not in operation.path:
                    paths.setdefault(m.spec.base_path + operation.path, set()).add(operation.method.upper())
        return {path: frozenset(methods) for path, methods in paths.items()}

    def allowed_methods(self, path: str) -> list[str]:
        """The methods a path supports: those of its concrete path if it has one, else of every template it fits."""
        if path in self.concrete_paths:
            return sorted(self.concrete_paths[path])
        methods = {
            operation.method.upper()
            for m in self.mounted
            if path.startswith(m.spec.base_path)
            for operation in m.spec.operations.values()
            if template_regex(operation.path).match(path[len(m.spec.base_path) :])
        }
        return sorted(methods)

    def activate(self) -> None:
        _current.set(self)

    async def reset(self, keep_coverage: bool = False) -> None:
        if self.clock.advancing:  # it would go on moving the clock and running timers after the reset
            raise ApiError(Problem.CONFLICT, "The clock is being advanced; reset once that advance has answered.")
        store = self.store
        if self.term is not None and store is not None:  # an advance in another process counts too
            token = await store.acquire("advance", 1.0)
            if token is None:
                raise ApiError(Problem.CONFLICT, "The clock is being advanced; reset once that advance has answered.")
            await store.release("advance", token)
        reached, test = dict(self.coverage.reached), self.coverage.test
        self._forget_everything()
        if store is not None:
            await store.clear()
        if keep_coverage:  # written again, to the cleared store
            self.coverage.reached, self.coverage.test = reached, test
            for name in reached:
                self.dirty("outcome", name)
        self.changed()
        if self.term is not None:  # a new mark in the meta: the others read everything again (an empty state)
            self._reset_mark = secrets.token_hex(8)

    def _forget_everything(self) -> None:
        """Memory as at start-up, before anything was read (the store is left as it is)."""
        self.journal.clear()
        self.clock.clear()
        self.phones.clear()
        self.webhooks.clear()
        self.scenarios.bindings.clear()
        self.telnyx.clear()
        self.telesign.clear()
        self.tollfree.clear()
        self.faults.clear()
        self.coverage.clear()
        self.timelines.clear()
        for finished in self._finished.values():
            finished.clear()
        self._on_disk = dict.fromkeys(self._on_disk, 0)
        self._disk_cursor = dict.fromkeys(self._disk_cursor, 0)
        self.versions.clear()
        self.dirty.take()
        self.clock.take_changes()
        self._unwritten = Changes()
        self._meta_written = {}

    # -- per request ---------------------------------------------------------------------------------------------

    def begin_request(self, headers: dict[str, str], line: str | None = None) -> RequestContext:
        context = RequestContext(headers, [], line=line)
        _request.set(context)
        return context

    def request(self) -> RequestContext:
        context = _request.get()
        if context is None:
            raise RuntimeError("no request is being served")
        return context

    def touch(self, resource_id: str) -> None:
        """Record in the journal entry of the current request that it created or changed this resource."""
        context = _request.get()
        if context is not None and resource_id not in context.touched:
            context.touched.append(resource_id)
            # a vendor request is an event of its subject's story (a verification's, a transaction's...)
            if context.line and self.timelines.tell(resource_id, "app", "vendor", context.line):
                context.told.append(resource_id)

    def answered(self, context: RequestContext, status: int) -> None:
        """The request's answer ends its part of each story it is in."""
        phrase = _PHRASES.get(status, "")  # (a fault may answer with any status from 400 to 599)
        for subject in context.told:
            self.timelines.tell(subject, "vendor", "app", f"{status} {phrase}".rstrip())

    async def scenario_for(self, phone_number: str | None) -> Scenario:
        """The scenario this request runs under, with its latency and forced error applied."""
        scenario = self.select_scenario(phone_number)
        await self.apply_overrides(scenario)
        return scenario

    def select_scenario(self, *phone_numbers: str | None, business_name: str | None = None) -> Scenario:
        """The request's scenario: its X-Mock-Scenario header, else a binding or reservation of its numbers
        (or business name), else the default."""
        context = _request.get()
        header = context.headers.get(SCENARIO_HEADER) if context else None
        scenario = self.scenarios.select_any([n for n in phone_numbers if n], header, business_name)
        if context is not None:
            context.scenario = scenario.id
        return scenario

    async def apply_overrides(self, scenario: Scenario) -> None:
        """A scenario's latency, then its forced error, if it has them."""
        await delay(scenario.latency_ms, scenario.latency_ms_max)
        if scenario.http is not None:
            raise error_for(scenario.http.status, scenario.http.code, scenario.http.detail, f"scenario {scenario.id}")
        context = _request.get()
        if scenario.connection is not None and context is not None:
            context.fault = scenario.connection

    def check_webhook(self, spec_name: str, schema_pointer: str, body: dict[str, Any]) -> None:
        """Webhooks are checked against their spec like responses; a mismatch is logged as a mock bug."""
        mounted = next((m for m in self.mounted if m.spec.name == spec_name), None)
        if mounted is None or not self.config.self_check:
            return
        problems = mounted.checker.check_schema(schema_pointer, body)
        if problems:
            log.error("webhook %s does not conform to %s: %s", schema_pointer, spec_name, "; ".join(map(str, problems)))

    def mounted_for_path(self, path: str) -> Mounted | None:
        """The spec whose prefix is the longest one `path` starts with."""
        for m in self._by_prefix:
            prefix = m.spec.prefix
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                return m
        return None

    def locate(self, path: str, routed: str | None) -> tuple[Mounted | None, Operation | None]:
        """The spec and operation a request was routed to (or, unrouted, the spec its path falls under)."""
        if routed and ROUTED_SEPARATOR in routed:
            name, _, operation_id = routed.partition(ROUTED_SEPARATOR)
            for m in self.mounted:
                if m.spec.name == name and operation_id in m.spec.operations:
                    return m, m.spec.operations[operation_id]
        return self.mounted_for_path(path), None

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": m.spec.name,
                "base_path": m.spec.base_path or "/",
                "vendor": m.vendor,
                "openapi": m.spec.version,
                "operations": len(m.spec.operations),
                "source": str(m.spec.source),
            }
            for m in self.mounted
        ]
