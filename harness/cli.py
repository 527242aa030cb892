"""Command line: ``python -m harness +experiment=<name> [key=value ...]`` (Hydra, version_base 1.3).

``python -m harness`` alone lists the experiments; an unknown name is a one-line error.
"""

from __future__ import annotations

import sys

from .errors import HarnessError
from .experiment_registry import CONF_DIR, available_experiments, describe


def _requested_experiment(argv: list[str]) -> str | None:
    for arg in argv:
        for prefix in ("+experiment=", "++experiment=", "experiment="):
            if arg.startswith(prefix):
                return arg[len(prefix):]
    return None


def _print_listing() -> None:
    print("inception-note: run one experiment with  python -m harness +experiment=<name>\n")
    print("experiments:")
    for name in available_experiments():
        print(f"  {name:<26} {describe(name)}")
    print("\nconfig groups and keys: python -m harness +experiment=<name> --cfg job")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = any(a.startswith("--") or a == "-m" for a in argv)
    name = _requested_experiment(argv)
    if name is None and not passthrough:
        _print_listing()
        raise SystemExit(0)
    if name is not None and name not in available_experiments():
        valid = ", ".join(available_experiments())
        print(f"error: unknown experiment '{name}'; valid experiments: {valid}", file=sys.stderr)
        raise SystemExit(2)

    import hydra

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def _task(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig

        from .api import run_with_config

        run_dir = HydraConfig.get().runtime.output_dir
        try:
            run_with_config(cfg, run_dir)
        except (HarnessError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(getattr(exc, "exit_code", 2)) from None

    sys.argv = [sys.argv[0], *argv]
    _task()
