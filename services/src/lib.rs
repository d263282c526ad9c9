pub mod gcd;
pub mod monitor;
pub mod registry;
pub mod token;
