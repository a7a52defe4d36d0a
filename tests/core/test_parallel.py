"""bounded_results: every item once, in order when asked, never more than the window in flight."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from iaa_desktop.core.parallel import bounded_results


def _submit_tracking(state):
    def task(x):
        with state["lock"]:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        time.sleep(0.002 * (x % 3))
        with state["lock"]:
            state["running"] -= 1
        if x == 13:
            raise ValueError("bad item 13")
        return x * x

    def submit(pool, item):
        state["submitted"] += 1
        return pool.submit(task, item)

    return submit


def _state():
    return {"lock": threading.Lock(), "running": 0, "peak": 0, "submitted": 0}


def test_ordered_and_unordered_give_every_result_within_the_window():
    with ThreadPoolExecutor(4) as pool:
        state = _state()
        ordered = list(bounded_results(pool, range(12), _submit_tracking(state), 3, ordered=True))
        assert ordered == [(x, x * x) for x in range(12)]
        assert state["peak"] <= 3
        unordered = list(bounded_results(pool, range(12), _submit_tracking(_state()), 5))
        assert sorted(unordered) == [(x, x * x) for x in range(12)]


def test_errors_surface_and_closing_stops_submitting():
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(ValueError, match="bad item 13"):
            list(bounded_results(pool, range(20), _submit_tracking(_state()), 2, ordered=True))
        state = _state()
        results = bounded_results(pool, range(1000), _submit_tracking(state), 4)
        next(results)
        results.close()
        assert state["submitted"] <= 5  # the window plus the one that refilled it
