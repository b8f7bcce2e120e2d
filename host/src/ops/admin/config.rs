//! The admin API's flags, flattened into `serve`'s.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Address of the admin API's own listener (off unless set; keep it on loopback or a
    /// private network: the token is its only guard and it speaks plain HTTP).
    #[arg(long, env = "NTHLAYER_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// File holding the admin API's bearer token (whitespace around it ignored). Without it
    /// every admin route answers 403. Re-read on SIGHUP and `POST /-/reload`.
    #[arg(long, env = "NTHLAYER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}
