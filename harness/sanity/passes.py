"""The network passes of one sanity report: each check asks for the passes it needs, identical
(images, network) passes run once, and the table says what each pass bought and how long it
took (``passes.csv``, report.md)."""

from __future__ import annotations

import time

from ..pipeline import cache_from_config, outputs

#: how a pass was served, in the passes table
COMPUTED, FROM_CACHE, SKIPPED = "computed", "logits cache", "skipped"
#: an identical (network, images) pair requested earlier in the same report
SHARED = "same as pass {}"


def weights_short(net) -> str:
    """The weights in the passes table: published name or status, and a short sha256 (never a
    local path)."""
    prov = net.provenance()
    if prov.get("weights_kind") == "none":  # pixel space: no weights to name or hash
        return "no weights"
    what = net.weights_name or (
        prov["weights"] if net.weights_status == "random" else f"{net.weights_status} weights"
    )
    return f"{what}, sha256 {str(prov.get('weights_sha256') or 'unknown')[:12]}"


class PassPlan:
    """The network passes of one report: requested by the checks, then run.

    Requests with the key of the logits cache (the images' fingerprint and N, the network's
    cache identity: name, weights sha256, every knob that changes the logits, framework
    versions) are one pass, run once (with pool features when any of them wants them) and handed
    to each request, also with ``cache.enabled=false``; a network identical to an earlier one is
    not kept.  A pass's outputs are released once its requests have used them (``use`` keeps
    what a check needs).  :attr:`rows` is the report's passes table, one row per request.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.cache = cache_from_config(cfg)
        self.groups: dict[str, dict] = {}  # key -> {"net", "src", "features", "uses"}
        self.requests: list[dict] = []  # the table's rows, in request order
        self.skipped: list[dict] = []

    def add(
        self,
        net,
        src,
        images: str,
        purpose: str,
        checks,
        features=False,
        use=None,
        resize: str | None = None,
        load_seconds: float | None = None,
    ) -> None:
        """Ask for ``net`` over ``src`` (``images``: "samples" or "reference") for ``purpose``
        (checks ``checks``); ``use(outputs)`` is called with the pass's outputs.  ``resize``:
        the method asked for when ``net`` was reused for it (same operation);
        ``load_seconds``: the time spent building ``net`` for this request (None: loaded with
        the run's inputs)."""
        key = self.cache.key(src, net)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = {
                "number": len(self.groups) + 1,
                "net": net,
                "src": src,
                "features": False,
                "uses": [],
                "label": purpose,
            }
        group["features"] |= bool(features)
        if use is not None:
            group["uses"].append(use)
        prov = net.provenance()
        self.requests.append(
            {
                "pass": group["number"],
                "network": net.name,
                "weights": weights_short(net),
                "resize": resize or prov["resize"],
                "input_size": prov["input_size"],
                "images": images,
                "n_images": len(src),
                "images_fingerprint": src.fingerprint()[:12],
                "features": bool(features),
                "purpose": purpose,
                "checks": sorted(checks),
                "how": None,
                "seconds": 0.0,
                "load_seconds": None if load_seconds is None else round(load_seconds, 3),
                "reason": None,
                "_key": key,
            }
        )

    def skip(self, name: str, purpose: str, checks, reason: str, images="samples") -> None:
        """An optional network that is not available (its weights are missing): no pass."""
        self.skipped.append(
            {
                "pass": None,
                "network": name,
                "weights": None,
                "resize": None,
                "input_size": None,
                "images": images,
                "n_images": None,
                "images_fingerprint": None,
                "features": False,
                "purpose": purpose,
                "checks": sorted(checks),
                "how": SKIPPED,
                "seconds": 0.0,
                "load_seconds": None,
                "reason": " ".join(str(reason).split()),
            }
        )

    def run(self) -> list[dict]:
        """Run each unique pass once, in the order first asked for; return the table."""
        served = {}
        for key, g in self.groups.items():
            t0 = time.perf_counter()
            out = outputs(self.cfg, g["net"], g["src"], features=g["features"], label=g["label"])
            for use in g["uses"]:
                use(out)
            served[key] = (FROM_CACHE if out.from_cache else COMPUTED, time.perf_counter() - t0)
            g["net"] = g["src"] = out = None  # what the checks need, they keep
            g["uses"] = []
        rows, seen = [], set()
        for r in self.requests:
            key = r.pop("_key")
            how, seconds = served[key]
            if key in seen:
                how, seconds = SHARED.format(r["pass"]), 0.0
            seen.add(key)
            rows.append({**r, "how": how, "seconds": round(seconds, 3)})
        self.rows = rows + self.skipped
        return self.rows


def passes_summary(rows: list[dict]) -> dict:
    """Passes requested, run (computed or read from the logits cache), shared, skipped; seconds."""
    run = [r for r in rows if r["how"] in (COMPUTED, FROM_CACHE)]
    return {
        "requested": sum(r["how"] != SKIPPED for r in rows),
        "run": len(run),
        "computed": sum(r["how"] == COMPUTED for r in run),
        "from_cache": sum(r["how"] == FROM_CACHE for r in run),
        "shared": sum(r["how"].startswith("same as") for r in rows),
        "skipped": sum(r["how"] == SKIPPED for r in rows),
        "seconds": round(sum(r["seconds"] for r in run), 3),
        "load_seconds": round(sum(r["load_seconds"] or 0.0 for r in rows), 3),
    }
