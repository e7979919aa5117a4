"""What the benchmarks share to report: table rows, the results table, the JSON, the figures.

Only the standard library: the publisher and memory child processes import it too, and must not
carry Home Assistant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
import cProfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
import io
import json
import os
from pathlib import Path
import platform
import pstats
import statistics
import subprocess
import time
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROFILE_LINES = 25
TOP_SLOW = 10


class BenchError(Exception):
    """Raise when the benchmark itself cannot measure (not when a target is missed)."""


@dataclass
class Check:
    """One reported figure, with its target when it has one."""

    part: str
    measure: str
    value: str
    target: str = "-"
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        """Return PASS, FAIL or a dash for figures without a target."""
        return "-" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class Part:
    """What one part measured: table rows, printed details and the figures for the JSON."""

    name: str
    checks: list[Check] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(
        self, measure: str, value: str, target: str = "-", passed: bool | None = None
    ) -> None:
        """Add a table row."""
        self.checks.append(Check(self.name, measure, value, target, passed))


# Figures


def percentile(values: list[float], pct: int) -> float:
    """Return the pct-th percentile, interpolated between the closest ranks."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def profile_text(profiler: cProfile.Profile) -> str:
    """Return a profile's top costs by own time and cumulative."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    return out.getvalue()


def note_busy(part: Part, runs: Iterable[dict[str, Any]]) -> None:
    """Add a note to `part` when a timed pass got less than 90% of a CPU."""
    busy = [run["cpu_s"] / run["wall_s"] for run in runs if run["wall_s"] > 0]
    if min(busy) < 0.9:
        part.details.append(
            f"note: a pass got only {100 * min(busy):.0f}% of a CPU (wall vs process time): "
            "other load on the machine lowered some rounds"
        )


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line for the parent process."""
    print(json.dumps(record), flush=True)


# Where the figures come from


def git(*command: str) -> str | None:
    """Return the output of a git command in the repository, or None without git."""
    try:
        completed = subprocess.run(
            ["git", *command], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def environment(**versions: Any) -> dict[str, Any]:
    """Describe where the figures come from; `versions` follow Python's."""
    return {
        "python": platform.python_version(),
        **versions,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def source_details(part: Part, facts: dict[str, Any], before: str, after: str) -> dict[str, Any]:
    """Add the measured commit, a changed-source warning and the logs to `part`'s details.

    Return the `meshbot_source` figures.
    """
    uncommitted = git("status", "--porcelain", "--", "custom_components")
    part.details.append(
        f"meshbot measured: commit {(git('rev-parse', '--short', 'HEAD') or '?')}"
        + (
            " with uncommitted changes to "
            + ", ".join(line.split(maxsplit=1)[-1] for line in uncommitted.splitlines())
            if uncommitted
            else ""
        )
    )
    if after != before:
        part.details.append(
            f"WARNING: meshbot's source changed during the run ({before} -> "
            f"{after}); the figures mix versions"
        )
    part.details += [f"meshbot log: {line}" for line in facts["meshbot_log"]]
    part.details += [f"error not from meshbot: {line}" for line in facts["other_errors"]]
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": uncommitted,
        "digest_before": before,
        "digest_after": after,
    }


# End-to-end details (bench/end_to_end.py's figures)


def fmt_lag(lag: dict[str, Any]) -> str:
    """Describe one lag window."""
    if not lag.get("wakeups"):
        return "no wake-ups"
    return (
        f"p50 {lag['p50_ms']:.2f} / p90 {lag['p90_ms']:.2f} / p99 {lag['p99_ms']:.2f} / max "
        f"{lag['max_ms']:.1f} ms (at +{lag['max_at_s']:.1f} s) over {lag['wakeups']:,} "
        f"wake-ups in {lag['seconds']:.1f} s; {lag['over_20ms']} over 20 ms, "
        f"{lag['over_100ms']} over 100 ms"
    )


def lag_lines(lag: dict[str, Any], run: str, after: str) -> list[str]:
    """Describe the lag during, after and before the `run` (feed, burst), and per second."""
    return [
        f"loop lag during the {run}: " + fmt_lag(lag["window"]),
        f"loop lag after the {run} ({after}): " + fmt_lag(lag["after"]),
        f"loop lag idle, before the {run}: " + fmt_lag(lag["idle"]),
        f"worst loop lag per second (ms) from the start of the {run}: "
        + " ".join(f"{value:.0f}" for value in lag["per_second_max_ms"]),
    ]


def gc_lines(facts: dict[str, Any], run: str) -> list[str]:
    """Describe the garbage collections from the start of the `run`, and the stalls they explain."""
    return [
        f"garbage collections from the start of the {run}: "
        + "; ".join(
            f"{generation} {row['count']} ({row['total_ms']:.0f} ms, max {row['max_ms']:.0f} ms)"
            for generation, row in facts["gc"]["by_generation"].items()
        )
        + "; full ones: "
        + (
            ", ".join(
                f"+{row['at_s']:.1f} s {row['ms']:.0f} ms in {row['thread']}"
                for row in facts["gc"]["full_collections"]
            )
            or "none"
        ),
        *(
            f"late wake-up at +{stall['at_s']:.2f} s: {stall['late_ms']:.0f} ms late, "
            f"{stall['covered_ms']:.0f} ms of it in garbage collections {stall['by']}"
            for stall in facts["stalls"][:TOP_SLOW]
        ),
    ]


def cpu_shares(cpu: dict[str, Any]) -> str:
    """Describe each thread's and process's share of the CPU over `cpu["seconds"]`."""
    seconds_total = cpu["seconds"]
    return (
        ", ".join(
            f"{kind} {100 * seconds / seconds_total:.0f}%"
            for kind, seconds in sorted(cpu["threads"].items(), key=lambda item: -item[1])
            if seconds > 0
        )
        + "; "
        + ", ".join(
            f"{name} {'-' if seconds is None else f'{100 * seconds / seconds_total:.0f}%'}"
            for name, seconds in cpu["processes"].items()
        )
    )


def profile_lines(profile: dict[str, Any]) -> list[str]:
    """Describe a sampled profile of the event loop."""
    lines = [
        f"{profile['samples']:,} samples of the event loop thread's stack, "
        f"{profile['stalled_samples']:,} of them while the loop was over "
        f"{profile['threshold_ms']:g} ms late",
        "innermost meshbot frame, in stalls: "
        + "; ".join(f"{frame} {count}" for frame, count in profile["meshbot_frames_stalled"]),
        "innermost meshbot frame, all samples: "
        + "; ".join(f"{frame} {count}" for frame, count in profile["meshbot_frames_all"]),
        "leaf functions, in stalls: "
        + "; ".join(f"{leaf} {count}" for leaf, count in profile["leaves_stalled"]),
        "leaf functions, all samples: "
        + "; ".join(f"{leaf} {count}" for leaf, count in profile["leaves_all"]),
        "other threads, in stalls: "
        + "; ".join(f"{frame} {count}" for frame, count in profile["other_threads_stalled"]),
    ]
    lines.append(
        f"{profile['callbacks']:,} loop callbacks ran for {profile['callback_busy_s']:.2f} s; "
        "callbacks over 10 ms (count, max, total): "
        + "; ".join(
            f"{row['what']} x{row['count']} max {row['max_ms']:.0f} ms total {row['total_ms']:.0f} ms"
            for row in profile["slow_callbacks"][:TOP_SLOW]
        )
    )
    for stall in profile["stalls"][:TOP_SLOW]:
        lines.append(
            f"late wake-up at +{stall['at_s']:.2f} s: {stall['late_ms']:.0f} ms late, "
            f"{stall['covered_ms']:.0f} ms of it in slow callbacks or collections {stall['by']}"
        )
    for stack in profile["stacks_stalled"][:5]:
        lines.append(
            f"stack in stalls ({stack['count']} samples):\n    " + "\n    ".join(stack["stack"])
        )
    return lines


def profiled_run(part: Part, profiled: dict[str, Any], run: str) -> None:
    """Record a second, profiled end-to-end run's lag and profile in `part`."""
    part.figures["profile_run"] = {"lag": profiled["lag"], "profile": profiled["profile"]}
    part.details.append(
        f"profiled run (sampling slows the loop): lag during the {run} "
        + fmt_lag(profiled["lag"]["window"])
        + "; after "
        + fmt_lag(profiled["lag"]["after"])
    )
    part.details += profile_lines(profiled["profile"])


# Command line


def add_only(parser: argparse.ArgumentParser, parts: Sequence[str]) -> None:
    """Add `--only PART|all`."""
    parser.add_argument(
        "--only", choices=[*parts, "all"], default="all", help="run one part (default: all)"
    )


def add_loop_arguments(parser: argparse.ArgumentParser, run: str, drain: str) -> None:
    """Add the end-to-end lag probe and timing flags; `run` names the feed, `drain` what
    meshbot does with what is in flight after it."""
    parser.add_argument(
        "--lag-interval-ms", type=float, default=5.0, help="the lag probe's sleep (C)"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help=f"lag measured before the {run} (C)"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help=f"longest wait for meshbot to {drain} what is in flight after the {run} (C)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=5.0,
        help=f"lag still measured at least this long after the {run} (C)",
    )


def loop_parameters(args: argparse.Namespace) -> dict[str, float]:
    """Return the flags `add_loop_arguments` adds, for an end-to-end part's parameters."""
    return {
        "lag_interval_ms": args.lag_interval_ms,
        "idle_seconds": args.idle_seconds,
        "drain_seconds": args.drain_seconds,
        "settle_seconds": args.settle_seconds,
    }


def add_seed_output(parser: argparse.ArgumentParser, results: Path) -> None:
    """Add `--seed` and `--output`."""
    parser.add_argument("--seed", type=int, default=7, help="seed of every random choice")
    parser.add_argument("--output", type=Path, default=results, help="where to write the JSON")


# Running and reporting


def run_parts(
    parts: dict[str, Callable[[argparse.Namespace], Part]], args: argparse.Namespace
) -> tuple[list[Part], float]:
    """Run the part `--only` names, or all of them; return them and the seconds they took."""
    began = time.perf_counter()
    names = list(parts) if args.only == "all" else [args.only]
    done = [parts[name](args) for name in names]
    return done, time.perf_counter() - began


def print_table(parts: list[Part], widths: tuple[int, int, int], rstrip: bool = False) -> None:
    """Print one row per figure, then each part's details.

    `widths` are the measure, value and target columns'; `rstrip` drops a row's trailing blanks.
    """
    part_width = max([8, *(len(part.name) for part in parts)])
    measure, value, target = widths
    columns = (
        ("part", part_width),
        ("measure", measure),
        ("value", value),
        ("target", target),
        ("verdict", 7),
    )
    header = "  ".join(f"{name:<{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    for part in parts:
        for check in part.checks:
            cells = (check.part, check.measure, check.value, check.target, check.verdict)
            row = "  ".join(
                f"{cell:<{width}}" for cell, (_, width) in zip(cells, columns, strict=True)
            )
            print(row.rstrip() if rstrip else row)
    for part in parts:
        print()
        for line in part.details:
            print(f"{part.name}: {line}")


def write_json(output: Path, document: dict[str, Any]) -> None:
    """Write the results document and say where."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {output}")


def run_and_report(
    parts: dict[str, Callable[[argparse.Namespace], Part]],
    args: argparse.Namespace,
    *,
    benchmark: str,
    widths: tuple[int, int, int],
    summary: str,
    targets: dict[str, Any],
    versions: dict[str, Any] | None = None,
    rstrip: bool = False,
) -> None:
    """Run the parts `--only` names, print the table and the PASS count (followed by
    `summary`), and write the JSON to `--output`."""
    done, elapsed = run_parts(parts, args)
    print()
    print_table(done, widths, rstrip)
    checks = [check for part in done for check in part.checks if check.passed is not None]
    print()
    print(f"{sum(bool(c.passed) for c in checks)}/{len(checks)} checks PASS{summary}")
    print(f"total runtime {elapsed:.1f} s")
    document = {
        "benchmark": benchmark,
        "environment": environment(**(versions or {})),
        "targets": targets,
        "total_runtime_s": elapsed,
        "checks": [
            asdict(check) | {"verdict": check.verdict} for part in done for check in part.checks
        ],
        "parts": {part.name: part.figures for part in done},
    }
    write_json(args.output, document)
