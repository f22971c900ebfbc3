//! Integration tests of the Anthropic simulator and of the Bedrock simulator's native Claude
//! InvokeModel, driven over HTTP with reqwest on 127.0.0.1 only. Every wait is bounded.

mod bedrock;
mod capture;
mod faults;
mod messages;
mod support;
mod thinking;
