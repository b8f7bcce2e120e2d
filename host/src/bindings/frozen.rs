//! Published contract versions are frozen: a module built against one must keep loading on
//! every later host, so its text may never change. `wit/published.sha256` pins each
//! published folder; changing one is a new version in a new folder (docs/CONTRACT.md).

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sha2::{Digest, Sha256};

    /// sha256 over the folder's files in name order, each as `name \n length \n bytes`, so a
    /// renamed, added or removed file changes the hash as much as an edited one.
    fn folder_hash(dir: &Path) -> String {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut h = Sha256::new();
        for n in names {
            let bytes = std::fs::read(dir.join(&n)).expect("read wit file");
            h.update(format!("{n}\n{}\n", bytes.len()));
            h.update(&bytes);
        }
        hex::encode(h.finalize())
    }

    fn wit_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
    }

    /// (version, sha256) from `wit/published.sha256`.
    fn published() -> Vec<(String, String)> {
        let text = std::fs::read_to_string(wit_dir().join("published.sha256")).expect("wit/published.sha256");
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (v, h) = l.split_once(char::is_whitespace).expect("'<version> <sha256>' per line");
                (v.to_string(), h.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn published_contract_versions_never_change() {
        let mut wrong = Vec::new();
        for (version, want) in published() {
            let got = folder_hash(&wit_dir().join(format!("nthlayer-worker@{version}")));
            if got != want {
                wrong.push(format!("nthlayer-worker@{version}: sha256 {got}, published {want}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "a published contract changed; put the change in a new version folder instead:\n{}",
            wrong.join("\n")
        );
    }

    /// Every folder is served, and every one but the newest is published: the newest may be
    /// open (scripts/new-contract-version made it, a release pins it with `--publish`).
    #[test]
    fn every_contract_folder_is_published_and_served() {
        let published: Vec<String> = published().into_iter().map(|(v, _)| v).collect();
        let served: Vec<&str> = super::super::SERVED.iter().map(|c| c.version()).collect();
        for e in std::fs::read_dir(wit_dir()).expect("wit/") {
            let name = e.expect("dir entry").file_name().to_string_lossy().into_owned();
            let Some(v) = name.strip_prefix("nthlayer-worker@") else { continue };
            assert!(served.contains(&v), "{name} is in wit/ but this host does not serve it");
        }
        let open = &served[published.len().min(served.len())..];
        assert!(
            served.starts_with(&published.iter().map(String::as_str).collect::<Vec<_>>()) && open.len() <= 1,
            "wit/published.sha256 ({published:?}) must list every served version ({served:?}) but the newest, \
             which may be open until a release publishes it"
        );
    }
}
