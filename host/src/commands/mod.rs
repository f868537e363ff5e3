pub mod eval;
pub mod verify;
pub mod bench;
