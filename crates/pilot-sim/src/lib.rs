//! Bandit-feedback replay simulator for PILOT router: policies × budgets × seeds, metrics and reports.
