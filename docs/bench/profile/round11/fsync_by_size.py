"""fdatasync latency by write size, 1 and 3 writers at once (PROFILE.md, eleventh round).

Each writer overwrites a file written full beforehand (as the WAL segments are
preallocated) with SIZE bytes, then fdatasyncs, 400 times.
`python3 docs/bench/profile/round11/fsync_by_size.py [DIR]` (DIR on the data dirs' filesystem).
"""

import multiprocessing as mp
import os
import sys
import time

N = 400


def worker(size, path, q, b):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"\0" * (size * (N + 10) + 4096))
    os.fsync(fd)
    os.lseek(fd, 0, os.SEEK_SET)
    b.wait()
    lat = []
    for _ in range(N):
        os.write(fd, b"x" * size)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1e3)
    os.close(fd)
    os.unlink(path)
    q.put(lat)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    for size in (300, 6600, 11000, 14100, 28000):
        for k in (1, 3):
            q, b = mp.Queue(), mp.Barrier(k)
            ps = [mp.Process(target=worker, args=(size, os.path.join(d, f"fsync-size-{os.getpid()}-{i}"), q, b))
                  for i in range(k)]
            for p in ps:
                p.start()
            lat = []
            for _ in ps:
                lat += q.get()
            for p in ps:
                p.join()
            lat.sort()
            print(f"size {size:6} k={k}: p50 {lat[len(lat) // 2]:.3f} p90 {lat[int(len(lat) * .9)]:.3f}")


if __name__ == "__main__":
    main()
