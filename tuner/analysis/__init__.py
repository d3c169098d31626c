"""What the measurements mean: the analytic model, the epoch model, and the reasons and warnings."""
