"""CPU threads that survive a shared machine: pick the torch thread count that is fastest now.

On a 2-core laptop, torch's default of one thread per core is fastest while nothing else runs,
and collapses (measured: 20x slower) as soon as one other process keeps a core busy: the threads
of a parallel matmul wait for each other. One thread does not wait. No count is best everywhere,
so the package measures: `ThreadTuner` times the first training steps with each candidate count,
keeps the fastest, says what it chose, and measures again when the steps get much slower than
they were (someone started a browser, a second notebook). `fastest_threads` does the same once
for a sampling loop.

`DIT_MINI_THREADS=N` (or `--threads N`, `fit(threads=N)`) fixes the count and turns the tuning
off; runs then repeat bit for bit, which a changing thread count does not promise.

Used by `dit_mini.train.trainer.fit` and `dit_mini.train.recipes.sample_images` on the CPU;
measured by `dit-mini bench --under-load K`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

__all__ = [
    "THREADS_ENV",
    "requested_threads",
    "available_cores",
    "thread_candidates",
    "fastest_threads",
    "ThreadTuner",
]

THREADS_ENV = "DIT_MINI_THREADS"
_NOTED: set[int] = set()  # thread counts already capped with a note
PROBE_STEPS = 3  # timed steps per candidate (the first step of a run is a warm-up, not timed)
GIVE_UP = 2.0  # a candidate whose step takes this many times the best one is dropped at once
SLOWDOWN = 1.6  # re-measure when recent steps take this many times the chosen step time
RECHECK_EVERY = 50  # steps between two measurements at least


def requested_threads(threads: int | None = None) -> int | None:
    """The thread count asked for: `threads`, else $DIT_MINI_THREADS, else None (tune)."""
    if threads is None and os.environ.get(THREADS_ENV, "").strip():
        raw = os.environ[THREADS_ENV].strip()
        if not raw.isdigit():
            raise ValueError(f"{THREADS_ENV}={raw!r} must be a positive integer (or unset)")
        threads = int(raw)
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads} must be >= 1 (or left out to let dit-mini choose)")
    cores = available_cores()
    if threads is not None and threads > cores:
        if threads not in _NOTED:  # once per count, not once per call
            _NOTED.add(threads)
            print(
                f"note: {threads} threads asked for but this process may use {cores} CPU "
                f"core(s); using {cores} (more threads than cores wait for each other and make "
                "every step many times slower)",
                file=sys.stderr,
            )
        threads = cores
    return threads


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask), else os.cpu_count()."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_candidates(most: int | None = None) -> list[int]:
    """The counts worth trying: 1, half the cores and all of them (no repeats)."""
    most = most or os.cpu_count() or 1
    return sorted({1, max(1, most // 2), most})


def fastest_threads(fn: Callable[[], object], candidates: list[int], repeats: int = 2) -> dict:
    """Time `fn` with each thread count (best of `repeats` after one warm-up call); set the
    fastest and return {'threads': best, 'seconds': {count: time}}."""
    seconds = {}
    for n in candidates:
        torch.set_num_threads(n)
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        seconds[n] = min(times)
    best = min(seconds, key=seconds.get)
    torch.set_num_threads(best)
    return {"threads": best, "seconds": seconds}


class ThreadTuner:
    """Chooses torch's thread count during a loop of similar steps (training).

    Call `before_step()` and `after_step(seconds)` around every step, `close()` at the end (the
    count found before the loop comes back). `fixed` turns tuning off. `history` lists every
    choice as (step, threads, {count: median seconds per step}).
    """

    def __init__(self, fixed: int | None = None, quiet: bool = False, most: int | None = None):
        self.saved = torch.get_num_threads()
        self.fixed, self.quiet = fixed, quiet
        self.candidates = thread_candidates(most or self.saved)
        self.history: list[tuple[int, int, dict]] = []
        self.step = 0
        self.queue: list[int] = []  # thread counts still to time in this measurement
        self.times: dict[int, list[float]] = {}
        self.chosen = fixed or self.saved
        self.best_seconds: float | None = None
        self.recent: list[float] = []
        self.last_probe = 0
        if fixed is not None:
            torch.set_num_threads(fixed)
        elif len(self.candidates) > 1:
            self._start_probe()

    def _start_probe(self) -> None:
        self.queue = [n for n in self.candidates for _ in range(PROBE_STEPS)]
        self.times = {n: [] for n in self.candidates}
        self.last_probe = self.step

    def before_step(self) -> None:
        if self.queue and self.step > 0:  # step 0 warms up caches at the current count
            torch.set_num_threads(self.queue[0])

    def after_step(self, seconds: float) -> None:
        self.step += 1
        if self.step == 1 or self.fixed is not None:
            return
        if self.queue:
            n = self.queue.pop(0)
            self.times[n].append(seconds)
            done = [min(ts) for m, ts in self.times.items() if m != n and len(ts) == PROBE_STEPS]
            if done and seconds > GIVE_UP * min(done):  # hopeless: do not pay for more steps
                self.queue = [m for m in self.queue if m != n]
            if not self.queue:
                self._choose()
            return
        self.recent = (self.recent + [seconds])[-PROBE_STEPS * 2 :]
        slow = self.best_seconds and statistics.median(self.recent) > SLOWDOWN * self.best_seconds
        if slow and self.step - self.last_probe >= RECHECK_EVERY and len(self.recent) >= 4:
            self.recent = []
            self._start_probe()

    def _choose(self) -> None:
        medians = {n: statistics.median(t) for n, t in self.times.items() if t}
        self.chosen = min(medians, key=medians.get)
        self.best_seconds = medians[self.chosen]
        torch.set_num_threads(self.chosen)
        first = not self.history
        self.history.append((self.step, self.chosen, medians))
        if not self.quiet:
            timing = ", ".join(f"{n}: {1000 * s:.0f} ms" for n, s in sorted(medians.items()))
            why = "" if first else " (steps had slowed down: measured again)"
            print(
                f"dit-mini: training with {self.chosen} torch thread(s){why}; "
                f"time per step by thread count: {timing}. Fix it with {THREADS_ENV}=N"
            )

    def close(self) -> None:
        torch.set_num_threads(self.saved)
