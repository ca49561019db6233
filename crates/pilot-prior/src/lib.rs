//! Learns PILOT's preference prior: the query projection and one vector per LLM, from pairwise preferences.
