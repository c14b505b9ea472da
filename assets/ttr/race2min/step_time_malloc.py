"""The malloc lever in isolation (issue 24, 2026-12-07): step_time.py at batch 16 after
mallopt settings chosen by the argument: none, trim (M_TRIM_THRESHOLD 1 GiB and M_TOP_PAD
64 MiB), mmap (M_MMAP_THRESHOLD 32 MiB) or all. Interleave them in separate processes:
    for m in none trim mmap all; do /usr/bin/time -f "%e s %R minflt $m" \
        python assets/ttr/race2min/step_time_malloc.py $m; done
(The first pairs were measured with MALLOC_TRIM_THRESHOLD_/MALLOC_TOP_PAD_/MALLOC_MMAP_THRESHOLD_
in the environment of step_time.py 16, with the same effect.)"""
import ctypes, sys, os
mode = sys.argv[1]
libc = ctypes.CDLL("libc.so.6")
if mode in ("trim", "all"):
    print("trim", libc.mallopt(-1, 1 << 30), "pad", libc.mallopt(-2, 64 << 20), end=" ")
if mode in ("mmap", "all"):
    print("mmap", libc.mallopt(-3, 32 << 20), end=" ")
sys.argv = ["x", "16"]
exec(open(os.path.join(os.path.dirname(__file__), "step_time.py")).read())
