#!/usr/bin/python3
"""The cases of bench/deferred.c, measured on Twisted's twisted.internet.defer.

  case 1  create a Deferred, add 10 callbacks, fire it, free it (ns per cycle)
  case 2  a chain of N Deferreds, each one's callback returning the next,
          resolved by firing the last one (ns per link)
  case 3  a DeferredList over M already-fired Deferreds, fired and freed
          (ns per input)

Each case runs once to warm up, then several times; the figure printed is the
best (smallest) run, with the median beside it as a comment. As with timeit,
the cyclic garbage collector is off while a run is timed (none of these
objects form cycles that outlive a run; reference counting frees them).
Output is one "key value" line per figure, "#" lines are for people:

    case1_ns 4567.8

Case 2 keeps N at 1,000,000 when one run is estimated to take under
CHAIN_BUDGET_S seconds, and otherwise measures the largest power of ten that
fits and says so ("case2_links" gives the N measured).

Usage: deferred-twisted.py [--quick]
"""

import gc
import statistics
import sys
import time

import twisted
from twisted.internet.defer import Deferred, DeferredList, succeed

CASE1_CALLBACKS = 10
CHAIN_LINKS = 1_000_000
CHAIN_PROBE_LINKS = 100_000
CHAIN_BUDGET_S = 60.0
LIST_INPUTS = 100_000

# Many short runs rather than a few long ones: on a shared machine the best of
# them is the one least disturbed by neighbours.
FULL_SIZES = dict(case1_cycles=20_000, case1_runs=21, case2_runs=5,
                  case3_runs=15, quick=False)
QUICK_SIZES = dict(case1_cycles=10_000, case1_runs=3, case2_runs=1,
                   case3_runs=3, quick=True)


def check(ok, what):
    if not ok:
        sys.exit("deferred-twisted benchmark: wrong result: " + what)


# Case 1 ---------------------------------------------------------------------

def add_one(value):
    return value + 1


CALLBACKS = (add_one,) * CASE1_CALLBACKS


def run_case1(cycles):
    t0 = time.perf_counter()
    for i in range(cycles):
        d = Deferred()
        for cb in CALLBACKS:
            d.addCallback(cb)
        d.callback(i)
        check(d.result == i + CASE1_CALLBACKS, "case 1 chain value")
        del d
    return (time.perf_counter() - t0) * 1e9 / cycles


# Case 2 ---------------------------------------------------------------------

def return_next(_, following):
    """The chain goes on with the result of `following`, the next link."""
    return following


def run_case2(n):
    """Builds the chain, fires every link but the last (each then waits on
    its successor), fires the last, which resolves the whole chain back to
    the first, and frees everything."""
    t0 = time.perf_counter()
    links = [Deferred() for _ in range(n)]
    for i in range(n - 1):
        links[i].addCallback(return_next, links[i + 1])
    for i in range(n - 1):
        links[i].callback(None)
    check(isinstance(links[0].result, Deferred), "case 2 chain resolved too early")
    links[n - 1].callback(42)
    check(links[0].result == 42, "case 2 chain value")
    del links
    return (time.perf_counter() - t0) * 1e9 / n


# Case 3 ---------------------------------------------------------------------

def run_case3(n):
    t0 = time.perf_counter()
    inputs = [succeed(i) for i in range(n)]
    dl = DeferredList(inputs)
    check(dl.called and len(dl.result) == n and dl.result[-1] == (True, n - 1),
          "case 3 list entries")
    del dl, inputs
    return (time.perf_counter() - t0) * 1e9 / n


# Measuring --------------------------------------------------------------------

def timed(run, n):
    gc.collect()
    gc.disable()
    try:
        return run(n)
    finally:
        gc.enable()


def measure(key, what, run, n, runs, warm_up=True):
    """One warm-up run (unless told otherwise), then `runs` runs; prints the
    best as "<key>_ns"."""
    if warm_up:
        timed(run, n)
    times = sorted(timed(run, n) for _ in range(runs))
    print(f"# {what}: best of {runs} runs, median {statistics.median(times):.1f} ns, "
          f"worst {times[-1]:.1f} ns")
    print(f"{key}_ns {times[0]:.1f}")
    sys.stdout.flush()


def chain_links(quick):
    """The N for case 2: 1,000,000 when a run fits the budget, else less.
    Measuring the probe also warms case 2 up."""
    probe_ns = timed(run_case2, CHAIN_PROBE_LINKS)
    if quick:
        return CHAIN_PROBE_LINKS, probe_ns
    n = CHAIN_LINKS
    while n > CHAIN_PROBE_LINKS and probe_ns * n / 1e9 > CHAIN_BUDGET_S:
        n //= 10
    return n, probe_ns


def main(argv):
    sizes = FULL_SIZES
    for arg in argv[1:]:
        if arg == "--quick":
            sizes = QUICK_SIZES
        else:
            print(f"usage: {argv[0]} [--quick]", file=sys.stderr)
            return 0 if arg == "--help" else 2

    print("# Twisted Deferred benchmark, ns per operation, best of several runs")
    print(f"# Twisted {twisted.__version__}, Python {sys.version.split()[0]}")
    print(f"case1_cycles {sizes['case1_cycles']}")
    measure("case1", "create + 10 callbacks + fire + free", run_case1,
            sizes["case1_cycles"], sizes["case1_runs"])

    links, probe_ns = chain_links(sizes["quick"])
    if links != CHAIN_LINKS:
        reason = "quick run" if sizes["quick"] else \
            f"1,000,000 links would take about {probe_ns * CHAIN_LINKS / 1e9:.0f} s a run"
        print(f"# case 2 measured with {links:,} links, not {CHAIN_LINKS:,} ({reason})")
    print(f"case2_links {links}")
    measure("case2", "chain, per link", run_case2, links, sizes["case2_runs"],
            warm_up=False)      # the probe has warmed it up

    print(f"case3_inputs {LIST_INPUTS}")
    measure("case3", "DeferredList, per input", run_case3, LIST_INPUTS,
            sizes["case3_runs"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
