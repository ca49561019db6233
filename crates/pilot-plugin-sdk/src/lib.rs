//! What a PILOT router plugin author depends on: one trait to implement and one export macro.
