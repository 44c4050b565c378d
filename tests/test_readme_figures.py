"""Every figure in the README's benchmark tables comes from the committed results file it cites.

``TABLES`` maps each README table that holds figures to its results file (``benchmarks/results/*.json``) and to a
lookup from (row label, column header) to the recorded value. A figure must equal the recorded value rounded to the
digits the README shows, so a stale figure fails. A README table with figures but no entry here fails too, so a new
table needs a record. When a benchmark is rerun, update the README's rows; when a new table lands (Keras, Cornac,
scale, accuracy, sampler), add one entry: its first header cell, its file and a lookup. ``PROSE`` does the same for
figures in running text: a pattern around one number, and where it is recorded.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"

# A cell that is one figure or several ("1.73x, 1.77x"), possibly bold: "0.8813", "**0.8813**", "3.9x", "2,500".
FIGURE = re.compile(r"\**(\d[\d,]*(?:\.\d+)?)x?\**")
FIGURES = re.compile(rf"{FIGURE.pattern}(?:,\s+{FIGURE.pattern})*")


def _load(relative):
    return json.loads((RESULTS / relative).read_text())


def _label(text):
    return text.replace("`", "").replace("*", "").strip()


@dataclass
class Table:
    """One README table: its first header cell, the results file it cites, and how to find a cell's value."""

    first_header: str
    source: str
    lookup: object  # (data, row label, column header) -> float, or a tuple of floats for a cell of several
    skip_columns: tuple = field(default=())


# --- lookups, one per table ------------------------------------------------------------------------------

_RECIPE_COLUMNS = {"s / epoch": "epoch_median_seconds", "fit s (100 epochs)": "fit_seconds",
                   "final loss": "final_loss", "speed-up vs baseline": "speedup_vs_baseline"}  # fmt: skip


def recipe_speed(data, row, column):
    return data["median"][row][_RECIPE_COLUMNS[column]]


_KERAS_RUNS = {"Keras on JAX": ("keras", "jax"), "Keras on TensorFlow": ("keras", "tensorflow"),
               "npmf adam": ("npmf", "adam"), "npmf lazy_adam": ("npmf", "lazy_adam")}  # fmt: skip
_KERAS_COLUMNS = {"s/epoch (median)": "median_epoch_seconds", "fit s": "median_fit_seconds", "final loss": "final_loss",
                  "rounded MAE": "rounded_mae", "MAE": "mae", "RMSE": "rmse"}  # fmt: skip


def keras(data, row, column, cells):
    library, variant = _KERAS_RUNS[row]
    batch = int(cells["Batch"])
    (run,) = [
        r
        for r in data["experiments"][-1]["summary"]["rows"]
        if r["library"] == library and r["variant"] == variant and r["batch_size"] == batch
    ]
    return batch if column == "Batch" else run[_KERAS_COLUMNS[column]]


_ACCURACY_ROWS = {"random 80/20": ("random 80/20", "mean"), "u1-u5, mean": ("u1-u5", "mean"),
                  "u1 alone": ("u1-u5", 0), "ua/ub": ("ua/ub", "mean"),
                  "a synthetic :: file": ("synthetic file", "mean"),
                  "fit seconds on ML-100k": ("random 80/20", "mean")}  # fmt: skip
_ACCURACY_COLUMNS = {"npmf seed (the recipe)": "npmf seed", "npmf accurate": "npmf accurate",
                     "npmf accurate_sgd": "npmf accurate_sgd", "Surprise SVD": "Surprise SVD (defaults)"}  # fmt: skip


def accuracy(data, row, column):
    (protocol, which), metric = next(v for k, v in _ACCURACY_ROWS.items() if row.startswith(k)), "rmse"
    if row.startswith("fit seconds"):
        metric = "fit_seconds"
    entry = data["results"][protocol][_ACCURACY_COLUMNS[column]]
    return (entry["mean"] if which == "mean" else entry["splits"][which])[metric]


def _scale_record(records, method, size="ml-25m", k=32):
    (record,) = [r for r in records if r.get("size") == size and r.get("k") == k and r["method"] == method]
    return record


_SCALE_ROWS = {"sgd, batch 1": ("ml-25m", "sgd"), "lazy_adam, batch 1024": ("ml-25m", "lazy_adam"),
               "skewed: sgd, batch 1": ("skew-25m", "sgd"),
               "skewed: lazy_adam, batch 1024": ("skew-25m", "lazy_adam"), "dense adam, batch 1024": ("ml-25m", "adam"),
               "skewed: dense adam, batch 1024": ("skew-25m", "adam")}  # fmt: skip


def scale(data, row, column):
    size, method = _SCALE_ROWS[row]
    records = data["records"]
    record = _scale_record(records, method, size)
    if column == "s / epoch":
        return record["seconds_per_epoch"]
    if column == "M ratings / s":
        return record["mratings_per_s"]
    return _scale_record(records, "libmf", size)["seconds_per_epoch"] / record["seconds_per_epoch"]


_MEMORY_ROWS = {"ML-1M (1M ratings)": "ml-1m", "ML-10M (10M ratings)": "ml-10m",
                "ML-25M users and items, 5M ratings": "ml-25m-5m", "ML-25M (25M ratings)": "ml-25m"}  # fmt: skip


def memory(data, row, column):
    size = _MEMORY_ROWS[row]
    if column.startswith("before"):
        rows = _load("scale-fit-memory/before-after.json")["rows"]
        pairs = {r["method"]: r["before"]["rss_over_payload"] for r in rows if r["size"] == size and r["k"] == 32}
        return pairs["lazy_adam"], pairs["sgd"]
    k = int(re.match(r"k=(\d+)", column).group(1))
    return tuple(_scale_record(data["records"], m, size, k)["rss_over_payload"] for m in ("lazy_adam", "sgd"))


def cornac(data, row, column):
    """'`sgd` batch 1, k=10' / 'Cornac (ms)', 'npmf float32 (ms)', 'x Cornac, float32' (and float64): npmf on fit's
    own path."""
    side, k = _label(row).split()[0], int(re.search(r"k=(\d+)", row).group(1))
    rows = data["rows"]
    (theirs,) = [r for r in rows if r["side"] == "cornac" and r["k"] == k and r["path"] == "Hogwild, all threads"]
    if column == "Cornac (ms)":
        return theirs["epoch_ms_median"]
    dtype = re.search(r"float\d\d", column).group(0)
    (ours,) = [r for r in rows if r["side"] == side and r["k"] == k and r["dtype"] == dtype
               and r["path"].startswith("auto")]  # fmt: skip
    return ours["epoch_ms_median"] if column.startswith("npmf") else ours["ratio_to_cornac_median"]


_SKEW_SIZES = {"ML-25M shape": "ml-25m-5m", "skewed": "skew-5m"}
_SKEW_METHODS = {"sgd, batch 1 (M/s)": "sgd", "lazy_adam, batch 1024 (M/s)": "lazy_adam",
                 "dense adam, batch 1024 (M/s)": "adam", "LibMF (M/s)": "libmf"}  # fmt: skip


def skew(data, row, column):
    size = _SKEW_SIZES[row]
    if column.startswith("peak RSS"):
        return tuple(_scale_record(data["records"], m, size)["rss_over_payload"] for m in ("sgd", "lazy_adam", "adam"))
    return _scale_record(data["records"], _SKEW_METHODS[column], size)["mratings_per_s"]


_BOUNDS_ROWS = {"132 B": "touch 33", "396 B (": "touch 99 (", "528 B": "touch 132", "two passes": "touch 99, 2 passes",
                "lazy_adam, batch": "lazy_adam epoch", "sgd, batch": "sgd epoch"}  # fmt: skip


def scale_bounds(data, row, column):
    """'the same, 396 B (...)' / 'ms an epoch' or 'M ratings / s', from scale_bounds.py's records."""
    (name,) = [name for key, name in _BOUNDS_ROWS.items() if key in _label(row)]
    (record,) = [r for r in data["records"] if r["name"].startswith(name)]
    return record["seconds"] * 1e3 if column == "ms an epoch" else record["mratings_per_s"]


TABLES = [
    Table("5M ratings, ML-25M shape, k=32, float32, 2 threads", "scale-bounds/scale_bounds.json", scale_bounds),
    Table("npmf against Cornac, ML-100k 80/20, both cores", "cornac/cornac.json", cornac),
    Table("5M ratings, 162,541 x 59,047, k=32, 2 threads", "scale-issue11/scale.json", skew),
    Table("optimizer", "recipe_speed.json", recipe_speed),
    Table("Run", "keras.json", keras, skip_columns=("Batch",)),
    Table("protocol", "accuracy.json", accuracy),
    Table("25M ratings, 162,541 x 59,047, k=32", "scale-issue11/scale.json", scale),
    Table("shape", "scale.json", memory),
]

# Figures in running text: (pattern with one number group, results file, lookup(data) -> value).
PROSE = [
    (r"takes a median ([\d.]+) s \(import, read", "recipe_speed.json", lambda d: d["npmf_train_process_median"]),
    (r"as `pip install .` makes it, it takes ([\d.]+) s", "train_process-clean-venv/train_process.json",
     lambda d: d["process_median_seconds"]),
    (r"median of 5 warm runs; ([\d.]+) s in the benchmarks' venv", "train_process/train_process.json",
     lambda d: d["process_median_seconds"]),
    (r"fit ([\d.]+) s, plus compiling", "accuracy.json",
     lambda d: d["results"]["random 80/20"]["npmf accurate"]["mean"]["fit_seconds"]),
    (r"times the `accurate` preset's fit alone: ([\d.]+) s with 2 threads", "sampler/sampler_speed.json",
     lambda d: d["fits"]["npmf accurate, 2 threads"]["median_seconds"]),
    (r"plain SGD; fit ([\d.]+) s", "accuracy.json",
     lambda d: d["results"]["random 80/20"]["npmf accurate_sgd"]["mean"]["fit_seconds"]),
    (r"k=128\) the copy had made that moment the peak; it is ([\d.]+)x now", "scale.json",
     lambda d: _scale_record(d["records"], "lazy_adam", "ml-25m-5m", 128)["rss_over_payload"]),
    (r"\(floor: ([\d.]+)\)", "accuracy.json", lambda d: d["synthetic_floor_rmse"]),
    (r"`lazy_adam` ran 2.06 s per epoch \(([\d.]+) M/s\)", "scale-ml25m-k32-final/scale.json",
     lambda d: _scale_record(d["records"], "lazy_adam")["mratings_per_s"]),
    (r"serial kernel at 20.1 s\s+per epoch \(([\d.]+) M/s\)", "scale.json",
     lambda d: _scale_record(d["records"], "serial")["mratings_per_s"]),
]  # fmt: skip


# --- reading the README's tables ------------------------------------------------------------------------


def tables(text):
    """Each Markdown table as (header cells, rows of cells), in order."""
    found, lines = [], text.splitlines()
    for j, line in enumerate(lines):
        if j + 1 < len(lines) and line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[j + 1].strip()):
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            rows = []
            for body in lines[j + 2 :]:
                if not body.startswith("|"):
                    break
                rows.append([c.strip() for c in body.strip().strip("|").split("|")])
            found.append((header, rows))
    return found


def figures(cell):
    """The numbers in a cell, with the digits shown after the point, or None when the cell is not figures."""
    if not FIGURES.fullmatch(cell):
        return None
    return [
        (float(m.replace(",", "")), len(m.split(".")[1]) if "." in m else 0)
        for m in re.findall(r"\d[\d,]*(?:\.\d+)?", cell)
    ]


def has_figures(rows):
    return any(figures(cell) for row in rows for cell in row[1:])


def check(text):
    """The README's stale or unrecorded figures, as messages; empty when every figure matches its record."""
    problems = []
    registry = {t.first_header: t for t in TABLES}
    for header, rows in tables(text):
        if not has_figures(rows):
            continue
        table = registry.get(_label(header[0])) or registry.get(header[0])
        if table is None:
            problems.append(f"table {header} has figures but no record in TABLES")
            continue
        data = _load(table.source)
        for row in rows:
            cells = dict(zip(header, row))
            for column, cell in zip(header[1:], row[1:]):
                numbers = figures(cell)
                if numbers is None or column in table.skip_columns:
                    continue
                args = (data, _label(row[0]), _label(column))
                try:
                    value = table.lookup(*args, cells) if table.lookup is keras else table.lookup(*args)
                except (KeyError, ValueError, StopIteration, AttributeError) as exc:
                    problems.append(f"{row[0]!r} / {column!r}: no value in {table.source} ({exc!r})")
                    continue
                values = value if isinstance(value, tuple) else (value,)
                if len(values) != len(numbers) or not all(
                    abs(n - v) <= 0.5 * 10.0**-d + 1e-9 for (n, d), v in zip(numbers, values)
                ):
                    problems.append(f"{row[0]!r} / {column!r}: README {cell}, {table.source} {values}")
    for pattern, source, lookup in PROSE:
        match = re.search(pattern, text)
        if match is None:
            problems.append(f"prose figure {pattern!r} is no longer in the README; update PROSE")
            continue
        figure = match.group(1)
        digits = len(figure.split(".")[1]) if "." in figure else 0
        value = lookup(_load(source))
        if abs(float(figure) - value) > 0.5 * 10.0**-digits + 1e-9:
            problems.append(f"prose {match.group(0)!r}: {source} records {value}")
    return problems


def test_every_readme_figure_matches_its_record():
    problems = check(README.read_text())
    assert not problems, "\n".join(problems)


def test_every_table_with_figures_is_checked():
    """The registry is not empty-handed: each of its tables is in the README and has figures to check."""
    text = README.read_text()
    present = {_label(h[0]) for h, rows in tables(text) if has_figures(rows)}
    assert {t.first_header for t in TABLES} == present
    assert sum(1 for _, rows in tables(text) for row in rows for cell in row[1:] if figures(cell)) > 80


@pytest.mark.parametrize(
    "old, new",
    [
        ("| adam | 0.0049 |", "| adam | 0.0048 |"),  # a stale recipe-speed figure, as the issue found
        ("| `sgd`, batch 1 | 0.43 |", "| `sgd`, batch 1 | 0.41 |"),
        ("| 0.9392 | **0.8821** |", "| 0.9392 | **0.8820** |"),
        ("| 1.73x, 1.77x |", "| 1.73x, 1.78x |"),
        ("takes a median 1.37 s", "takes a median 1.38 s"),
        ("| Keras on JAX | 32 | 0.504 |", "| Keras on JAX | 32 | 0.514 |"),
    ],
)
def test_a_stale_figure_fails(old, new):
    text = README.read_text()
    assert old in text
    assert check(text.replace(old, new, 1)), f"changing {old!r} to {new!r} went unnoticed"


def test_a_new_table_without_a_record_fails():
    text = README.read_text() + "\n| new benchmark | s |\n|---|---:|\n| something | 1.23 |\n"
    assert any("no record in TABLES" in p for p in check(text))
