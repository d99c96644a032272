"""Run the differential tester: random valid programs, symdiff.grad against finite differences.

    python3 scripts/difftest.py --count 20000 --seed 0 [--jobs 2] [--family all|scalar,...] [--out DIR]
                                [--transform grad|jvp|hvp]

--transform jvp checks symdiff.jvp along a random tangent against the finite-difference gradient;
hvp checks symdiff.hvp (programs differentiating one array or float) against central differences
of symdiff.grad.

Programs get seeds seed..seed+count-1 and families round-robin. Prints counts by class and
family, writes every failure as a runnable .py file (the first few of each kind minimised) under --out, and exits with
status 1 if any program is wrong, internal, mutated or hung.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import difftest  # noqa: E402

MINIMISED: Counter = Counter()  # failures minimised so far in this process, by signature
MINIMISE_PER_SIGNATURE = 1


def signature(family: str, outcome: difftest.Outcome) -> tuple:
    """Failures that probably share a cause: the exception (names and numbers dropped), or the
    class, stage and family of a wrong gradient."""
    if outcome.cls in ("internal", "refused"):
        return outcome.cls, re.sub(r"[%\w/.]*\d[\w/.]*|'[^']*'", "#", outcome.detail)[:80]
    return outcome.cls, outcome.stage, family


def run_one(job: tuple) -> tuple:
    """(seed, family, class, stage, detail, reproducer source or None) of one program."""
    seed, family, minimise_budget, transform = job
    try:
        program = difftest.generate(seed, family)
    except Exception as e:  # noqa: BLE001 - a generator failure is reported, not fatal
        return seed, family, "generator", "", f"{type(e).__name__}: {e}", None
    outcome = difftest.check_transform(program, transform)
    text = None
    if outcome.cls in difftest.FAILURES:
        sig = signature(family, outcome)
        MINIMISED[sig] += 1
        small = program
        if transform != "grad":  # (the minimiser checks with grad)
            minimise_budget = 0
        if outcome.cls == "hang":  # every try of a hanging candidate costs the whole time limit
            if minimise_budget and MINIMISED[sig] <= 1:
                small = difftest.minimise(program, budget=min(minimise_budget, 8))
        elif minimise_budget and MINIMISED[sig] <= MINIMISE_PER_SIGNATURE:
            small = difftest.minimise(program, budget=minimise_budget)
        final = difftest.check_transform(small, transform)
        if final.key != outcome.key:  # minimising drifted: keep the original
            small, final = program, outcome
        text = difftest.reproducer(small, final)
    return seed, family, outcome.cls, outcome.stage, outcome.detail, text


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--family", default="all", help="all, or a comma-separated list of " + ", ".join(difftest.FAMILIES))
    ap.add_argument("--out", default=None, help="directory for the failing programs")
    ap.add_argument("--minimise-budget", type=int, default=50, help="checks spent minimising each failure (0: none)")
    ap.add_argument("--transform", default="grad", choices=difftest.TRANSFORMS)
    args = ap.parse_args(argv)

    families = list(difftest.FAMILIES) if args.family == "all" else args.family.split(",")
    unknown = [f for f in families if f not in difftest.FAMILIES]
    if unknown:
        ap.error(f"unknown families {unknown}")
    jobs = [(args.seed + k, families[k % len(families)], args.minimise_budget, args.transform)
            for k in range(args.count)]
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    counts: Counter = Counter()
    details: Counter = Counter()
    start = time.time()
    if args.jobs > 1:
        import multiprocessing

        pool = multiprocessing.Pool(args.jobs)
        results = pool.imap_unordered(run_one, jobs, chunksize=4)
    else:
        pool, results = None, map(run_one, jobs)
    for done, (seed, family, cls, stage, detail, text) in enumerate(results, 1):
        counts[family, cls] += 1
        if cls not in ("pass", "skipped"):
            details[cls, stage, re.sub(r"\S+\.py:\d+(:\d+)?", "<file>", detail.split("\n")[0])[:160]] += 1
        if text is not None and args.out:
            with open(os.path.join(args.out, f"{cls}_{family}_{seed}.py"), "w") as fh:
                fh.write(text)
        if done % 1000 == 0:
            bad = sum(n for (_, c), n in counts.items() if c in difftest.FAILURES)
            print(f"[{done}/{len(jobs)}] {time.time() - start:.0f} s, {bad} failures", flush=True)
    if pool is not None:
        pool.close()
        pool.join()

    classes = [c for c in (*difftest.CLASSES, "unstable", "generator") if any(k[1] == c for k in counts)]
    width = max(len(f) for f in families) + 2
    print("\n" + "family".ljust(width) + "".join(c.rjust(10) for c in classes) + "total".rjust(10))
    for fam in families:
        row = [counts[fam, c] for c in classes]
        print(fam.ljust(width) + "".join(str(n).rjust(10) for n in row) + str(sum(row)).rjust(10))
    totals = [sum(counts[f, c] for f in families) for c in classes]
    print("all".ljust(width) + "".join(str(n).rjust(10) for n in totals) + str(sum(totals)).rjust(10))
    print(f"\n{time.time() - start:.0f} s")
    if details:
        print("\nmost common non-passing details:")
        for (cls, stage, detail), n in details.most_common(40):
            print(f"{n:6d}  {cls:9s} {stage:26s} {detail}")
    failed = sum(counts[f, c] for f in families for c in (*difftest.FAILURES, "generator"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
