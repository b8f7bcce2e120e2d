//! The log import's rules: every module has it (no grant), lines beyond `log_lines` are
//! dropped and counted, and long text is cut.

use crate::bindings::latest::nthlayer::worker::log::{Host, Level};
use crate::capability::HasRooms;
use crate::policy::grants::Grants;
use crate::policy::limits::Limits;
use crate::test_support;

#[tokio::test]
async fn every_module_may_log_up_to_its_line_limit() {
    let services = test_support::services(|_| {});
    let mut s = test_support::store("stranger", services, Grants::none(), Limits { log_lines: 2, ..Limits::default() });
    for i in 0..5 {
        s.log().log(Level::Info, format!("line {i}"), vec![("k".into(), "v".into())]).await;
    }
    assert_eq!((s.rooms.log.lines, s.rooms.log.dropped), (2, 3));
}

#[test]
fn long_text_is_cut_on_a_char_boundary_with_a_marker() {
    let long = "é".repeat(3000); // 6000 bytes
    let cut = super::import::cut(&long);
    assert!(cut.ends_with("…[1904 bytes cut]"), "{}", &cut[cut.len() - 30..]);
    assert_eq!(super::import::cut("short"), "short");
}
