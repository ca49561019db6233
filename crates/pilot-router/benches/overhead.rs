//! Router overhead per `route` + `feedback` beside the bare policy (select + update).
fn main() {}
