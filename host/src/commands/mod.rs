pub mod eval;
pub mod verify;
