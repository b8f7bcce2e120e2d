//! Autonomy reduction: remediation may recommend lowering an automated agent's autonomy.
//! The reference POSTs to the arbiter by default; here nothing leaves the module unless
//! `arbiter_enabled` is set, and then only through the host (`Host::arbiter_reduce_autonomy`),
//! since a sandboxed module has no sockets.

use nthlayer_sdk::{Host, Level};
use serde_json::json;

use crate::config::RespondConfig;
use crate::incident::Incident;

pub fn decide(host: &dyn Host, cfg: &RespondConfig, inc: &mut Incident) {
    let Some(rem) = inc.remediation.as_ref() else { return };
    let ar = &rem["autonomy_reduction"];
    if ar["recommended"].as_bool() != Some(true) {
        return;
    }
    let agent = ar["target_agent"].as_str().unwrap_or_default().to_string();
    let reason = ar["reason"].as_str().unwrap_or_default().to_string();
    let fields = [("incident_id", inc.id.as_str()), ("agent", agent.as_str())];
    let (sent, note) = if !cfg.arbiter_enabled {
        host.log(Level::Info, "respond_arbiter_disabled", &fields);
        (false, "arbiter_enabled is false".to_string())
    } else {
        match host.arbiter_reduce_autonomy(&agent, &reason) {
            Ok(()) => {
                host.log(Level::Info, "respond_arbiter_reduced", &fields);
                (true, "sent".to_string())
            }
            Err(e) => {
                let e = e.to_string();
                host.log(Level::Warn, "respond_arbiter_unavailable", &[fields[0], fields[1], ("error", &e)]);
                (false, e)
            }
        }
    };
    inc.metadata.insert(
        "autonomy_reduction".into(),
        json!({"recommended": true, "target_agent": agent, "reason": reason, "sent": sent, "note": note}),
    );
}
