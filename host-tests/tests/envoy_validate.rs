//! The shipped Envoy configuration (`envoy/bridle.yaml.tmpl`), rendered as the demo and the
//! host tests render it, passes `envoy --mode validate` with the real module — which loads it
//! in V8 and runs the plugin's `on_configure`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::demo;
use host_tests::envoy::{self, EnvoyOptions};

#[test]
fn the_demo_configuration_passes_envoy_validate() {
    let issuer = demo::issuer().unwrap();
    let options = EnvoyOptions::new(demo::config(&issuer).unwrap(), 8081);
    if let Err(err) = envoy::validate(&options) {
        panic!("{err}");
    }
}
