"""The pre-publication sanity report, in four modules that each do one job:

* :mod:`.checks`: each check a function over images, probabilities or features, returning a
  :class:`Check` (PASS / WARN / FAIL with the measured value, threshold, why and fix);
* :mod:`.registry`: what each check needs (class probabilities, pool features, a reference,
  passes of its own) and the loop that plans the network passes and runs the checks;
* :mod:`.passes`: the network passes of one report, each identical pass run once;
* :mod:`.report`: the wording (reporting line, values with units, report.md) and the figures.

``experiments/sanity.py`` is the experiment: its settings and the loop's four calls.
"""

from __future__ import annotations

from .checks import (
    DOMAIN_FAIL_BITS,
    DOMAIN_WARN_BITS,
    EXACT_COPY_SIMILARITY,
    FAIL,
    FID_MIN_SAMPLES,
    H_CIFAR,
    H_IMAGENET,
    H_NOISE,
    MIN_EXTRAPOLATION,
    NO_HEAD,
    NOT_APPLICABLE,
    NOT_JUDGED,
    NOT_RUN,
    PASS,
    REPORT_VERSION,
    WARN,
    Check,
    check_backbone_spread,
    check_domain_fit,
    check_feature_distance,
    check_input_format,
    check_memorization,
    check_numerics,
    check_order,
    check_peer_conventions,
    check_preprocessing,
    check_sample_count,
    check_splits,
    same_network,
)
from .report import (
    features_line,
    fid_phrase,
    format_value,
    reporting_line,
    resize_label,
    split_phrase,
    weights_label,
    weights_status,
    weights_warning,
)

__all__ = [
    "Check",
    "DOMAIN_FAIL_BITS",
    "DOMAIN_WARN_BITS",
    "EXACT_COPY_SIMILARITY",
    "FAIL",
    "FID_MIN_SAMPLES",
    "H_CIFAR",
    "H_IMAGENET",
    "H_NOISE",
    "MIN_EXTRAPOLATION",
    "NOT_APPLICABLE",
    "NOT_JUDGED",
    "NOT_RUN",
    "NO_HEAD",
    "PASS",
    "REPORT_VERSION",
    "WARN",
    "check_backbone_spread",
    "check_domain_fit",
    "check_feature_distance",
    "check_input_format",
    "check_memorization",
    "check_numerics",
    "check_order",
    "check_peer_conventions",
    "check_preprocessing",
    "check_sample_count",
    "check_splits",
    "features_line",
    "fid_phrase",
    "format_value",
    "reporting_line",
    "resize_label",
    "same_network",
    "split_phrase",
    "weights_label",
    "weights_status",
    "weights_warning",
]
