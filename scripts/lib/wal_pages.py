#!/usr/bin/env python3
"""Attributes the pages of each commit in a SQLite WAL file to tables and indexes.

Usage: wal_pages.py DB  (reads DB-wal; needs the sqlite3 CLI, whose dbstat maps pages to names).
A profiling aid for the event writer: which B-trees a commit rewrites, and how many pages each.
"""
import collections
import shutil
import struct
import subprocess
import sys
import tempfile


def frames(wal):
    page_size = struct.unpack(">I", wal[8:12])[0]
    salt = wal[16:24]
    off, commit = 32, []
    while off + 24 + page_size <= len(wal):
        pgno, db_size = struct.unpack(">II", wal[off:off + 8])
        if wal[off + 8:off + 16] != salt:
            break
        commit.append(pgno)
        if db_size:
            yield commit
            commit = []
        off += 24 + page_size


def main(db):
    wal = open(db + "-wal", "rb").read()
    commits = list(frames(wal))
    with tempfile.TemporaryDirectory() as d:
        copy = d + "/copy.db"
        shutil.copy(db, copy)
        shutil.copy(db + "-wal", copy + "-wal")
        out = subprocess.run(["sqlite3", copy, "SELECT pageno, name, pagetype FROM dbstat"],
                             check=True, capture_output=True, text=True).stdout
    owner = {}
    sizes = collections.Counter()
    for line in out.splitlines():
        pageno, name, kind = line.split("|")
        owner[int(pageno)] = (name, kind)
        sizes[name] += 1
    for i, pages in enumerate(commits):
        distinct = set(pages)
        by = collections.Counter(owner.get(p, ("?", "?")) for p in distinct)
        print(f"commit {i}: {len(pages)} frames, {len(distinct)} distinct pages")
        names = collections.Counter()
        for (name, kind), n in by.items():
            names[name] += n
        for name, n in names.most_common():
            kinds = ", ".join(f"{k} {c}" for (nm, k), c in by.items() if nm == name)
            print(f"  {name:32} {n:6}  of {sizes[name]:7}  ({kinds})")


if __name__ == "__main__":
    main(sys.argv[1])
