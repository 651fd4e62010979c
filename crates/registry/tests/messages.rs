//! The words of configuration and credential errors, which the binaries print: typed problems
//! must read exactly as the strings they replaced.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_registry::{Client, ClientConfig, CredentialStore, DockerConfig};

fn err<T: std::fmt::Debug>(r: ferry_registry::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn configuration_problems_read_as_before() {
    let cases = [
        (
            ClientConfig::parse_mirror("docker.io"),
            r#"invalid registry configuration: mirror "docker.io": expected REGISTRY=URL"#,
        ),
        (
            ClientConfig::parse_mirror("docker.io=::"),
            r#"invalid registry configuration: mirror "docker.io=::": invalid URL: relative URL without a base"#,
        ),
        (
            ClientConfig::parse_mirror("docker.io=ftp://m"),
            r#"invalid registry configuration: mirror "docker.io=ftp://m": URL must be http(s)://host[:port][/path]"#,
        ),
        (
            ClientConfig::parse_mirror("=http://m"),
            r#"invalid registry configuration: mirror "=http://m": empty registry name"#,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(err(got), want);
    }
    let bad_mirror = Client::new(ClientConfig {
        mirrors: vec![("docker.io".into(), "::".into())],
        ..Default::default()
    });
    assert_eq!(
        err(bad_mirror),
        "invalid registry configuration: mirror docker.io=::: relative URL without a base"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let no_certs = Client::new(ClientConfig {
        ca_file: Some(empty.clone()),
        ..Default::default()
    });
    assert_eq!(
        err(no_certs),
        format!(
            "invalid registry configuration: CA file {} holds no PEM certificate",
            empty.display()
        )
    );
    let missing = dir.path().join("missing.pem");
    let unreadable = err(Client::new(ClientConfig {
        ca_file: Some(missing.clone()),
        ..Default::default()
    }));
    assert!(
        unreadable.starts_with(&format!(
            "invalid registry configuration: cannot read CA file {}: ",
            missing.display()
        )),
        "{unreadable}"
    );
}

#[test]
fn credential_problems_read_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, "{broken").unwrap();
    assert_eq!(
        err(DockerConfig::load_dir(dir.path())),
        format!(
            "credentials for *: {}: key must be a string at line 1 column 2",
            file.display()
        )
    );
    let entry = |auth: &str| {
        let json = format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}"}}}}}}"#);
        err(DockerConfig::from_json(json.as_bytes())
            .unwrap()
            .get("r.io"))
    };
    assert_eq!(
        entry("!!"),
        r#"credentials for r.io: config.json: "auth" is not valid base64: Invalid symbol 33, offset 0."#
    );
    // "bm9jb2xvbg==" is "nocolon"; "/w==" is the byte 0xff.
    assert_eq!(
        entry("bm9jb2xvbg=="),
        r#"credentials for r.io: config.json: "auth" does not decode to user:password"#
    );
    assert_eq!(
        entry("/w=="),
        r#"credentials for r.io: config.json: "auth" is not UTF-8"#
    );
    std::fs::write(&file, r#"{"auths":{"r.io":{"auth":"!!"}}}"#).unwrap();
    let cfg = DockerConfig::load_dir(dir.path()).unwrap();
    assert_eq!(
        err(cfg.get("r.io")),
        format!(
            r#"credentials for r.io: {}: "auth" is not valid base64: Invalid symbol 33, offset 0."#,
            file.display()
        )
    );
}
