#!/usr/bin/env python3
"""Checks that the SQLite and PostgreSQL migration histories build the same database.

Usage: check_migrations.py [--verbose] [--no-self-test | --self-test]
       check_migrations.py --sqlite-dir DIR --pg-dir DIR  (other directories; no self-test)

Run by scripts/check-migrations, whose header says what is compared and how. Standard library
only: the sqlite3 module for SQLite (the system's SQLite, not the one rusqlite bundles: a
migration using newer syntax fails here loudly), the `psql` CLI for PostgreSQL.
"""
import argparse
import collections
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQLITE_DIR = ROOT / "crates/accolade-store-sqlite/migrations"
PG_DIR = ROOT / "crates/accolade-store-postgres/migrations"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/test"

# Differences that are there by design. Each key is a difference exactly as the check prints it
# (after "- "); the value says why it is right (printed with --verbose). An entry that matches no
# difference fails the check, so the list cannot outlive what it excuses.
_CHAIN = (
    "0007: SQLite chains a learner's events (inbox_events.prev_seq, head in "
    "learners.last_event_seq) instead of indexing (learner, seq), which cost its single writer a "
    "page write per event; PostgreSQL's concurrent writers keep the index"
)
_COMMIT_ORDER = (
    "0004: webhook fan-out follows commit order. SQLite's single writer makes rowid order commit "
    "order (webhook_cursor.last_rowid); a PostgreSQL sequence is not, so each outgoing event "
    "records its transaction id (outgoing_events.tx) and the cursor is (last_tx, last_id)"
)
ALLOWED = {
    "column inbox_events.prev_seq: only on sqlite": _CHAIN,
    "column learners.last_event_seq: only on sqlite": _CHAIN,
    "index inbox_events_learner: only on postgresql (on inbox_events (learner, seq))": _CHAIN,
    "index awards_learner: only on postgresql (on awards (learner))": (
        "0008: SQLite's awards are unique on (learner, template_id, episode), learner first, so "
        "that key serves lookups by learner and the separate index went; PostgreSQL keeps "
        "(template_id, learner, episode) and this index"
    ),
    "column outgoing_events.tx: only on postgresql": _COMMIT_ORDER,
    "index outgoing_events_tx: only on postgresql (on outgoing_events (tx, id))": _COMMIT_ORDER,
    "column webhook_cursor.last_rowid: only on sqlite": _COMMIT_ORDER,
    "column webhook_cursor.last_tx: only on postgresql": _COMMIT_ORDER,
    "column webhook_cursor.last_id: only on postgresql": _COMMIT_ORDER,
    "row counters (name='events', value='0'): only on postgresql": (
        "0006: PostgreSQL counts accepted events in this row because its inbox sequence has gaps "
        "(a duplicate or a rolled-back batch still takes a number). SQLite's rowid has none and "
        "inbox rows are never deleted, so its store reports max(seq) and neither reads nor "
        "writes this row (stats() in each store's jobs.rs); seeded there it would go stale"
    ),
}

# The storage class on SQLite of what a PostgreSQL column of each type holds: timestamps are
# RFC 3339 text there, booleans 0/1, JSON and arrays JSON text. Array types are "text" too.
PG_TYPE_CLASS = {
    "text": "text",
    "character varying": "text",
    "character": "text",
    "uuid": "text",
    "timestamp with time zone": "text",
    "timestamp without time zone": "text",
    "date": "text",
    "json": "text",
    "jsonb": "text",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "boolean": "integer",
    "bytea": "blob",
    "real": "real",
    "double precision": "real",
    "numeric": "numeric",
}


class CheckError(Exception):
    """Not a difference but a failure: a migration that does not apply, a server error."""

    def __init__(self, message, output=""):
        super().__init__(message)
        self.output = output
        self.names = []  # differences in file names found before it


def migration_files(directory):
    return sorted(p.name for p in Path(directory).iterdir() if not p.name.startswith("."))


def sql_files(directory):
    return [Path(directory) / n for n in migration_files(directory) if n.endswith(".sql")]


def compare_names(sqlite_dir, pg_dir):
    """The first check: both directories hold the same file names."""
    a, b = set(migration_files(sqlite_dir)), set(migration_files(pg_dir))
    return [f"migration file {n}: only on sqlite" for n in sorted(a - b)] + [
        f"migration file {n}: only on postgresql" for n in sorted(b - a)
    ]


def new_snapshot():
    return {
        "relations": {},  # name -> "table" | "view"
        "columns": {},  # relation -> column -> {class, type, notnull, default}
        "indexes": {},  # name -> {table, columns, unique, partial}; CREATE INDEX ones only
        "keys": set(),  # (table, "primary key" | "unique" | ..., sorted columns)
        "foreign_keys": set(),  # (table, columns, ref table, ref columns, on delete, on update)
        "triggers": set(),  # (name, table)
        "rows": {},  # table -> [{column: value}]
    }


def index_entry(table, columns, unique, partial):
    return {"table": table, "columns": tuple(columns), "unique": bool(unique),
            "partial": bool(partial)}


# ---------------------------------------------------------------------------------------------
# SQLite, migrated as crates/accolade-store-sqlite/src/lib.rs (`configure`) and migrate.rs do.


def sqlite_affinity(declared):
    """SQLite's column affinity rules (https://sqlite.org/datatype3.html, section 3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "integer"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "text"
    if "BLOB" in t or not t:
        return "blob"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "real"
    return "numeric"


def snapshot_sqlite(directory, workdir):
    c = sqlite3.connect(Path(workdir) / "check.db", isolation_level=None)
    try:
        # The store's pragmas, but for those that cannot change a schema (timeouts, cache sizes).
        for pragma in ("page_size = 8192", "journal_mode = WAL", "synchronous = FULL",
                       "foreign_keys = ON", "temp_store = MEMORY", "wal_autocheckpoint = 0"):
            c.execute(f"PRAGMA {pragma}")
        # The store's `fold` function, in case an index or a view uses it.
        c.create_function("fold", 1, lambda s: None if s is None else s.lower(),
                          deterministic=True)
        for f in sql_files(directory):
            # As migrate::run: each file one batch, in its own transaction.
            try:
                c.executescript("BEGIN;\n" + f.read_text() + "\nCOMMIT;")
            except sqlite3.Error as e:
                raise CheckError(f"sqlite: migration {f.name} failed: {e}") from None
        return read_sqlite(c)
    finally:
        c.close()


def read_sqlite(c):
    def q(sql, *args):
        return c.execute(sql, args).fetchall()

    snap = new_snapshot()
    for name, kind in q("SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') "
                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"):
        snap["relations"][name] = kind
    for rel, kind in snap["relations"].items():
        cols, pk = {}, []
        for _cid, col, declared, notnull, default, pk_pos, hidden in q(
                "SELECT * FROM pragma_table_xinfo(?)", rel):
            if hidden == 1:  # a virtual table's hidden column
                continue
            # A primary-key column counts as NOT NULL: PostgreSQL enforces it, and SQLite does for
            # INTEGER PRIMARY KEY and WITHOUT ROWID (elsewhere its allowing NULL is a known quirk).
            cols[col] = {"class": sqlite_affinity(declared or ""), "type": declared or "",
                         "notnull": bool(notnull or pk_pos), "default": default}
            if pk_pos:
                pk.append((pk_pos, col))
        snap["columns"][rel] = cols
        if kind != "table":
            continue
        if pk:
            snap["keys"].add((rel, "primary key", tuple(sorted(col for _, col in pk))))
        for _seq, index, unique, origin, partial in q("SELECT * FROM pragma_index_list(?)", rel):
            columns = tuple("<expression>" if col is None else col for (col,) in q(
                "SELECT name FROM pragma_index_info(?) ORDER BY seqno", index))
            if origin == "c":  # CREATE INDEX
                snap["indexes"][index] = index_entry(rel, columns, unique, partial)
            elif origin == "u":  # a UNIQUE constraint (sqlite_autoindex_*)
                snap["keys"].add((rel, "unique", tuple(sorted(columns))))
            # origin "pk": the primary key, taken from table_xinfo above.
        fks = collections.defaultdict(list)
        for fk_id, _seq, ref, frm, to, on_update, on_delete, _match in q(
                "SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", rel):
            fks[fk_id].append((frm, to, ref, on_update, on_delete))
        for parts in fks.values():
            ref, on_update, on_delete = parts[0][2], parts[0][3], parts[0][4]
            to = [p[1] for p in parts]
            if None in to:  # `REFERENCES t` without columns: t's primary key
                to = [col for _, col in sorted((pos, col) for _, col, _, _, _, pos, _ in q(
                    "SELECT * FROM pragma_table_xinfo(?)", ref) if pos)]
            snap["foreign_keys"].add((rel, tuple(p[0] for p in parts), ref, tuple(to),
                                      on_delete.upper(), on_update.upper()))
        names = list(cols)
        snap["rows"][rel] = [dict(zip(names, r)) for r in q(
            f"SELECT {', '.join(ident(n) for n in names)} FROM {ident(rel)}")]
    for name, table in q("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'trigger'"):
        snap["triggers"].add((name, table))
    return snap


# ---------------------------------------------------------------------------------------------
# PostgreSQL, migrated as sqlx's Migrator (crates/accolade-store-postgres/src/migrate.rs) does.

# The session settings sqlx sends (sqlx-postgres, connection/establish.rs).
PSQL_ENV = {"PGTZ": "UTC", "PGDATESTYLE": "ISO, MDY", "PGCLIENTENCODING": "UTF8",
            "PGAPPNAME": "accolade-check-migrations", "PGCONNECT_TIMEOUT": "5"}
# Marks the sections of psql's output.
MARK = "@@check-migrations@@ "
# Every temporary database created, so the self-test can see that each one was dropped.
CREATED_DATABASES = []


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def ident(s):
    return '"' + s.replace('"', '""') + '"'


def psql(url, *commands, timeout=600):
    """Sends each command as one simple query (`psql -c`), stopping at the first error. The
    timeout is generous: DROP DATABASE waits for a checkpoint, which can take minutes on a server
    busy with other test suites' databases."""
    args = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url]
    for cmd in commands:
        args += ["-c", cmd]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **PSQL_ENV})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CheckError(f"psql: {e}") from None
    if out.returncode != 0:
        raise CheckError(out.stderr.strip() or f"psql exited with {out.returncode}", out.stdout)
    return out.stdout


def pg_unreachable(url):
    """Why PostgreSQL cannot be used at `url`, or None."""
    if shutil.which("psql") is None:
        return "psql is not on PATH"
    try:
        psql(url, "SELECT 1", timeout=15)
        return None
    except CheckError as e:
        return (str(e).splitlines() or ["no answer"])[0]


def with_database(url, name):
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


def snapshot_pg(directory, admin_url):
    name = f"accolade_migcheck_{os.getpid()}_{secrets.token_hex(4)}"
    psql(admin_url, f"CREATE DATABASE {ident(name)}")
    CREATED_DATABASES.append(name)
    try:
        # sqlx's Migrator runs all migrations on one connection (one psql session here), each
        # file sent as ONE simple query, as `psql -c` sends it (no client-side splitting or
        # variables), in its own transaction unless the file starts with `-- no-transaction`.
        files = sql_files(directory)
        cmds = []
        for f in files:
            sql = f.read_text()
            cmds += [sql] if sql.startswith("-- no-transaction") else ["BEGIN", sql, "COMMIT"]
            cmds.append(f"SELECT {lit(MARK + 'applied ' + f.name)}")
        cmds += [f"SELECT {lit(MARK + 'catalog')}", PG_CATALOG, PG_ROWS_FUNCTION,
                 f"SELECT {lit(MARK + 'rows')}", "SELECT pg_temp.table_rows()"]
        try:
            out = psql(with_database(admin_url, name), *cmds)
        except CheckError as e:
            done = len(re.findall(re.escape(MARK) + "applied ", e.output))
            if done < len(files):
                raise CheckError(f"postgresql: migration {files[done].name} failed: {e}") from None
            raise
        sections = dict(re.findall(re.escape(MARK) + r"(catalog|rows)\n(.*?)(?=\n"
                                   + re.escape(MARK) + r"|\Z)", out, re.S))
        return read_pg(json.loads(sections["catalog"]), json.loads(sections["rows"]))
    finally:
        try:
            # An interrupted run may leave its session running on the server for a while.
            psql(admin_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE datname = {lit(name)}", f"DROP DATABASE IF EXISTS {ident(name)}")
        except CheckError as e:
            print(f"WARNING: could not drop the temporary database {name}: {e}", file=sys.stderr)


PG_CATALOG = r"""
WITH rel AS (
  SELECT c.oid, c.relname, c.relkind FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')
)
SELECT json_build_object(
  'relations', (SELECT coalesce(json_agg(json_build_array(relname, relkind)), '[]') FROM rel),
  'columns', (SELECT coalesce(json_agg(json_build_array(
        r.relname, a.attname, format_type(a.atttypid, NULL), a.attnotnull,
        pg_get_expr(d.adbin, d.adrelid))), '[]')
      FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid
      LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
      WHERE a.attnum > 0 AND NOT a.attisdropped),
  'indexes', (SELECT coalesce(json_agg(json_build_array(
        i.relname, r.relname, x.indisunique, x.indpred IS NOT NULL,
        EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid
                AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x')),
        ARRAY(SELECT coalesce(a.attname, '<expression>')
              FROM generate_series(0, x.indnkeyatts - 1) k
              LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k]
              ORDER BY k))), '[]')
      FROM rel r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class i ON i.oid = x.indexrelid),
  'keys', (SELECT coalesce(json_agg(json_build_array(
        r.relname, k.contype,
        ARRAY(SELECT a.attname FROM unnest(k.conkey) u(n)
              JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = u.n))), '[]')
      FROM rel r JOIN pg_constraint k ON k.conrelid = r.oid
      WHERE k.contype IN ('p', 'u', 'x')),
  'foreign_keys', (SELECT coalesce(json_agg(json_build_array(
        r.relname,
        ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
              JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = u.n ORDER BY u.o),
        f.relname,
        ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
              JOIN pg_attribute a ON a.attrelid = f.oid AND a.attnum = u.n ORDER BY u.o),
        k.confdeltype, k.confupdtype)), '[]')
      FROM rel r JOIN pg_constraint k ON k.conrelid = r.oid AND k.contype = 'f'
      JOIN pg_class f ON f.oid = k.confrelid),
  'triggers', (SELECT coalesce(json_agg(json_build_array(t.tgname, r.relname)), '[]')
      FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal)
)
"""

# Every table's rows, as [[table, [row, ...]], ...]. A temporary function: it lives in the
# session's own pg_temp schema, outside the schema compared, and goes with the session.
PG_ROWS_FUNCTION = r"""
CREATE FUNCTION pg_temp.table_rows() RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  t text;
  part json;
  result json[] := '{}';
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname
  LOOP
    EXECUTE format('SELECT coalesce(json_agg(row_to_json(t)), ''[]'') FROM %I t', t) INTO part;
    result := result || json_build_array(t, part);
  END LOOP;
  RETURN array_to_json(result);
END
$$
"""

PG_KEY_KINDS = {"p": "primary key", "u": "unique", "x": "exclusion constraint"}
PG_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
              "d": "SET DEFAULT"}


def read_pg(cat, rows):
    snap = new_snapshot()
    for name, kind in cat["relations"]:
        snap["relations"][name] = "view" if kind in ("v", "m") else "table"
    for rel, col, pgtype, notnull, default in cat["columns"]:
        cls = "text" if pgtype.endswith("[]") else PG_TYPE_CLASS.get(pgtype)
        if cls is None:
            raise CheckError(f"postgresql column {rel}.{col} has type {pgtype}, which has no "
                             "storage class in PG_TYPE_CLASS (scripts/lib/check_migrations.py)")
        snap["columns"].setdefault(rel, {})[col] = {
            "class": cls, "type": pgtype, "notnull": notnull, "default": default}
    for index, table, unique, partial, backs_constraint, columns in cat["indexes"]:
        if not backs_constraint:
            snap["indexes"][index] = index_entry(table, columns, unique, partial)
    for table, contype, columns in cat["keys"]:
        snap["keys"].add((table, PG_KEY_KINDS[contype], tuple(sorted(columns))))
    for table, cols, ref, ref_cols, on_delete, on_update in cat["foreign_keys"]:
        snap["foreign_keys"].add((table, tuple(cols), ref, tuple(ref_cols),
                                  PG_ACTIONS[on_delete], PG_ACTIONS[on_update]))
    for name, table in cat["triggers"]:
        snap["triggers"].add((name, table))
    snap["rows"] = dict(rows)
    return snap


# ---------------------------------------------------------------------------------------------
# Comparison.


def normalize(value, pgtype):
    """One text form for a value from either database, by the PostgreSQL column's type (None for
    a column only SQLite has)."""
    if value is None:
        return None
    t = pgtype or ""
    if t == "boolean":
        if value in (True, 1, "1", "true", "t"):
            return "true"
        if value in (False, 0, "0", "false", "f"):
            return "false"
    elif t in ("json", "jsonb") or t.endswith("[]"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    elif t.startswith("timestamp"):
        try:
            d = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        if d.tzinfo is not None:
            d = d.astimezone(datetime.timezone.utc)
        return d.strftime("%Y-%m-%dT%H:%M:%S.%f") + ("Z" if d.tzinfo else "")
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def normalize_default(expr, pgtype):
    """A column default in one form: PostgreSQL's casts go (`''::text`), booleans become 0/1 as
    SQLite stores them, and PostgreSQL's empty array `'{}'` is SQLite's empty JSON array."""
    if expr is None:
        return None
    s = expr.strip()
    while (stripped := re.sub(r"::[a-z][a-z0-9_ ]*(\[\])?$", "", s)) != s:
        s = stripped
    s = {"true": "1", "false": "0"}.get(s.lower(), s)
    if (pgtype or "").endswith("[]") and s == "'{}'":
        s = "'[]'"
    return s


def describe_index(ix):
    return (("unique " if ix["unique"] else "") + ("partial " if ix["partial"] else "")
            + f"on {ix['table']} ({', '.join(ix['columns'])})")


def describe_fk(fk):
    table, cols, ref, ref_cols, on_delete, on_update = fk
    return (f"{table} ({', '.join(cols)}) -> {ref} ({', '.join(ref_cols)}) "
            f"on delete {on_delete}, on update {on_update}")


def side_only(what, in_lite):
    return f"{what}: only on {'sqlite' if in_lite else 'postgresql'}"


def compare(lite, pg):
    """Every difference between the two snapshots, one line each."""
    out = []
    for rel in sorted(lite["relations"].keys() | pg["relations"].keys()):
        a, b = lite["relations"].get(rel), pg["relations"].get(rel)
        if not (a and b):
            out.append(side_only(f"{a or b} {rel}", a))
            continue
        if a != b:
            out.append(f"relation {rel}: a {a} on sqlite, a {b} on postgresql")
        ca, cb = lite["columns"][rel], pg["columns"][rel]
        for col in sorted(ca.keys() | cb.keys()):
            x, y = ca.get(col), cb.get(col)
            if not (x and y):
                out.append(side_only(f"column {rel}.{col}", x))
                continue
            if x["class"] != y["class"]:
                out.append(f"column {rel}.{col}: stored as {x['class']} on sqlite "
                           f"({x['type'] or 'no type'}), {y['class']} on postgresql ({y['type']})")
            da, db = (normalize_default(v["default"], y["type"]) for v in (x, y))
            if da != db:
                out.append(f"column {rel}.{col}: default {da or 'none'} on sqlite, "
                           f"{db or 'none'} on postgresql")
            if x["notnull"] != y["notnull"]:
                nn = ("nullable", "NOT NULL")
                out.append(f"column {rel}.{col}: {nn[x['notnull']]} on sqlite, "
                           f"{nn[y['notnull']]} on postgresql")
    for ix in sorted(lite["indexes"].keys() | pg["indexes"].keys()):
        a, b = lite["indexes"].get(ix), pg["indexes"].get(ix)
        if not (a and b):
            out.append(side_only(f"index {ix}", a) + f" ({describe_index(a or b)})")
        elif a != b:
            out.append(f"index {ix}: {describe_index(a)} on sqlite, "
                       f"{describe_index(b)} on postgresql")
    for table, kind, cols in sorted(lite["keys"] ^ pg["keys"]):
        out.append(side_only(f"{kind} {table} ({', '.join(cols)})",
                             (table, kind, cols) in lite["keys"]))
    for fk in sorted(lite["foreign_keys"] ^ pg["foreign_keys"]):
        out.append(side_only(f"foreign key {describe_fk(fk)}", fk in lite["foreign_keys"]))
    for name, table in sorted(lite["triggers"] ^ pg["triggers"]):
        out.append(side_only(f"trigger {name} on {table}", (name, table) in lite["triggers"]))
    for table in sorted(lite["rows"].keys() & pg["rows"].keys()):
        # Rows compare on the columns both sides have (the others are reported above).
        types = {col: v["type"] for col, v in pg["columns"][table].items()}
        cols = sorted(lite["columns"][table].keys() & pg["columns"][table].keys())
        rows = {}
        for side, snap in (("sqlite", lite), ("postgresql", pg)):
            rows[side] = collections.Counter(
                tuple(normalize(r[col], types[col]) for col in cols) for r in snap["rows"][table])
        for side, other in (("sqlite", "postgresql"), ("postgresql", "sqlite")):
            extra = rows[side] - rows[other]
            for row in sorted(extra.elements(), key=lambda r: [(v is None, v or "") for v in r]):
                values = ", ".join(f"{col}={'NULL' if v is None else repr(v)}"
                                   for col, v in zip(cols, row))
                out.append(f"row {table} ({values}): only on {side}")
    return out


# ---------------------------------------------------------------------------------------------
# The check, its self-test, and the command line.


def check(sqlite_dir, pg_dir, pg_url, allowed):
    """Returns (differences not allowed, allowed differences seen, why PostgreSQL was skipped
    or None, number of tables and views)."""
    diffs = compare_names(sqlite_dir, pg_dir)
    skipped = pg_unreachable(pg_url)
    if skipped is not None:
        return diffs, [], skipped, 0
    try:
        with tempfile.TemporaryDirectory(prefix="accolade-migcheck-") as work:
            lite = snapshot_sqlite(sqlite_dir, work)
        pg = snapshot_pg(pg_dir, pg_url)
    except CheckError as e:
        e.names = diffs
        raise
    found = compare(lite, pg)
    relations = len(lite["relations"].keys() | pg["relations"].keys())
    return diffs + not_allowed(found, allowed), [d for d in found if d in allowed], None, relations


def not_allowed(found, allowed):
    """The differences `allowed` does not excuse, and its entries that excuse none."""
    return [d for d in found if d not in allowed] + [
        f"allow-list entry matches no difference (remove it): {k}"
        for k in allowed if k not in found]


# A migration planted in copies of both directories, with one drift of each kind the check
# looks for. Row 1 is the same once normalised (5 and '5'), so it must not be reported.
DRIFT_SQLITE = """-- Self-test of scripts/check-migrations: a deliberately drifted migration.
CREATE TABLE selftest_drift (
    id    INTEGER PRIMARY KEY,
    label TEXT NOT NULL DEFAULT '',
    size  INTEGER,
    kind  TEXT,
    owner TEXT REFERENCES templates (id)
);
CREATE INDEX selftest_drift_label ON selftest_drift (label);
INSERT INTO selftest_drift (id, label, size, kind)
    VALUES (1, 'same', 5, 'k'), (2, 'sqlite', NULL, 'k');
"""
DRIFT_PG = """-- Self-test of scripts/check-migrations: a deliberately drifted migration.
CREATE TABLE selftest_drift (
    id    BIGINT PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    size  TEXT,
    kind  TEXT NOT NULL,
    owner TEXT REFERENCES templates (id) ON DELETE CASCADE,
    note  BIGINT
);
INSERT INTO selftest_drift (id, label, size, kind)
    VALUES (1, 'same', '5', 'k'), (2, 'postgresql', NULL, 'k');
INSERT INTO counters (name, value) VALUES ('selftest_drift', 7);
"""
DRIFT_EXPECTED = [
    "column selftest_drift.kind: nullable on sqlite, NOT NULL on postgresql",
    "column selftest_drift.label: default '' on sqlite, none on postgresql",
    "column selftest_drift.note: only on postgresql",
    "column selftest_drift.size: stored as integer on sqlite (INTEGER), text on postgresql (text)",
    "index selftest_drift_label: only on sqlite (on selftest_drift (label))",
    "unique selftest_drift (label): only on postgresql",
    "foreign key selftest_drift (owner) -> templates (id) on delete CASCADE, on update NO ACTION:"
    " only on postgresql",
    "foreign key selftest_drift (owner) -> templates (id) on delete NO ACTION, on update NO ACTION:"
    " only on sqlite",
    "row counters (name='selftest_drift', value='7'): only on postgresql",
    "row selftest_drift (id='2', kind='k', label='sqlite', owner=NULL, size=NULL): only on sqlite",
    "row selftest_drift (id='2', kind='k', label='postgresql', owner=NULL, size=NULL): "
    "only on postgresql",
]


def self_test(pg_url, baseline):
    """Checks copies of the migration directories with planted drift. Returns (problems, why
    PostgreSQL was skipped or None). `baseline`: what the check reported on the real ones."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="accolade-migcheck-selftest-") as tmp:
        lite_dir, pg_dir = Path(tmp) / "sqlite", Path(tmp) / "postgres"
        shutil.copytree(SQLITE_DIR, lite_dir)
        shutil.copytree(PG_DIR, pg_dir)
        (lite_dir / "9999_only_here.sql").write_text("SELECT 1;\n")
        names = compare_names(lite_dir, pg_dir)
        if names != ["migration file 9999_only_here.sql: only on sqlite"]:
            problems.append(f"a file only on sqlite: the name check reported {names}")
        (lite_dir / "9999_only_here.sql").unlink()
        (lite_dir / "9999_selftest_drift.sql").write_text(DRIFT_SQLITE)
        (pg_dir / "9999_selftest_drift.sql").write_text(DRIFT_PG)
        diffs, allowed, skipped, _ = check(lite_dir, pg_dir, pg_url, ALLOWED)
        if skipped is not None:
            return problems, skipped
        problems += [f"not reported: {e}" for e in DRIFT_EXPECTED if e not in diffs]
        problems += [f"reported but not planted: {d}" for d in diffs
                     if d not in DRIFT_EXPECTED and d not in baseline]
        # An allow-list entry excuses its difference only, and one that excuses none fails.
        stale = "index selftest_drift_label: only on postgresql (on selftest_drift (label))"
        judged = not_allowed(diffs + allowed, {DRIFT_EXPECTED[0]: "", stale: ""})
        if DRIFT_EXPECTED[0] in judged or DRIFT_EXPECTED[1] not in judged or (
                f"allow-list entry matches no difference (remove it): {stale}" not in judged):
            problems.append(f"the allow-list was applied as: {judged}")
        # A migration that fails names itself, and its temporary database is dropped anyway.
        (pg_dir / "9999_selftest_drift.sql").write_text("SELECT 1;\nSELEC 2;\n")
        try:
            snapshot_pg(pg_dir, pg_url)
            problems.append("a broken migration applied without an error")
        except CheckError as e:
            if "migration 9999_selftest_drift.sql failed" not in str(e):
                problems.append(f"a broken migration was reported as: {e}")
    for name in CREATED_DATABASES:
        if psql(pg_url, f"SELECT 1 FROM pg_database WHERE datname = {lit(name)}").strip():
            problems.append(f"the temporary database {name} was not dropped")
    return problems, None


def shown(path):
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_check(args, pg_url, ci):
    """The check, reported. Returns (success, summary, differences)."""
    diffs, allowed, skipped, relations = check(args.sqlite_dir, args.pg_dir, pg_url, ALLOWED)
    ok = not diffs
    if skipped is not None and ci:
        ok = False
        print(f"FAILED: PostgreSQL is not reachable at {pg_url} and CI=true: {skipped}",
              file=sys.stderr)
    elif skipped is not None:
        print(f"SKIPPED: schema comparison (PostgreSQL not reachable at {pg_url}: {skipped})",
              file=sys.stderr)
    if diffs:
        print(f"FAILED: the migration histories differ ({shown(args.sqlite_dir)} vs "
              f"{shown(args.pg_dir)}):", file=sys.stderr)
        for d in diffs:
            print(f"  - {d}", file=sys.stderr)
        print(f"{len(diffs)} difference(s). Fix a drift with a NEW migration, of the same file "
              "name in both directories (never edit an applied one). A difference that is there "
              "by design goes, with its reason, into ALLOWED in scripts/lib/check_migrations.py.",
              file=sys.stderr)
    if args.verbose:
        for d in allowed:
            print(f"  allowed: {d}\n    because {ALLOWED[d]}")
    files = len(migration_files(args.sqlite_dir))
    if skipped is not None:
        return ok, f"migrations in lockstep: {files} file(s), names only", diffs
    return ok, (f"migrations in lockstep: {files} file(s); {relations} tables with the same "
                f"columns, indexes, keys and seeded rows ({len(allowed)} allowed difference(s))"
                ), diffs


def run_self_test(pg_url, ci, baseline):
    """The self-test, reported. Returns (success, summary)."""
    problems, skipped = self_test(pg_url, baseline)
    if skipped is not None and ci:
        problems.append(f"PostgreSQL is not reachable at {pg_url} and CI=true: {skipped}")
    if problems:
        print("FAILED: the self-test (a copy of the migrations with planted drift):",
              file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return False, None
    return True, "self-test: " + ("name check only" if skipped else "planted drift caught")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sqlite-dir", default=SQLITE_DIR, type=Path)
    ap.add_argument("--pg-dir", default=PG_DIR, type=Path)
    ap.add_argument("--self-test", action="store_true", help="run only the self-test")
    ap.add_argument("--no-self-test", action="store_true", help="skip the self-test")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the allowed differences")
    args = ap.parse_args()
    # SIGTERM and SIGHUP end the run through the `finally` that drops the temporary database
    # (Ctrl-C does already).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _frame: sys.exit(128 + n))
    pg_url = os.environ.get("ACCOLADE_TEST_PG_URL") or DEFAULT_PG_URL
    ci = os.environ.get("CI") == "true"
    start = time.monotonic()
    ok, summary, diffs = True, [], []
    try:
        if not args.self_test:
            ok, line, diffs = run_check(args, pg_url, ci)
            summary.append(line)
        own_dirs = (args.sqlite_dir, args.pg_dir) == (SQLITE_DIR, PG_DIR)
        if not args.no_self_test and own_dirs and (ok or args.self_test or diffs):
            # After a failed check the self-test still runs (it may tell why), unless that
            # failure was an unreachable server under CI, which it would only repeat.
            passed, line = run_self_test(pg_url, ci, diffs)
            ok = ok and passed
            summary.append(line)
    except CheckError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        for d in e.names:
            print(f"  and: {d}", file=sys.stderr)
        return 1
    if not ok:
        return 1
    print("; ".join(summary) + f" ({time.monotonic() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
