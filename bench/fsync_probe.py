#!/usr/bin/env python3
"""How long one small durable log write takes on this disk, by method.

Each method appends 120-byte records to a 16 MiB file, one durable write per
record, as a single-client commit loop does:
  buffered+fdatasync  pwrite, then fdatasync (space reserved with posix_fallocate)
  zeroed+fdatasync    the same into space that was written with zeros first
  page+fdatasync      PostgreSQL's pattern: rewrite the current 8 KiB page, fdatasync
  direct+dsync        O_DIRECT|O_DSYNC, rewriting the current 4 KiB block, into zeroed space
  direct+dsync/falloc the same into posix_fallocate'd space
  direct+dsync/512, direct+dsync/8192
                      direct+dsync writing 512-byte or 8 KiB blocks instead of 4 KiB
                      (is a smaller log record's write any faster?)

    python3 bench/fsync_probe.py [DIR]     # DIR defaults to the current directory

Then the same write from each CPU in turn (the process pinned to it): where
one CPU takes the disk's completion interrupts (a single-queue virtio disk),
a sync issued from another CPU waits for two cross-CPU wake-ups per write.
"""
import mmap, os, sys, time

N, REC, SIZE = 3000, 120, 16 << 20

def run(name, d):
    path = os.path.join(d, f".fsync_probe_{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    if "falloc" in name or name == "buffered+fdatasync":
        os.posix_fallocate(fd, 0, SIZE)
    else:
        os.write(fd, b"\0" * SIZE)
    os.fsync(fd)
    os.close(fd)
    direct = name.startswith("direct")
    fd = os.open(path, os.O_RDWR | ((os.O_DIRECT | os.O_DSYNC) if direct else 0))
    size = int(name.rsplit("/", 1)[1]) if name.rsplit("/", 1)[-1].isdigit() else 4096
    block = mmap.mmap(-1, 8192)  # page-aligned, as O_DIRECT needs
    block.write(b"x" * 8192)
    block = memoryview(block)[:size]
    t = time.perf_counter()
    for i in range(N):
        off = i * REC
        if direct:
            os.pwritev(fd, [block], off // size * size)
        elif name.startswith("page"):
            page = off // 8192 * 8192
            os.pwrite(fd, b"x" * (off - page + REC), page)
            os.fdatasync(fd)
        else:
            os.pwrite(fd, b"x" * REC, off)
            os.fdatasync(fd)
    dt = time.perf_counter() - t
    os.close(fd)
    os.unlink(path)
    print(f"{name:22s} {dt / N * 1e6:8.1f} us per durable write")

def measure(name, d, prefix=""):
    print(prefix, end="")
    try:
        run(name, d)
    except OSError as e:
        print(f"{name:22s} not supported here: {e}")

d = sys.argv[1] if len(sys.argv) > 1 else "."
for name in ["buffered+fdatasync", "zeroed+fdatasync", "page+fdatasync", "direct+dsync", "direct+dsync/falloc"]:
    measure(name, d)

cpus = sorted(os.sched_getaffinity(0))
if len(cpus) > 1:
    for cpu in cpus:
        os.sched_setaffinity(0, {cpu})
        for name in ["page+fdatasync", "direct+dsync", "direct+dsync/512", "direct+dsync/8192"]:
            measure(name, d, f"cpu {cpu}: ")
    os.sched_setaffinity(0, set(cpus))
