//! Tempo's flag and environment (the reference's names).

#[derive(Debug, Clone, clap::Args)]
pub struct TempoArgs {
    /// Grafana Tempo base URL (without it the tempo import answers "not configured").
    #[arg(long)]
    pub tempo_endpoint: Option<String>,
    /// The tenant (`X-Scope-OrgID`) from `TEMPO_ORG_ID`, as the reference reads it; unset or
    /// empty means a single-tenant Tempo and no header.
    #[arg(skip = org_id(|k| std::env::var(k).ok()))]
    pub org_id: Option<String>,
}

fn org_id(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    env("TEMPO_ORG_ID").map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tenant_is_trimmed_and_empty_is_none() {
        assert_eq!(super::org_id(|_| Some(" tenant-a ".into())).as_deref(), Some("tenant-a"));
        assert_eq!(super::org_id(|_| Some("  ".into())), None);
        assert_eq!(super::org_id(|_| None), None);
    }
}
