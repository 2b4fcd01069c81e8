//! Placeholder until the mock server lands.
#[derive(clap::Args, Debug, Clone)]
pub struct MockArgs {}
