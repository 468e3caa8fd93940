"""The lab: question sets, the evaluation runner and its reports, calibration of
the abstention model, the llama-index baselines and the benchmarks. It imports the
runtime (`assistant`, `ui`); the runtime never imports it."""
