"""Corpus mode: a resumable SQLite store of analyses, its runners, statistics, exports and static site."""
