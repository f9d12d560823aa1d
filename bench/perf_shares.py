#!/usr/bin/env python3
"""Where the broker's time goes, from a perf profile with call graphs: each sample of the given
threads is put in the first category whose function is on its stack (docs/performance.md,
"Contract negotiation", "Where the time goes now").

    perf record -F 400 --call-graph dwarf,16384 -o /tmp/nb.data -- \\
        build-release/bench/dsx_negotiation_bench --negotiations=8000 --reps=1 --baseline=10 --alone=0
    perf script -i /tmp/nb.data > /tmp/nb.txt
    python3 bench/perf_shares.py /tmp/nb.txt dsx_negotiatio,broker-io    # the broker's threads
    python3 bench/perf_shares.py /tmp/nb.txt                             # samples per thread name

The first argument is perf script's output; the second, thread names (comm) to count: the
broker's workers, committer and log writer carry the binary's name (truncated to 15
characters), its I/O threads are broker-io. Figures only.
"""
import collections
import re
import sys

# In order: a sample goes to the first that is on its stack.
CATEGORIES = [
    ("SqliteStore::commit_loop", "committer"),
    ("Log::Impl::write_loop", "log writer"),
    ("checkpoint_loop", "checkpointer"),
    ("SqliteStore::commit ", "commit wait (worker)"),
    ("Negotiations::receive", "route: receive"),
    ("Negotiations::request", "route: request"),
    ("Router::dispatch", "route: other"),
    ("channel_reader", "channel read"),
    ("Server::Impl::channel", "channel write"),
    ("SSL_write", "tls write"),
    ("SSL_read", "tls read"),
    ("Server::Impl::session", "session other"),
    ("scheduler::run", "asio other"),
]


def samples(path):
    """(thread name, stack of function names, leaf first) for each sample."""
    comm, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None and stack:
                    yield comm, stack
                comm, stack = None, []
            elif line[0] not in " \t":
                comm = line.split()[0]
            else:
                parts = line.strip().split(" ", 1)
                if len(parts) == 2:
                    name = parts[1].rsplit(" (", 1)[0].replace("(anonymous namespace)", "anon")
                    name = re.sub(r"\+0x[0-9a-f]+$", "", name)
                    stack.append(re.sub(r"\(.*", "", name) + " ")
    if comm is not None and stack:
        yield comm, stack


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    counts, total = collections.Counter(), 0
    if len(sys.argv) == 2:
        for comm, _ in samples(sys.argv[1]):
            counts[comm] += 1
            total += 1
    else:
        wanted = set(sys.argv[2].split(","))
        for comm, stack in samples(sys.argv[1]):
            if comm not in wanted:
                continue
            total += 1
            joined = " ".join(stack)
            name = next((n for pattern, n in CATEGORIES if pattern in joined), None)
            counts[name or "other: " + stack[-1][:40]] += 1
    print("samples", total)
    try:
        for name, n in counts.most_common(30):
            print(f"{100 * n / max(total, 1):6.2f}% {name}")
    except BrokenPipeError:  # piped into head
        pass


if __name__ == "__main__":
    main()
