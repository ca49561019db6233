//! Bandit policies for PILOT router: PILOT, LinUCB, linear Thompson sampling and baselines. no_std, no allocator.
