//! The simulated Kubernetes cluster: a store and controllers behind the real HTTP API.
//!
//! # Layout
//! - [`store`]: objects, resourceVersion, watch history, finalizers and garbage collection.
//! - [`world`]: the [`World`] (store, clock, RNG, timers) and the [`Controller`] API.
//! - [`resources`]: the registry of kinds; [`crds`]: the embedded CRDs, parsed lazily.
//! - [`selector`], [`patch`], `defaults`: label/field selectors, patch kinds, defaulting.
//! - [`controllers`]: the core controllers, run in a fixed order.
//! - [`schema`]: CRD openAPIV3Schema validation.

pub mod controllers;
pub mod crds;
mod defaults;
pub mod error;
pub mod patch;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod store;
pub mod world;

pub use error::{ApiError, Reason};
pub use resources::{Registry, ResId, ResourceDef};
pub use selector::{FieldSelector, LabelSelector};
pub use store::{DeleteOptions, Event, EventKind, Propagation, Store};
pub use world::{Controller, Ctx, World, virtual_epoch};
