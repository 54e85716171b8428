"""The engine's state as data: records and timers, kept in memory or written change by change to a SQLite file.

- dirty.py: what changed since the last commit;
- records.py: which records there are, where the engine keeps each kind while it runs, and their data form;
- sqlite.py: the SQLite store, its schema and the migrations that bring an older file forward;
- the memory store keeps nothing beyond the process.
"""
