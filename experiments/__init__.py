"""One module per experiment; each exposes ``run(cfg, run_dir) -> ExperimentResult``."""
