"""Command line: ``python -m harness +experiment=<name> [key=value ...]`` (Hydra, version_base 1.3).

Also installed as the console script ``inception-note``.  ``python -m harness`` alone lists the
experiments; ``-h`` shows Hydra's help with the same list; tab completion:
``eval "$(inception-note -sc install=bash)"``.

Error policy: the harness's own errors (:class:`~harness.errors.HarnessError`) are printed as one
line and exit with their code (2, or 3 for a strict sanity failure); anything else is a bug and
prints its traceback plus one line saying so (exit 1).  An interrupt exits 130.  In a multirun
(``-m``) a failing job is recorded in its ``INCOMPLETE`` marker and the other jobs still run;
the command exits 1 at the end if any job failed.

Run dirs: unless ``hydra.run.dir`` is given, each run claims a new
``<output_root>/<experiment>/<timestamp to the microsecond>`` directory exclusively (a counter
suffix if taken), so two runs never share one; an explicit ``hydra.run.dir`` that already holds
results is refused unless ``overwrite=true``.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from pathlib import Path

from .errors import HarnessError, UserCodeError
from .experiment_registry import (
    CONF_DIR,
    available_experiments,
    describe,
    unknown_experiment,
)

BUG_LINE = (
    "error: the traceback above is a bug in inception-note (or in code it called, such as "
    "a generator callable), not a problem with your command; please report it"
)
_FAILED_JOBS: list[str] = []
_CLAIMED: list[Path] = []  # dirs this process created for its runs (removed again if unused)


def _value(argv: list[str], *keys: str) -> str | None:
    for arg in reversed(argv):
        for key in keys:
            for prefix in (f"{key}=", f"+{key}=", f"++{key}="):
                if arg.startswith(prefix):
                    return arg[len(prefix) :]
    return None


def _print_listing() -> None:
    print("inception-note: run one experiment with  python -m harness +experiment=<name>\n")
    print(experiment_listing())
    print("\nhelp, config groups and keys: python -m harness +experiment=<name> --help")


def experiment_listing() -> str:
    lines = ["experiments:"]
    lines += [f"  {n:<26} {describe(n)}" for n in available_experiments()]
    return "\n".join(lines)


def quiet_frameworks(verbose: bool) -> None:
    """Silence TensorFlow's C++ log noise (cuInit, absl) unless ``verbose=true``."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("harness_experiments"):
        OmegaConf.register_new_resolver("harness_experiments", experiment_listing)


def _claim_dirs(argv: list[str], name: str | None) -> list[str]:
    """Add a freshly claimed ``hydra.run.dir`` / ``hydra.sweep.dir`` unless the user set one."""
    from . import runner

    multirun = any(a in ("-m", "--multirun") for a in argv)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = _value(argv, key)
    overwrite = (_value(argv, "overwrite") or "").lower() == "true"
    if given is not None:
        if not multirun:
            run_dir = Path(given)
            runner.check_run_dir(run_dir, overwrite)
            if overwrite and runner.result_entries(run_dir) and (run_dir / ".hydra").is_dir():
                # Hydra is about to write the new run's .hydra/ here: keep the replaced run's
                # beside its results (stashed with them; put back if the new run fails)
                previous = run_dir / runner.PREVIOUS_HYDRA
                if previous.is_dir():  # left by an overwrite that was killed: Hydra metadata
                    import shutil

                    shutil.rmtree(previous)
                (run_dir / ".hydra").rename(previous)
        return argv
    if name is None:
        return argv
    root = Path(_value(argv, "output_root") or "results")
    stem = ("multirun_" if multirun else "") + runner.timestamp()
    try:
        claimed = runner.claim_new_dir(root / name, stem)
    except OSError as exc:
        from .errors import ConfigError

        raise ConfigError(
            f"cannot create a run dir under {root / name} ({exc.strerror or exc}); choose a "
            "writable output_root=<dir>"
        ) from None
    _CLAIMED.append(claimed)
    return [*argv, f"{key}={claimed}"]


def _overrides(argv: list[str]) -> list[str]:
    """The config overrides of a command line (no flags, no ``+experiment=``)."""
    return [
        a for a in argv if not a.startswith("-") and not a.lstrip("+").startswith("experiment=")
    ]


def precheck(name: str, argv: list[str]) -> None:
    """Compose and validate the config before any run dir exists: a bad override (Hydra's
    own errors included) is one line, and leaves nothing behind.  With ``overwrite=true`` and an
    explicit ``hydra.run.dir``, no input of the run may lie inside that dir."""
    from .api import compose
    from .config import check_sources_exist, resolved
    from .errors import ConfigError
    from .runner import check_inputs_outside

    overrides = _overrides(argv)
    try:
        cfg = compose(name, overrides)
    except HarnessError:
        raise
    except Exception as exc:  # Hydra/OmegaConf: unknown group option, merge type errors ...
        msg = " ".join(str(exc).split())
        raise ConfigError(
            f"invalid override: {msg} (python -m harness +experiment={name} "
            "--help lists the config)"
        ) from None
    run_dir = _value(argv, "hydra.run.dir")
    if run_dir is not None and (_value(argv, "overwrite") or "").lower() == "true":
        check_inputs_outside(Path(run_dir), resolved(cfg))
    check_sources_exist(cfg, name)  # a missing folder: before any framework is imported


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in available_experiments():  # `inception-note score a=...`
        argv = [f"+experiment={argv[0]}", *argv[1:]]
    quiet_frameworks((_value(argv, "verbose") or "").lower() == "true")
    passthrough = any(a.startswith("-") for a in argv)
    name = _value(argv, "experiment")
    if name is None and not passthrough:
        _print_listing()
        raise SystemExit(0)
    if name is not None and name not in available_experiments():
        print(f"error: {unknown_experiment(name)}", file=sys.stderr)
        raise SystemExit(2)
    help_only = any(
        a in ("-h", "--help", "--hydra-help", "--info", "--cfg", "-c")
        or a.startswith(("-sc", "--shell-completion", "--info"))
        for a in argv
    )
    multirun = any(a in ("-m", "--multirun") for a in argv)
    try:
        if name is not None:  # reference=<dir> / <dataset> / <stats.npz> as Hydra overrides
            from .config import expand_shorthands

            argv = expand_shorthands(name, argv)
        if not help_only:
            if name is not None and not multirun:
                precheck(name, argv)
            elif name is not None:  # a misspelt key or option: before any job starts
                from .api import explain_composition

                explain_composition(name, _overrides(argv))
            argv = _claim_dirs(argv, name)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None

    import hydra

    _register_resolvers()

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def _task(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        # config groups may come from an extra search path: validation composes with it too
        extra = [o for o in hc.overrides.hydra if o.startswith("hydra.searchpath")]
        code = run_task(cfg, hc.runtime.output_dir, [*hc.overrides.task, *extra], multirun)
        if code and not multirun:
            raise SystemExit(code)

    sys.argv = [sys.argv[0], *argv]
    _task()
    if multirun and not help_only:
        report_failed_jobs(_value(argv, "hydra.sweep.dir"))


def report_failed_jobs(sweep_dir) -> None:
    """After a multirun (any launcher: jobs may have run in other processes or on other hosts),
    name every job that left an ``INCOMPLETE`` marker, with its error line; exit 1 if any."""
    from .runner import failed_jobs

    failed = failed_jobs(sweep_dir) if sweep_dir else []
    if not failed and _FAILED_JOBS:  # no sweep dir to scan: what this process saw
        failed = [(Path(j), {"error": "see above"}) for j in _FAILED_JOBS]
    if failed:
        lines = [
            f"  job {d.name}: {m.get('error', m.get('status', 'unfinished'))}" for d, m in failed
        ]
        print(
            f"error: {len(failed)} job(s) failed (each keeps an INCOMPLETE marker; "
            f"python -m harness +experiment=collect runs=[{sweep_dir}] tabulates them):\n"
            + "\n".join(lines),
            file=sys.stderr,
        )
        raise SystemExit(1)


def run_task(cfg, run_dir, overrides: list[str], multirun: bool = False) -> int:
    """Validate and run one job; return its exit code (0 = success), printing errors by policy."""
    from .api import prepare, run_with_config
    from .config import check_sources_exist

    name = cfg.get("experiment_name")
    if name is None:
        print(
            "error: no experiment chosen; add +experiment=<name> (python -m harness lists them)",
            file=sys.stderr,
        )
        return 2
    code, user_error, failure = 0, False, ""
    try:
        prepare(cfg, overrides, name)
        check_sources_exist(cfg, name)
        run_with_config(cfg, run_dir)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code, user_error, failure = exc.exit_code, True, str(exc)
    except KeyboardInterrupt:
        print(f"error: interrupted; {run_dir} keeps an INCOMPLETE marker", file=sys.stderr)
        if multirun:
            raise SystemExit(130) from None
        code = 130
    except SystemExit as exc:  # sys.exit() inside code the harness called
        print(
            f"error: code called sys.exit({exc.code}) inside the run; the run stopped "
            f"unfinished ({run_dir} keeps an INCOMPLETE marker)",
            file=sys.stderr,
        )
        code = 1
    except UserCodeError as exc:
        traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        code, failure = 1, str(exc)
    except OSError as exc:
        line = disk_error_line(exc)
        if line is None:
            traceback.print_exc()
            print(BUG_LINE, file=sys.stderr)
        else:
            print(f"error: {line}", file=sys.stderr)
            failure, user_error = line, True
        code = 1 if line is None else 2
    except Exception:
        traceback.print_exc()
        print(BUG_LINE, file=sys.stderr)
        code = 1
    if code:
        if not multirun:
            _forget_unused(Path(run_dir), user_error)
        if multirun:
            from .runner import mark_failed

            _FAILED_JOBS.append(f"{Path(run_dir).name} ({name})")
            mark_failed(run_dir, name, "error", f"exit code {code}" if not failure else failure)
    return code


#: errors of the filesystem a user fixes (space, permissions, a file where a dir should be)
DISK_ERRNOS = {
    errno.ENOSPC: ("write", "the disk is full: free space"),
    errno.EDQUOT: ("write", "the disk quota is exceeded: free space"),
    errno.EACCES: ("access", "permission denied: fix the permissions or choose another path"),
    errno.EPERM: ("access", "permission denied: fix the permissions or choose another path"),
    errno.EROFS: ("write", "the filesystem is read-only: choose a writable directory"),
    errno.ENOTDIR: ("access", "a path component is a file, not a directory: fix the path"),
}


def disk_error_line(exc: OSError) -> str | None:
    """One line for an OSError a user fixes (naming the path), or None for anything else."""
    what = DISK_ERRNOS.get(exc.errno)
    if what is None:
        return None
    verb, fix = what
    where = exc.filename or "a file"
    return (
        f"cannot {verb} {where} ({exc.strerror or exc}); {fix} (cache.dir=, output_root= and "
        "hydra.run.dir= choose where the harness writes), then run again"
    )


def _forget_unused(run_dir: Path, user_error: bool) -> None:
    """A claimed run dir that holds no results is removed: one that never started, or one
    stopped by a user-fixable error (printed) before it wrote anything.  A crash or an
    interrupt keeps its INCOMPLETE marker."""
    import shutil

    from .runner import INCOMPLETE, result_entries

    held = [p.name for p in result_entries(run_dir)] if run_dir.exists() else []
    if run_dir in _CLAIMED and (not held or (user_error and held == [INCOMPLETE])):
        shutil.rmtree(run_dir, ignore_errors=True)
