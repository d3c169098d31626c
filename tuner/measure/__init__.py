"""Measurement below the engines: the heartbeat the trial's processes share (``heartbeat``), the epoch clock
and model that turn a window into an epoch (``epoch_model``), and the analytic model that predicts a
setting's throughput from the probes (``predict``)."""
