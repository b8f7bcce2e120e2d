//! A component that exports the worker world but also imports an interface no nthlayer host
//! offers (`evil:host/filesystem`). Loading must fail with a clear error naming the import.

wit_bindgen::generate!({
    inline: r#"
        package evil:host;
        interface filesystem { read: func(path: string) -> string; }
        world bad {
            import filesystem;
            record task { name: string, interval-seconds: u32, summary: string }
            record module-info { name: string, version: string, tasks: list<task>, needs: list<string> }
            export describe: func() -> module-info;
        }
    "#,
});

struct Bad;

impl Guest for Bad {
    fn describe() -> ModuleInfo {
        let _ = evil::host::filesystem::read("/etc/passwd");
        ModuleInfo { name: "bad".into(), version: "0".into(), tasks: vec![], needs: vec![] }
    }
}

export!(Bad);
