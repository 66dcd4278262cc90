"""How long one fdatasync takes on this disk, alone and with others at once.

K processes each write 300 bytes and fdatasync, N times, all at once, first
appending to a growing file (as the WALs do today), then overwriting a file
that was written full beforehand (preallocated). Prints p50/p90/p99 per K.
Run by docs/bench/profile.sh; `python3 docs/bench/fsync_probe.py [DIR]`.
With --by-size, instead: preallocated, writes of 300 bytes to 28 KB, 1 and 3
writers at once (PROFILE.md, eleventh round):
`python3 docs/bench/fsync_probe.py DIR --by-size`.
"""

import multiprocessing as mp
import os
import sys
import time

N = 400


def worker(mode, path, q, barrier, size=300):
    if mode == "append":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"\0" * (max(size, 4096) * (N + 10)))
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
    barrier.wait()
    lat = []
    for _ in range(N):
        os.write(fd, b"x" * size)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1e3)
    os.close(fd)
    os.unlink(path)
    q.put(lat)


def at_once(k, mode, d, size=300):
    """The sorted fdatasync latencies (ms) of k writers at once."""
    q, b = mp.Queue(), mp.Barrier(k)
    ps = [mp.Process(target=worker, args=(mode, os.path.join(d, f"fsync-probe-{os.getpid()}-{i}"), q, b, size))
          for i in range(k)]
    for p in ps:
        p.start()
    lat = []
    for _ in ps:
        lat += q.get()
    for p in ps:
        p.join()
    lat.sort()
    return lat


def pick(lat, f):
    """The f-quantile of sorted latencies."""
    return lat[min(len(lat) - 1, int(len(lat) * f))]


def main():
    args = [a for a in sys.argv[1:] if a != "--by-size"]
    d = args[0] if args else "/tmp"
    if "--by-size" in sys.argv[1:]:
        for size in (300, 6600, 11000, 14100, 28000):
            for k in (1, 3):
                lat = at_once(k, "prealloc", d, size)
                print(f"size {size:6} k={k}: p50 {pick(lat, 0.5):.3f} p90 {pick(lat, 0.9):.3f}")
        return
    for mode in ("append", "prealloc"):
        for k in (1, 3, 5):
            lat = at_once(k, mode, d)
            print(f"{mode:<9} {k} at once: fdatasync p50 {pick(lat, 0.5):.3f} ms  p90 {pick(lat, 0.9):.3f} ms  "
                  f"p99 {pick(lat, 0.99):.3f} ms  max {lat[-1]:.3f} ms")


if __name__ == "__main__":
    main()
