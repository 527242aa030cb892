"""Time the sanity report: ``quick=true`` on 2,000 CIFAR-sized images on this CPU, with the
number of network passes it makes, and the passes the full report needs.

    python benchmarks/sanity_report.py [--n 2000] [--weights random:0] [--device cpu]

Runs ``python -m harness +experiment=sanity quick=true`` in-process on a fresh cache (every
pass is a real network pass), counting passes as cache misses.  The full report's extra passes
(check 5: each other backbone; check 6: each distinct resize operation) are counted from the same
configuration and timed as a full run when ``--full`` is given (slow on a CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--weights", default="random:0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args(argv)
    import torch  # noqa: F401  (before TensorFlow)

    from harness import api, data
    from harness.cache import LogitsCache

    passes, orig = [], LogitsCache.get

    def get(self, backbone, source, *args, **kw):
        res = orig(self, backbone, source, *args, **kw)
        if not res.from_cache:
            passes.append(f"{backbone.name}/{backbone.provenance()['resize']}/{len(source)}")
        return res

    LogitsCache.get = get
    tmp = Path(tempfile.mkdtemp(prefix="bench-sanity-"))
    np.savez(tmp / "s.npz", images=data.load_source("synthetic", count=a.n).read_all())
    rows = []
    for label, extra in [("quick=true", ["quick=true"])] + ([("full", [])] if a.full else []):
        passes.clear()
        t = time.perf_counter()
        api.run_experiment(
            "sanity",
            [
                f"weights={a.weights}",
                "dataset=arrays",
                f"dataset.path={tmp / 's.npz'}",
                f"device={a.device}",
                f"cache.dir={tmp / ('cache_' + label.replace('=', '_'))}",
                "progress=false",
                *extra,
            ],
            run_dir=tmp / f"run_{label.replace('=', '_')}",
        )
        rows.append((label, time.perf_counter() - t, list(passes)))
    print(f"\nsanity report on {a.n:,} CIFAR-sized images ({a.weights}, {a.device})")
    for label, sec, p in rows:
        print(f"{label:12s} {sec:8.1f} s  {len(p)} network pass(es): {', '.join(p)}")


if __name__ == "__main__":
    main()
