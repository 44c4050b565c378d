"""Describe the machine a benchmark ran on: CPU, cores, load, library versions."""

import os
import platform
import subprocess


def describe(extra_packages=()):
    """A dict describing this machine, for the records every benchmark writes."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in ("numpy", "pandas", "numba", "npmf", *extra_packages):
        info[name] = _version(name)
    return info


def markdown(info):
    """One Markdown line naming the machine."""
    versions = ", ".join(
        f"{k} {v}" for k, v in info.items() if k not in ("cpu", "cores", "load_avg_1_5_15", "platform")
    )
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, load average {info['load_avg_1_5_15']} at start; {versions}."
    )


def _cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "not installed"
