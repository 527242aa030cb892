"""inception-note: a harness that makes the Inception Score trustworthy.

Library entry points (no framework is imported until a backbone needs it):

* :mod:`harness.scores`: IS, the improved score S(G), entropies (numpy, float64).
* :mod:`harness.toy`: the paper's 1-D two-Gaussian example.
* :mod:`harness.api`: run an experiment from Python without the Hydra CLI.
"""

__version__ = "0.1.0"
