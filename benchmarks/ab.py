"""Turn-about A/B timing: run one benchmark command under two versions of npmf, alternately, and compare medians.

A benchmark run once on the old code and once on the new one compares the two
under whatever load the machine had at each moment; on a shared, noisy box
that can be several per cent either way. Alternating the sides (A, B, A, B,
...) spreads load changes over both, and the medians over rounds damp single
outliers. Each side is a directory put first on ``PYTHONPATH`` (a worktree of
the old commit, and the working tree with the change), with its own
``NUMBA_CACHE_DIR`` so the two sides never load each other's compiled kernels
(a ``PYTHONPATH`` set when calling this script is kept, after the side).
Beware of npmf installed in development mode (``pip install -e``): a module
that the side's tree lacks is then imported from the installed tree instead of
failing, so a benchmark that spans a layout change must pick its imports from
the package's files, not by trying the new names first (see ``scale.py``).
The command runs in a neutral working directory, so that neither tree is
imported from the current directory (``python -m npmf`` puts it first on
``sys.path``). Before each run it waits (up to ``--max-wait`` s) until other
processes use under ``--idle`` of the cores, and it records the share of the
cores they used during the run, so a figure taken under someone else's load
can be told apart.

The command is given after ``--``; ``{out}`` in it is replaced by a fresh
directory per run, where the benchmark is to write its JSON record (both
``recipe_speed.py`` and ``scale.py`` take ``--out``). Every JSON file found
there afterwards is flattened to named figures (a list of records is keyed by
each record's string fields, e.g. ``records.ml-25m/lazy_adam/float32``; lists
of numbers, the raw repeats, are skipped), and the figures whose name matches
``--metrics`` are kept.

Usage::

    python benchmarks/ab.py --name recipe_speed --rounds 2 -- \\
        python benchmarks/recipe_speed.py --out {out}/recipe_speed
    python benchmarks/ab.py --name scale --rounds 2 -- \\
        python benchmarks/scale.py --sizes ml-25m --k 32 --methods lazy_adam,sgd,serial --epochs 4 --out {out}

Writes ``NAME.json`` (every run's figures, the medians and the ratios B/A)
and ``NAME.md`` into ``--results`` (default ``benchmarks/results/layout-ab``).
For figures in seconds a ratio above 1 means B is slower.
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe, markdown  # noqa: E402

DEFAULT_METRICS = r"seconds|_median$|loss"


def flatten(obj, prefix=""):
    """Numeric leaves of a JSON value as ``{dotted.name: number}``; lists of numbers are skipped."""
    out = {}
    if isinstance(obj, bool):
        return out
    if isinstance(obj, (int, float)):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(obj, list) and any(isinstance(x, dict) for x in obj):
        seen = {}
        for n, item in enumerate(obj):
            if not isinstance(item, dict):
                continue
            label = "/".join(str(v) for v in item.values() if isinstance(v, str)) or str(n)
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label = f"{label}#{seen[label]}"
            out.update(flatten(item, f"{prefix}.{label}" if prefix else label))
    return out


def collect(folder, pattern):
    """The figures matching ``pattern`` in every JSON file under ``folder``, named ``file-stem:figure``."""
    figures = {}
    for path in sorted(Path(folder).rglob("*.json")):
        for name, value in flatten(json.loads(path.read_text())).items():
            if not name.startswith("machine.") and re.search(pattern, name):
                figures[f"{path.stem}:{name}"] = value
    return figures


def git_state(path):
    """Commit, and the package's files that differ from it, for the record."""

    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False).stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--", "npmf").splitlines() if line.strip()]
    return {"path": str(path), "commit": git("rev-parse", "HEAD").strip(), "npmf_changes": changed}


def _busy_core_seconds():
    """CPU time spent by the whole machine so far (all processes, all cores), from ``/proc/stat``."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_until_idle(max_busy, max_wait, sample=2.0):
    """Wait (at most ``max_wait`` s) until the rest of the machine uses under ``max_busy`` of its cores.

    Returns ``(seconds waited, busy fraction of the last sample)``.
    """
    start = time.perf_counter()
    while True:
        b0 = _busy_core_seconds()
        time.sleep(sample)
        busy = (_busy_core_seconds() - b0) / (sample * os.cpu_count())
        waited = time.perf_counter() - start
        if busy < max_busy or waited >= max_wait:
            return waited, busy


def run_once(command, side, cache_dir, workdir, out_dir):
    """Run the command once; returns ``(wall seconds, share of the machine other processes used meanwhile)``.

    The share is the machine's CPU time over the run less this command's own
    (its whole process tree, reaped), over ``wall * cores``: a load figure that,
    unlike the load average, neither lags nor counts the benchmark itself.
    """
    # The side first; a PYTHONPATH already set (e.g. a benchmark-only dependency) after it.
    path = os.pathsep.join(x for x in (str(side), os.environ.get("PYTHONPATH", "")) if x)
    env = dict(os.environ, PYTHONPATH=path, NUMBA_CACHE_DIR=str(cache_dir))
    cmd = [part.replace("{out}", str(out_dir)) for part in command]
    b0, c0 = _busy_core_seconds(), _children_cpu()
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    others = (_busy_core_seconds() - b0) - (_children_cpu() - c0)
    if res.returncode != 0:
        sys.exit(f"command failed under PYTHONPATH={side}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return wall, max(others, 0.0) / (wall * os.cpu_count())


def summarise(runs, labels):
    """Per figure and side: the values in run order, their median and minimum; and the ratios B/A of both.

    The median is the figure to quote. The minimum, the run least slowed by
    other load, is given beside it: on a busy machine the noise only ever adds time.
    """
    summary = {}
    for name in sorted({n for run in runs for n in run["figures"]}):
        row = {}
        for label in labels:
            values = [run["figures"][name] for run in runs if run["side"] == label and name in run["figures"]]
            row[label] = {"values": values, "median": statistics.median(values) if values else None,
                          "min": min(values) if values else None}  # fmt: skip
        a, b = row[labels[0]], row[labels[1]]
        row["ratio"] = b["median"] / a["median"] if a["median"] and b["median"] is not None else None
        row["ratio_of_min"] = b["min"] / a["min"] if a["min"] and b["min"] is not None else None
        summary[name] = row
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="name of this comparison (file names of the record)")
    p.add_argument("--a", default="/work/old", help="side A (old): directory put first on PYTHONPATH")
    p.add_argument("--b", default=str(HERE.parent), help="side B (new): directory put first on PYTHONPATH")
    p.add_argument("--labels", default="old,new", help="names of sides A and B")
    p.add_argument("--rounds", type=int, default=2, help="runs per side, in the order A, B, A, B, ...")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"regex of figures to keep (default {DEFAULT_METRICS!r})")
    p.add_argument("--results", default=str(HERE / "results" / "layout-ab"))
    p.add_argument(
        "--idle",
        type=float,
        default=0.2,
        help="before each run, wait until other processes use under this share of the cores (default 0.2)",
    )
    p.add_argument("--max-wait", type=float, default=300, help="longest wait for --idle, in seconds (default 300)")
    p.add_argument("--render", action="store_true", help="only rewrite NAME.md (and the summary) from NAME.json")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the benchmark command, with {out}")
    args = p.parse_args(argv)
    results = Path(args.results)
    if args.render:
        record = json.loads((results / f"{args.name}.json").read_text())
        labels = list(record["sides"])
        record["summary"] = summarise(record["runs"], labels)
        (results / f"{args.name}.json").write_text(json.dumps(record, indent=1) + "\n")
        (results / f"{args.name}.md").write_text(_markdown(record, labels))
        return
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the benchmark command after --")
    # Scripts given relative to the repository root run from the neutral directory too.
    command = [str((HERE.parent / c).resolve()) if c.endswith(".py") and (HERE.parent / c).exists() else c
               for c in command]  # fmt: skip
    labels = args.labels.split(",")
    sides = [Path(args.a).resolve(), Path(args.b).resolve()]
    machine = describe()
    runs = []
    with tempfile.TemporaryDirectory(prefix="npmf-ab-") as tmp:
        tmp = Path(tmp)
        workdir = tmp / "cwd"
        workdir.mkdir()
        for r in range(args.rounds):
            for label, side in zip(labels, sides):
                out_dir = tmp / f"round{r}-{label}"
                out_dir.mkdir()
                waited, busy_before = wait_until_idle(args.idle, args.max_wait)
                wall, others = run_once(command, side, tmp / f"numba-cache-{label}", workdir, out_dir)
                figures = collect(out_dir, args.metrics)
                runs.append({"round": r, "side": label, "waited_seconds": round(waited, 1),
                             "others_share_before": round(busy_before, 3), "others_share_during": round(others, 3),
                             "wall_seconds": wall, "figures": figures})  # fmt: skip
                print(f"round {r} {label}: {wall:.0f} s, {len(figures)} figures; other processes used "
                      f"{others:.0%} of the cores meanwhile (waited {waited:.0f} s for idle)", flush=True)  # fmt: skip
    summary = summarise(runs, labels)
    record = {
        "name": args.name,
        "command": command,
        "sides": {label: git_state(side) for label, side in zip(labels, sides)},
        "rounds": args.rounds,
        "order": [f"{run['side']}" for run in runs],
        "machine": machine,
        "load_avg_1_5_15_end": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "summary": summary,
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    md = _markdown(record, labels)
    (results / f"{args.name}.md").write_text(md)
    print(md)


def _markdown(record, labels):
    a, b = labels

    def side(label):
        st = record["sides"][label]
        changes = f" plus uncommitted changes to {', '.join(f'`{c}`' for c in st['npmf_changes'])}"
        return f"{label}: `{st['path']}` at {st['commit'][:7]}{changes if st['npmf_changes'] else ''}"

    shares = ", ".join(f"{run['side']} {run['others_share_during']:.0%}" for run in record["runs"])
    lines = [
        f"# A/B: {record['name']}, {a} against {b}",
        "",
        markdown(record["machine"]) + f" Load average at the end: {record['load_avg_1_5_15_end']}.",
        "",
        f"`{' '.join(Path(c).name if c.endswith('.py') else c for c in record['command'])}`, "
        f"{record['rounds']} runs per side in the order {', '.join(record['order'])}; each side on its own "
        f"`PYTHONPATH` and `NUMBA_CACHE_DIR`. {side(a)}; {side(b)}.",
        "",
        f"Share of the cores other processes used during each run, in order: {shares}.",
        "",
        f"Each figure is the benchmark's own (itself a median over its repeats or epochs); the table gives the "
        f"median over runs and {b}/{a} of the medians (for seconds, above 1 means {b} is slower), and beside it "
        f"{b}/{a} of the fastest runs, the ones least slowed by other load.",
        "",
        f"| figure | {a} median | {b} median | {b}/{a} | {b}/{a} of fastest | {a} runs | {b} runs |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for name, row in record["summary"].items():
        ratio = f"{row['ratio']:.3f}" if row["ratio"] is not None else "—"
        fastest = f"{row['ratio_of_min']:.3f}" if row.get("ratio_of_min") is not None else "—"
        lines.append(
            f"| {name} | {_num(row[a]['median'])} | {_num(row[b]['median'])} | {ratio} | {fastest} | "
            f"{', '.join(_num(x) for x in row[a]['values'])} | {', '.join(_num(x) for x in row[b]['values'])} |"
        )
    return "\n".join(lines) + "\n"


def _num(x):
    return "—" if x is None else f"{x:.4g}"


if __name__ == "__main__":
    main()
