"""Syncs release the GIL: several threads sync at once while another thread keeps running
Python code, never stalled for the length of a sync."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Dict, List

import usersync

from conftest import Slapd

PEOPLE = 1500


def test_syncs_in_threads_leave_python_running(slapd: Slapd, tmp_path: Path) -> None:
    slapd.add_people("crowd", [f"p{i:04}" for i in range(PEOPLE)], group="everyone")
    configs = []
    for n in range(3):
        home = tmp_path / f"t{n}"
        home.mkdir()
        configs.append(usersync.SyncConfig.from_file(slapd.config(f"crowd{n}", "crowd", home)))

    stop = threading.Event()
    ticks = 0
    longest_gap = 0.0

    def ticker() -> None:
        nonlocal ticks, longest_gap
        last = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            longest_gap = max(longest_gap, now - last)
            last = now
            ticks += 1
            sum(range(100))  # some Python work between ticks

    durations: Dict[int, float] = {}
    ticks_during: Dict[int, int] = {}
    failures: List[BaseException] = []

    def run(n: int) -> None:
        try:
            started, ticks_before = time.perf_counter(), ticks
            report = usersync.sync(configs[n], tmp_path / f"t{n}" / "usersync.db")
            durations[n] = time.perf_counter() - started
            ticks_during[n] = ticks - ticks_before
            assert report.applied == {"create": PEOPLE + 1, "add_members": 1}
        except BaseException as e:  # reported below, on the test's thread
            failures.append(e)

    tick = threading.Thread(target=ticker)
    tick.start()
    time.sleep(0.05)
    workers = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    tick.join()

    assert not failures, failures
    # Holding the GIL through a sync would stall the ticker for the whole sync: it kept
    # running all along instead (gaps are the scheduler's: 2 cores, 3 syncs and slapd).
    print(f"syncs {durations}, ticks during each {ticks_during}, longest gap {longest_gap:.3f} s")
    assert all(t > 1000 for t in ticks_during.values()), ticks_during
    assert longest_gap < min(durations.values()) / 2, (longest_gap, durations)
    for n in range(3):
        counts = usersync.open(tmp_path / f"t{n}" / "usersync.db").user_counts(f"crowd{n}")
        assert counts == {"active": PEOPLE, "inactive": 0}
