"""Moved: the weights porting is :mod:`harness.backbones.porting` (issue 28)."""

raise ImportError("harness.porting moved: import harness.backbones.porting")
