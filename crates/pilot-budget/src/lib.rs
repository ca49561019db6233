//! Budget solvers for PILOT router: exact, greedy and LP multiple-choice knapsack, and online budget policies. no_std, no allocator.
