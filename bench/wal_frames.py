#!/usr/bin/env python3
"""What the broker's commits write: reads a copy of an SQLite WAL file and prints the frames
per commit, classified by the content of each page (docs/performance.md, "Contract
negotiation").

    build-release/bench/dsx_negotiation_bench --negotiations=30000 --reps=1 --dir=/tmp/nb &
    sleep 10; cp /tmp/nb/dsx-negotiation-bench-*/data/broker.db-wal /tmp/wal.copy; wait
    python3 bench/wal_frames.py /tmp/wal.copy

The classes are guesses from the bytes (the broker's tables hold recognisable JSON); a frame's
page is its content at that commit. Figures only: it judges nothing.
"""
import collections
import struct
import sys


def classify(pgno, page):
    if pgno == 1:
        return "page 1 (header, schema)"
    kind = {0x0D: "leaf-table", 0x05: "interior-table", 0x0A: "leaf-index",
            0x02: "interior-index"}.get(page[0])
    if kind is None:
        return "all zeros (a freed page)" if not any(page) else "freelist or overflow"
    if kind == "leaf-table":
        if b'"type":"negotiation.' in page:
            return "event rows"
        if b"FINALIZED" in page or b"REQUESTED" in page or b"AGREED" in page:
            return "negotiation rows"
        if b'"@type":"Agreement"' in page:
            return "agreement rows"
        if b'"action":' in page and b'"actor":' in page:
            return "log-outbox rows"
        if b"log_outbox" in page:
            return "sqlite_sequence"
        return "other table rows"
    if kind == "leaf-index":
        if b"consumer-" in page and b"urn:uuid" in page:
            return "index (consumer, consumerPid)"
        if b"urn:dsx:participant:" in page and b"urn:uuid" not in page:
            return "index of participants (events, negotiations)"
        if b"urn:uuid" in page:
            return "index of uuid keys"
        return "other index"
    return kind


def main(path):
    data = open(path, "rb").read()
    if len(data) < 32:
        sys.exit(f"{path}: not a WAL file")
    _, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", data[:32])
    frames, off = [], 32
    while off + 24 + page_size <= len(data):
        pgno, db_size, s1, s2 = struct.unpack(">IIII", data[off:off + 16])
        if (s1, s2) != (salt1, salt2):
            break  # frames of an earlier generation of the WAL
        frames.append((pgno, db_size, data[off + 24:off + 24 + page_size]))
        off += 24 + page_size
    commits = sum(1 for f in frames if f[1])
    if not commits:
        sys.exit(f"{path}: no committed frames")
    print(f"{len(frames)} frames of {page_size} bytes, {commits} commits, "
          f"{len(frames) / commits:.1f} frames per commit")
    counts = collections.Counter(classify(p, page) for p, _, page in frames)
    for name, n in counts.most_common():
        print(f"{n / commits:7.2f} per commit  {name}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: wal_frames.py WAL-FILE")
    main(sys.argv[1])
