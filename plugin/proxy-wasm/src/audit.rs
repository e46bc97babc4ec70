//! Where this host's audit events go: the proxy log, and the core's export buffer when the
//! configuration has a collector.

use std::cell::RefCell;
use std::rc::Rc;

use bridle_core::control::ControlPlane;

pub struct AuditOutputs {
    pub log: bool,
    pub control: Rc<RefCell<ControlPlane>>,
}
