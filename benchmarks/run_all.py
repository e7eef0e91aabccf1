"""Run every benchmark (`make bench`), then rewrite the results summary in benchmarks/README.md from the result files.

    .venv/bin/python benchmarks/run_all.py                   # everything: ~10 min quiet, 2-3x that when shared
    .venv/bin/python benchmarks/run_all.py --quick           # smoke run of every script (results in a temp folder)
    .venv/bin/python benchmarks/run_all.py --only latency    # a subset
    .venv/bin/python benchmarks/run_all.py --summary-only    # only rebuild the README summary

Each script runs in its own process (so one failing does not stop the others, and timings of one are not
disturbed by memory another left behind). bench_widgets.py (owned by the widgets engineer) runs too when it exists,
with its own defaults; it has no smoke mode, so --quick skips it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchkit  # noqa: E402

from course.files import atomic_write_bytes  # noqa: E402

#: Scripts in the order they run; bench_widgets.py (owned elsewhere) is appended when present.
SCRIPTS = ("latency", "criteria", "targets", "compression", "transformers")
README = HERE / "README.md"
START, END = "<!-- results:start (written by run_all.py) -->", "<!-- results:end -->"


def scripts(only: list[str] | None = None) -> list[str]:
    """The benchmark names to run: SCRIPTS plus "widgets" when bench_widgets.py exists, filtered by `only`."""
    names = list(SCRIPTS) + (["widgets"] if (HERE / "bench_widgets.py").is_file() else [])
    if only:
        unknown = set(only) - set(names)
        if unknown:
            raise ValueError(f"unknown benchmarks {sorted(unknown)}; choose from {names}")
        names = [n for n in names if n in only]
    return names


def run(name: str, extra: list[str]) -> tuple[int, float]:
    """Run benchmarks/bench_NAME.py with this interpreter; (exit code, seconds)."""
    start = time.perf_counter()
    print(f"\n=== bench_{name}.py {' '.join(extra)}", flush=True)
    code = subprocess.call([sys.executable, str(HERE / f"bench_{name}.py"), *extra], cwd=HERE.parent)
    seconds = time.perf_counter() - start
    print(f"=== bench_{name}.py: exit {code}, {seconds / 60:.1f} min", flush=True)
    return code, seconds


def summary_markdown(results: Path) -> str:
    """The README's results section: one row per headline number of each result file, with when and how loaded."""
    lines = ["| benchmark | measure | result |", "|---|---|---|"]
    runs = []
    for name in SCRIPTS:
        path = results / f"{name}.json"
        if not path.is_file():
            lines.append(f"| {name} | – | not run yet (`.venv/bin/python benchmarks/bench_{name}.py`) |")
            continue
        data = json.loads(path.read_text())
        meta = data["meta"]
        runs.append(f"[{name}](results/{name}.md): {meta['date']}, {meta['wall_s'] / 60:.1f} min, "
                    f"{meta['threads']} thread(s), load average {meta.get('load_start')} → {meta['load_avg_1m']}"
                    + (" (quick smoke run)" if meta.get("quick") else ""))
        for row in data["summary"]:
            lines.append(f"| [{name}](results/{name}.md) | {row['measure']} | {row['result']} |")
    if (results / "widgets.md").is_file():
        lines.append("| [widgets](results/widgets.md) | see the file | – |")
    return "\n".join(lines) + "\n\nRuns:\n\n" + "\n".join(f"- {r}" for r in runs) + "\n"


def write_summary(results: Path = benchkit.RESULTS_DIR, readme: Path = README) -> str:
    """Replace the text between the START and END markers of `readme` with `summary_markdown(results)`."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no results markers; add the lines {START!r} and {END!r}")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{START}\n{summary_markdown(results)}{END}{tail}"
    atomic_write_bytes(readme, new.encode())
    return new


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run of every script; README left unchanged")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every script (default 1)")
    p.add_argument("--only", default="", help=f"comma-separated subset of {list(SCRIPTS) + ['widgets']}")
    p.add_argument("--summary-only", action="store_true", help="only rebuild the README summary")
    args = p.parse_args(argv)
    failed: list[str] = []
    if not args.summary_only:
        extra = ["--threads", str(args.threads)] + (["--quick"] if args.quick else [])
        only = [x.strip() for x in args.only.split(",") if x.strip()] or None
        start = time.perf_counter()
        for name in scripts(only):
            if name == "widgets" and args.quick:           # it has no smoke mode and writes results/widgets.md
                print("\n=== bench_widgets.py: skipped in --quick mode (it always writes results/widgets.md)")
                continue
            code, _ = run(name, extra if name != "widgets" else [])
            if code != 0:
                failed.append(name)
        print(f"\nall benchmarks: {(time.perf_counter() - start) / 60:.1f} min"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
        if args.quick:
            return 1 if failed else 0
    write_summary()
    print(f"updated {README}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
