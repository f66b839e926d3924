#!/usr/bin/env python3
"""Check a sqllogictest file's expected output against a real PostgreSQL
(the oracle for every file under sql-tests/), with psql:

    python3 tools/slt_against_postgres.py sql-tests/catalog.slt "host=127.0.0.1 port=5432 user=postgres"

Prints each record whose answer differs and exits non-zero if any did.
Values are compared as psql's unaligned text, space-separated, as the Tarn
runner compares them. A record after a comment saying "tarn-only" is skipped
(Tarn answers differently on purpose, as that comment says)."""
import os
import re
import subprocess
import sys


def records(path):
    lines = open(path).read().split("\n")
    i = 0
    tarn_only = False
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            tarn_only = tarn_only or "tarn-only" in line
        elif line.startswith("statement") or line.startswith("query"):
            head = line
            i += 1
            sql = []
            while i < len(lines) and lines[i] != "----" and lines[i].strip() != "":
                sql.append(lines[i])
                i += 1
            expected = []
            if i < len(lines) and lines[i] == "----":
                i += 1
                while i < len(lines) and lines[i].strip() != "":
                    expected.append(lines[i])
                    i += 1
            if not tarn_only:
                yield head, "\n".join(sql), expected
            tarn_only = False
        i += 1


def main():
    path, conn = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    script = []
    recs = list(records(path))
    for n, (_, sql, _) in enumerate(recs):
        script.append(f"\\echo @@{n}")
        script.append(f"\\warn @@{n}")
        script.append(sql.rstrip(";") + ";")
    # Each file runs in a database of its own, as the Tarn runner gives each a fresh server.
    db = f"slt_check_{os.getpid()}"
    subprocess.run(["psql", "-X", "-q", conn, "-c", f"CREATE DATABASE {db}"], check=True)
    try:
        out = subprocess.run(["psql", "-X", "-At", "-F", " ", "-P", "null=NULL", f"{conn} dbname={db}"], input="\\set VERBOSITY verbose\n" + "\n".join(script),
                             capture_output=True, text=True)
    finally:
        subprocess.run(["psql", "-X", "-q", conn, "-c", f"DROP DATABASE {db}"], check=True)
    chunks = re.split(r"^@@(\d+)\n", out.stdout + "\n", flags=re.M)
    answers = {int(chunks[k]): chunks[k + 1].rstrip("\n").split("\n") if chunks[k + 1].strip() else [] for k in range(1, len(chunks), 2)}
    echunks = re.split(r"^@@(\d+)\n", out.stderr + "\n", flags=re.M)
    errors = {int(echunks[k]): re.findall(r"ERROR:  ([0-9A-Z]{5}):", echunks[k + 1]) for k in range(1, len(echunks), 2)}
    bad = 0
    for n, (head, sql, expected) in enumerate(recs):
        got = answers.get(n, [])
        if "rowsort" in head:
            got, expected = sorted(got), sorted(expected)
        e = (errors.get(n) or [None])[0]
        if head.startswith("statement ok") and e:
            bad += 1
            print(f"--- {sql}\nwant ok, got error {e}")
        if head.startswith("statement error"):
            code = re.search(r"\((\w{5})\)", head)
            if code and e != code.group(1):
                bad += 1
                print(f"--- {sql}\nwant error {code.group(1)}, got {e}")
            continue
        if head.startswith("query") and got != expected:
            bad += 1
            print(f"--- {sql}\nwant {expected}\ngot  {got}")
    print(f"{len(recs)} records, {bad} differ")
    sys.exit(1 if bad else 0)


main()
