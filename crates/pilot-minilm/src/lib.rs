//! all-MiniLM-L6-v2 sentence embedder for PILOT router in pure Rust (candle), loaded from local files.
