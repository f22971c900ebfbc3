//! Integration tests of the OpenAI simulator, driven over HTTP with reqwest on
//! 127.0.0.1 only. Every wait is bounded by a client timeout.

mod capture;
mod chat;
mod faults;
mod misc;
mod responses;
mod support;
mod tools;
