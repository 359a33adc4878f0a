#![doc = include_str!("../README.md")]

pub mod images;
pub mod richtext;
pub mod tiers;
