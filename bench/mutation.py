"""Mutation testing of the core modules with mutmut: the score per module and the survivors.

Slow (minutes to hours for all modules), so not part of .ci/run. Each module is mutated in a
throwaway copy of the project (src/, tests/, pyproject.toml with a [tool.mutmut] section
written for it) and only the test files that cover it run against each mutant, on SQLite
(`-k "not postgres"`) and without xdist: the score says how well *those* tests pin the module.

    .venv/bin/python bench/mutation.py                 # every core module
    .venv/bin/python bench/mutation.py loops storm     # some of them (names below)
    .venv/bin/python bench/mutation.py --list          # the modules and their tests
    .venv/bin/python bench/mutation.py dispatcher --only 'Dispatcherǁ_handle__'  # a part

It runs under `nice -n 19` with `--jobs` mutants at a time (default 1: the machine is shared).
Prints one line per module (killed / total and the score; timeouts and crashes count as
killed, as a mutant that hangs or crashes the code is caught; a mutant in code that none of
the selected tests runs, mutmut's "no tests", counts as a survivor) and then every surviving
mutant with its diff, for deciding whether a test is missing or the mutant is equivalent.
`--only` restricts a big module to some functions (the others show as "not checked" and are
left out of the score). Exit status 1 when a module scores below `--target` (default 90 %).
bench/MUTATION.md records the scores and the equivalent survivors.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")

# Core module (under src/watchkeeper) -> the test files that pin it.
MODULES: dict[str, tuple[str, list[str]]] = {
    "checkstate": ("core/checkstate.py", ["tests/test_checkstate.py"]),
    "scheduler": (
        "engine/scheduler.py",
        [
            "tests/test_scheduler.py",
            "tests/test_scheduler_changes.py",
            "tests/test_scheduler_edges.py",
        ],
    ),
    "loops": ("core/loops.py", ["tests/test_timed_loops.py"]),
    "dispatcher": (
        "alerting/dispatcher.py",
        [
            "tests/alerting/test_dispatcher_loop.py",
            "tests/test_dispatcher.py",
            "tests/test_escalation.py",
            "tests/test_dependencies.py",
            "tests/test_flap_alerts.py",
            "tests/test_inhibition.py",
            "tests/test_broken_objects.py",
            "tests/test_timed_loops.py",
            "tests/test_routes.py",
        ],
    ),
    # The dispatcher's stages (alerting/dispatch/): each its own unit tests first, then the
    # dispatcher's tests that run it inside a pass.
    "dispatch.suppression": (
        "alerting/dispatch/suppression.py",
        [
            "tests/alerting/test_suppression.py",
            "tests/test_dispatcher.py",
            "tests/test_dependencies.py",
            "tests/test_inhibition.py",
            "tests/test_broken_objects.py",
        ],
    ),
    "dispatch.targets": (
        "alerting/dispatch/targets.py",
        ["tests/alerting/test_targets.py", "tests/test_routes.py", "tests/test_escalation.py"],
    ),
    "dispatch.grouping": (
        "alerting/dispatch/grouping.py",
        ["tests/alerting/test_grouping.py", "tests/test_dispatcher.py"],
    ),
    "dispatch.first_page": (
        "alerting/dispatch/first_page.py",
        ["tests/alerting/test_first_page.py", "tests/test_dispatcher.py"],
    ),
    "dispatch.escalation": (
        "alerting/dispatch/escalation.py",
        ["tests/alerting/test_escalation_stage.py", "tests/test_escalation.py"],
    ),
    "dispatch.resolution": (
        "alerting/dispatch/resolution.py",
        ["tests/alerting/test_resolution.py", "tests/test_dispatcher.py"],
    ),
    "dispatch.storm": (
        "alerting/dispatch/storm.py",
        ["tests/alerting/test_storm_stage.py", "tests/test_storm.py"],
    ),
    "dispatch.context": ("alerting/dispatch/context.py", ["tests/alerting/test_context.py"]),
    "matchers": (
        "alerting/matchers.py",
        ["tests/test_matchers.py", "tests/test_dispatcher.py", "tests/test_routes.py"],
    ),
    "silences": (
        "alerting/silences.py",
        [
            "tests/test_silences.py",
            "tests/test_dispatcher.py",
            "tests/test_alerts_api.py",
            "tests/test_broken_objects.py",
        ],
    ),
    "maintenance": (
        "alerting/maintenance.py",
        ["tests/test_maintenance.py", "tests/test_maintenance_api.py"],
    ),
    "storm": ("notify/storm.py", ["tests/test_storm.py", "tests/test_dispatcher.py"]),
    "inhibition": ("alerting/inhibition.py", ["tests/test_inhibition.py"]),
    "routes": ("alerting/routes.py", ["tests/test_routes.py"]),
    "outbox": (
        "notify/outbox.py",
        [
            "tests/test_outbox.py",
            "tests/test_outbox_lanes.py",
            "tests/notify/test_through_outbox.py",
        ],
    ),
    "heartbeat": (
        "engine/heartbeat/evaluate.py",
        ["tests/test_heartbeat_evaluate.py", "tests/test_heartbeats.py"],
    ),
    "rules": (
        "alerting/rules.py",
        [
            "tests/test_rules.py",
            "tests/test_rule_failures.py",
            "tests/test_rules_changes.py",
            "tests/test_rules_storage.py",
            "tests/test_rules_evaluation.py",
            "tests/test_managed_rules.py",
        ],
    ),
}

_RESULT = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>[\w ]+?)\s*$")
# A mutant that crashes the interpreter ("segfault": also mutmut's SIGKILL) is caught too.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
# "no tests" is NOT here: a mutant in code no selected test runs is a survivor, not a pass.
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}


@dataclass
class Score:
    module: str
    statuses: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    """The last lines mutmut printed (shown when no mutant was checked)."""

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.statuses.values())

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.counts.items() if status in KILLED)

    @property
    def total(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in NOT_RUN)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0

    @property
    def survivors(self) -> list[str]:
        return sorted(n for n, s in self.statuses.items() if s not in KILLED | NOT_RUN)


def mutmut_config(module_path: str, tests: list[str]) -> str:
    """The [tool.mutmut] section for one module (TOML, appended to a copy of pyproject)."""

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    cli = ["-n", "0", "-p", "no:cacheprovider", "-q", "-k", "not postgres"]
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f'only_mutate = ["src/watchkeeper/{module_path}"]\n'
        f"pytest_add_cli_args = {toml_list(cli)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        "use_git_change_detection = false\n"
    )


def prepare(work: Path, module_path: str, tests: list[str]) -> None:
    for folder in ("src", "tests"):
        shutil.copytree(
            ROOT / folder,
            work / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "mutants"),
        )
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if "tool" in tomllib.loads(pyproject) and "mutmut" in tomllib.loads(pyproject)["tool"]:
        raise SystemExit("pyproject.toml has its own [tool.mutmut]: this script writes one")
    (work / "pyproject.toml").write_text(
        pyproject + mutmut_config(module_path, tests), encoding="utf-8"
    )
    for extra in ("README.md",):
        if (ROOT / extra).exists():
            shutil.copy2(ROOT / extra, work / extra)


def run_module(name: str, jobs: int, keep: bool, only: list[str]) -> Score:
    module_path, tests = MODULES[name]
    work = Path(tempfile.mkdtemp(prefix=f"wk-mutation-{name}-"))
    try:
        prepare(work, module_path, tests)
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        run = ["nice", "-n", "19", str(MUTMUT), "run", "--max-children", str(jobs)]
        # mutmut matches these against mutant names, e.g. `*ǁDispatcherǁdispatch_once__*`.
        run += [f"*{pattern}*" for pattern in only]
        print(f"== {name}: mutating src/watchkeeper/{module_path} against {' '.join(tests)}")
        if only:
            print(f"   only the functions matching {' '.join(only)}")
        sys.stdout.flush()
        ran = subprocess.run(
            run,
            cwd=work,
            env=env,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        listing = subprocess.run(
            [str(MUTMUT), "results", "--all", "true"],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        score = Score(name, output=ran.stdout.replace("\r", "\n").strip().splitlines()[-8:])
        for line in listing.splitlines():
            if match := _RESULT.match(line):
                score.statuses[match["name"]] = match["status"]
        for survivor in score.survivors:
            shown = subprocess.run(
                [str(MUTMUT), "show", survivor],
                cwd=work,
                env=env,
                check=False,
                capture_output=True,
                text=True,
            )
            score.diffs[survivor] = shown.stdout.strip()
        return score
    finally:
        if keep:
            print(f"   kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[])
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--target", type=float, default=90.0, help="minimum score, percent")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument("--list", action="store_true", help="list the modules and stop")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="mutate only functions whose mutant name contains this (repeatable), "
        "e.g. --only Dispatcherǁdispatch_once: to keep a big module's run short",
    )
    args = parser.parse_args()
    if args.list:
        for name, (path, tests) in MODULES.items():
            print(f"{name:20} src/watchkeeper/{path:36} {' '.join(tests)}")
        return 0
    if not MUTMUT.exists():
        raise SystemExit(f"{MUTMUT} not found: pip install -e '.[dev]' installs mutmut")

    scores = [
        run_module(name, args.jobs, args.keep, args.only) for name in (args.modules or MODULES)
    ]

    print()
    print(f"{'module':20} {'killed':>7} {'total':>6} {'score':>7}  other outcomes")
    for s in scores:
        other = ", ".join(f"{k}: {n}" for k, n in sorted(s.counts.items()) if k not in KILLED)
        print(f"{s.module:20} {s.killed:7} {s.total:6} {s.score:6.1f}%  {other}")
    killed, total = sum(s.killed for s in scores), sum(s.total for s in scores)
    if len(scores) > 1 and total:
        print(f"{'all':20} {killed:7} {total:6} {100.0 * killed / total:6.1f}%")
    for s in scores:
        for survivor in s.survivors:
            print(f"\n-- {s.statuses[survivor]}: {survivor}\n{s.diffs.get(survivor, '')}")
    for s in scores:
        if not s.total:  # e.g. the tests failed without mutations: that is no 100 %
            print(f"\n!! {s.module}: no mutant was checked; mutmut said:", *s.output, sep="\n")
    return 0 if all(s.total and s.score >= args.target for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
