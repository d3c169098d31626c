"""The search: the space of settings, the Optuna study over it, its stop rules, and the final race."""
