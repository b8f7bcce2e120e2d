//! Prometheus's flag and environment (the reference's names and defaults).

#[derive(Debug, Clone, clap::Args)]
pub struct PrometheusArgs {
    #[arg(long, default_value = "http://localhost:9090")]
    pub prometheus_url: String,
    /// Basic auth from `PROMETHEUS_USERNAME|NTHLAYER_METRICS_USER` and
    /// `PROMETHEUS_PASSWORD|NTHLAYER_METRICS_PASSWORD`, as the reference reads them (no flag:
    /// a password on the command line is visible to every user of the machine).
    #[arg(skip = basic_auth(|k| std::env::var(k).ok()))]
    pub auth: Option<BasicAuth>,
}

#[derive(Clone, PartialEq)]
pub struct BasicAuth {
    pub user: String,
    pub password: String,
}

/// The password never reaches a log line or a `{:?}` of the arguments.
impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicAuth({}, <password>)", self.user)
    }
}

/// The first name if set, else the second; empty counts as unset; auth only when both halves
/// are there.
fn basic_auth(env: impl Fn(&str) -> Option<String>) -> Option<BasicAuth> {
    let either = |a: &str, b: &str| env(a).or_else(|| env(b)).filter(|v| !v.is_empty());
    let user = either("PROMETHEUS_USERNAME", "NTHLAYER_METRICS_USER")?;
    let password = either("PROMETHEUS_PASSWORD", "NTHLAYER_METRICS_PASSWORD")?;
    Some(BasicAuth { user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn auth_takes_either_name_and_needs_both_halves() {
        let a = basic_auth(env(&[("PROMETHEUS_USERNAME", "prom"), ("NTHLAYER_METRICS_PASSWORD", "s3cret")])).unwrap();
        assert_eq!((a.user.as_str(), a.password.as_str()), ("prom", "s3cret"));
        assert!(!format!("{a:?}").contains("s3cret"));
        let b = basic_auth(env(&[("NTHLAYER_METRICS_USER", "metrics"), ("PROMETHEUS_PASSWORD", "p")])).unwrap();
        assert_eq!(b.user, "metrics");
        // A set but empty first name wins over the second, and counts as unset.
        let set_empty =
            [("PROMETHEUS_USERNAME", ""), ("NTHLAYER_METRICS_USER", "metrics"), ("PROMETHEUS_PASSWORD", "p")];
        assert_eq!(basic_auth(env(Box::leak(Box::new(set_empty)))), None);
        assert_eq!(basic_auth(env(&[("PROMETHEUS_USERNAME", "prom")])), None);
    }
}
