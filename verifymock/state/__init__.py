"""The engine's state as data: records and timers, kept in memory or written change by change to a SQLite file or
to Redis, which several processes may share.

- store.py: the one interface the engine keeps state through (async reads, a commit per unit of work under version
  checks, index entries, timer claims with leases and fences, named leases, the journal and the change feed);
- sqlite.py: the SQLite store, its schema and the migrations that bring an older file forward;
- redis.py: the Redis store, its key layout and the Lua scripts that commit and claim;
- term.py: several processes on one store, one deciding at a time under a lease its commits are tied to;
- records.py: which records there are, where the engine keeps each kind while it runs, their data form and their
  index entries;
- dirty.py: what changed since the last commit.
In memory mode there is no store: the engine's own dicts and timer heap are the state.
"""
