"""One module per experiment, each with one ``conf/experiment/<name>.yaml``.

The protocol (written once, here; :func:`harness.runner.execute` is its only caller):

* ``compute(cfg) -> harness.runner.Result``: the numbers.  Networks and image sources come
  from :func:`harness.inputs.load_inputs` (the one input path: all missing inputs reported at once,
  the global ``weights`` override applied once); logits from :func:`harness.pipeline.outputs`
  (the cache); scores from :mod:`harness.scores` and the other metric modules.  No files.
* ``present(result, run)``: tables, figures and JSON through ``run``
  (:class:`harness.runner.Run`, every file atomic; provenance is written after it returns).
* optional ``headline(result) -> str``: one line for the ``paper`` summary;
* optional ``paper_figures(run_dir) -> {name: figure}``: for ``paper_figs``.

Adding an experiment: a module with these functions and a YAML (``# @package _global_``, its
first comment line is its description).  Joining ``paper`` is one line in
``conf/experiment/paper.yaml``.
"""
