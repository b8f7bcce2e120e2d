//! core's flags and environment (the reference's names and defaults).

/// `--core-url`, plus the environment the reference reads for core.
#[derive(Debug, Clone, clap::Args)]
pub struct CoreArgs {
    /// nthlayer-core base URL.
    #[arg(long, default_value = "http://localhost:8000", env = "NTHLAYER_CORE_URL")]
    pub core_url: String,
    /// `NTHLAYER_DEPLOYMENT_ID` (default `default`): the `<deployment>` of every record's
    /// CloudEvents source. The reference has no flag for it, so neither do we.
    #[arg(skip = deployment_id(|k| std::env::var(k).ok()))]
    pub deployment_id: String,
    /// `NTHLAYER_CORE_BACKOFF_MS`: the first retry delay (tests shorten the reference's 1 s
    /// doubling).
    #[arg(skip = backoff_ms(|k| std::env::var(k).ok()))]
    pub backoff_ms: Option<u64>,
}

fn deployment_id(env: impl Fn(&str) -> Option<String>) -> String {
    env("NTHLAYER_DEPLOYMENT_ID").unwrap_or_else(|| "default".into())
}

fn backoff_ms(env: impl Fn(&str) -> Option<String>) -> Option<u64> {
    env("NTHLAYER_CORE_BACKOFF_MS").and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_as_the_reference_reads_it() {
        assert_eq!(deployment_id(|_| None), "default");
        assert_eq!(deployment_id(|_| Some("prod-eu".into())), "prod-eu");
        assert_eq!(backoff_ms(|_| Some("25".into())), Some(25));
        assert_eq!(backoff_ms(|_| Some("soon".into())), None);
    }
}
