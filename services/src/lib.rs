pub mod gcd;
pub mod registry;
