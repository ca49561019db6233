//! Dataset formats for PILOT router: routing datasets, judge scores, raw f32 embeddings and bandit logs, with precise errors.
