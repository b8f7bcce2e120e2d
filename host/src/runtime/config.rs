//! The runtime's flags: where compiled components are cached.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Where compiled components are cached (default: $NTHLAYER_CACHE_DIR or ~/.cache/nthlayer-host).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache directory to use, or none under `--no-cache`.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(super::cache::default_dir)
        }
    }
}
