pub mod bench;
pub mod eval;
pub mod verify;
