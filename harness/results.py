"""Writing run outputs: tables (CSV, Markdown, LaTeX), figures (PNG, PDF), provenance JSON.

Every file is written atomically (temporary file in the same directory, then ``os.replace``),
so an interrupted run never leaves a half-written table behind, and a failed write leaves no
temporary file.  A directory that cannot be written (disk full, quota, permissions, read-only
file system, a path under a regular file) is one :class:`~harness.errors.HarnessError` line
naming the path and the fix (:func:`write_error`), not a traceback.  Table columns whose value is
the same in every row (backbone, weights sha256, ddof, ...) are moved out of the Markdown and
LaTeX body into a provenance list under the table; the CSV keeps every column on every row.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import provenance as prov
from .errors import HarnessError

RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS: not a real score (smoke run of the pipeline)"
UNVERIFIED_WEIGHTS_BANNER = (
    "UNVERIFIED WEIGHTS: the weights match no published file; not a citable score"
)
#: weights status (:mod:`harness.backbones.weights`) -> the banner on every output of a run
BANNERS = {"random": RANDOM_WEIGHTS_BANNER, "unverified": UNVERIFIED_WEIGHTS_BANNER}
#: the ``weights_note`` column of a bannered table
NOTES = {"random": "random weights", "unverified": "unverified weights"}


def banner_status(random_weights: bool = False, weights_status: str | None = None) -> str | None:
    """The status whose banner a run's outputs carry: random, unverified, or None (no banner)."""
    if random_weights:
        return "random"
    return weights_status if weights_status in BANNERS else None


def weights_banner(random_weights: bool = False, weights_status: str | None = None) -> str | None:
    """:data:`RANDOM_WEIGHTS_BANNER`, :data:`UNVERIFIED_WEIGHTS_BANNER` or None."""
    return BANNERS.get(banner_status(random_weights, weights_status))


#: errors of a write that the user fixes (space, permissions, a wrong directory), not bugs
WRITE_ERRNOS = frozenset(
    getattr(errno, n)
    for n in ("ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM", "EROFS", "ENOTDIR", "EEXIST")
    if hasattr(errno, n)
)
#: of those, the ones that can only come from writing (also raised while filling a temp file)
_FULL_ERRNOS = frozenset(
    getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, n)
)


def _blocking_file(path: Path) -> Path | None:
    """The first existing component of ``path`` that is not a directory (None: no such one)."""
    for p in (path, *path.parents):
        try:
            if p.exists():
                return None if p.is_dir() else p
        except OSError:
            continue
    return None


def write_error(path, exc: OSError, fix: str | None = None) -> HarnessError:
    """One line for a write to ``path`` that failed with ``exc``: what happened and the fix.

    ``fix``: what the caller's user can change (e.g. ``set cache.dir=<writable directory>``);
    without it, "write to another directory".
    """
    path = Path(path)
    code = getattr(exc, "errno", None)
    where = path.parent
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        what = "the disk is full (or over quota)"
        todo = "free space on that disk"
    elif code in (errno.EACCES, errno.EPERM):
        what = "permission denied"
        todo = f"make {where} writable"
    elif code == errno.EROFS:
        what = "the file system is read-only"
        todo = "write to a writable file system"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        block = _blocking_file(path)
        what = f"{block or where} is a file, not a directory"
        todo = "choose another directory"
    else:
        what = exc.strerror or type(exc).__name__
        todo = "check that directory"
    return HarnessError(
        f"cannot write {path}: {what}; {todo}, or {fix or 'write to another directory'}"
    )


def is_write_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def ensure_dir(path, fix: str | None = None) -> Path:
    """``mkdir -p path``; an unwritable location is one :func:`write_error` line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if not is_write_error(exc):
            raise
        raise write_error(path / ".", exc, fix) from None
    return path


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None, fix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file is removed whatever happens.  Disk full, permissions, a read-only file
    system or a parent that is a regular file raise :func:`write_error` (``fix``: the caller's
    remedy) instead of a bare ``OSError``.
    """
    path = Path(path)
    tmp = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent
            )
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are shared
        except OSError as exc:
            if not is_write_error(exc):
                raise
            raise write_error(path, exc, fix) from None
        try:
            yield Path(tmp)
        except OSError as exc:
            # filling the temporary file: disk full, or a write error about that very file
            if exc.errno in _FULL_ERRNOS or (
                is_write_error(exc) and exc.filename in (None, tmp, Path(tmp))
            ):
                raise write_error(path, exc, fix) from None
            raise
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if not is_write_error(exc):
                raise
            raise write_error(path, exc, fix) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def atomic_write_text(path, text: str, fix: str | None = None) -> Path:
    with atomic_path(path, fix=fix) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path, data: bytes, fix: str | None = None) -> Path:
    with atomic_path(path, fix=fix) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def json_text(obj) -> str:
    """``obj`` as the JSON text :func:`write_json` writes (NaN/inf and numpy values mapped)."""
    return json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n"


def write_json(path, obj, fix: str | None = None) -> Path:
    return atomic_write_text(path, json_text(obj), fix=fix)


# --------------------------------------------------------------------------- formatting


def _fmt(v, digits: int = 6) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        v = float(v) + 0.0  # no "-0"
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-4):
            return f"{v:.{digits - 2}e}"
        return f"{v:.{digits}g}" if abs(v) >= 1e3 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


def split_constant_columns(df: pd.DataFrame, keep: list | None = None):
    """Columns that vary (the table body) and a dict of columns constant over all rows."""
    keep = set(keep or [])
    body, const = [], {}
    for c in df.columns:
        vals = df[c].tolist()
        same = len(df) > 1 and all(_fmt(v) == _fmt(vals[0]) for v in vals)
        if same and c not in keep:
            const[c] = vals[0]
        else:
            body.append(c)
    return body, const


def to_markdown(df: pd.DataFrame, digits: int = 6) -> str:
    cols = [str(c) for c in df.columns]
    rows = [[_fmt(v, digits).replace("|", "\\|") for v in r] for r in df.itertuples(index=False)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, caption: str = "", digits: int = 6) -> str:
    cols = list(df.columns)
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in cols)
    out = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        out.append(r"\caption{" + tex_escape(caption) + "}")
    out += [r"\begin{tabular}{" + align + "}", r"\toprule"]
    out.append(" & ".join(tex_escape(c) for c in cols) + r" \\")
    out.append(r"\midrule")
    for r in df.itertuples(index=False):
        out.append(" & ".join(tex_escape(_fmt(v, digits)) for v in r) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(
    df: pd.DataFrame,
    run_dir,
    name: str = "table",
    title: str = "",
    notes: list[str] | None = None,
    random_weights: bool = False,
    keep_columns: list | None = None,
    digits: int = 6,
    weights_status: str | None = None,
) -> dict:
    """Write ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` atomically; return their paths.

    ``random_weights`` (or ``weights_status="unverified"``) puts :data:`RANDOM_WEIGHTS_BANNER`
    (:data:`UNVERIFIED_WEIGHTS_BANNER`) into the title of every format and a ``weights_note``
    column into the CSV, so no reader can mistake a smoke run or an unknown network for a result.
    """
    run_dir = Path(run_dir)
    df = df.copy()
    status = banner_status(random_weights, weights_status)
    if status:
        title = f"[{BANNERS[status]}] {title}".strip()
        df["weights_note"] = NOTES[status]
    paths = {}
    with atomic_path(run_dir / f"{name}.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")
    paths["csv"] = run_dir / f"{name}.csv"

    body_cols, const = split_constant_columns(df, keep=keep_columns)
    body = df[body_cols] if body_cols else df
    md = []
    if title:
        md.append(f"## {title}\n")
    md.append(to_markdown(body, digits))
    if const:
        md.append("\nSame for every row:\n")
        md += [f"- `{k}`: {_fmt(v, digits)}" for k, v in const.items()]
    if notes:
        md.append("")
        md += [f"> {n}" for n in notes]
    paths["md"] = atomic_write_text(run_dir / f"{name}.md", "\n".join(md) + "\n")

    tex = to_latex(body, caption=title, digits=digits)
    if const or notes:
        extra = [f"% {k}: {_fmt(v, digits)}" for k, v in const.items()] + [
            f"% {n}" for n in notes or []
        ]
        tex = "% Same for every row:\n" + "\n".join(extra) + "\n" + tex
    paths["tex"] = atomic_write_text(run_dir / f"{name}.tex", tex)
    return paths


def print_table(df: pd.DataFrame, title: str = "", columns: list | None = None, digits: int = 5):
    """Print the main table to the terminal (body columns only)."""
    view = df[[c for c in columns if c in df.columns]] if columns else df
    if title:
        print(f"\n{title}")
    with pd.option_context(
        "display.max_columns", None, "display.width", 200, "display.max_colwidth", 60
    ):
        print(view.to_string(index=False, float_format=lambda v: _fmt(v, digits)))


def save_figure(
    fig,
    run_dir,
    name: str,
    random_weights: bool = False,
    dpi: int = 150,
    weights_status: str | None = None,
) -> dict:
    """Save a matplotlib figure as ``<name>.png`` and ``<name>.pdf`` atomically, then close it.

    Random (or unverified) weights put their banner under the axes as a watermark."""
    import matplotlib.pyplot as plt

    banner = weights_banner(random_weights, weights_status)
    if banner:  # below the axes: never over a title or caption
        fig.text(
            0.5,
            -0.01,
            banner,
            ha="center",
            va="top",
            color="crimson",
            fontsize=9,
            weight="bold",
        )
    run_dir = Path(run_dir)
    paths = {}
    try:
        for ext in ("png", "pdf"):
            target = run_dir / f"{name}.{ext}"
            with atomic_path(target) as tmp:
                # no timestamps in the files: the same figure gives the same bytes
                meta = {"CreationDate": None} if ext == "pdf" else {}
                fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=meta)
            paths[ext] = target
    finally:
        plt.close(fig)
    return paths


def write_provenance(
    run_dir,
    config: dict,
    extra: dict | None = None,
    started: str | None = None,
    random_weights: bool = False,
    weights_status: str | None = None,
) -> Path:
    """``provenance.json``: config, package versions, git commit, seed, timestamps, host.

    ``weights_note`` is the run's banner (None: none); ``weights_status`` what the networks'
    weights are (random | unverified | verified | trained here | user network; None: no
    network)."""
    record = {
        "weights_note": weights_banner(random_weights, weights_status),
        "weights_status": "random" if random_weights else weights_status,
        "config": config,
        "seed": config.get("seed") if isinstance(config, dict) else None,
        "started": started,
        "finished": prov.now_iso(),
        "packages": prov.package_versions(),
        "git": prov.git_state(),
        "host": prov.host_info(),
    }
    if extra:
        record.update(extra)
    return write_json(Path(run_dir) / "provenance.json", record)
