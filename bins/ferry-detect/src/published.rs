//! `--base published`: ask the registry which revision each image's published tag was built
//! from — the `org.opencontainers.image.revision` annotation of the index or manifest, else the
//! label of the same name in the image config. One manifest request per image, all images at
//! once; a child manifest and a config blob only when the annotation is missing.

use std::collections::BTreeMap;

use ferry_core::{Digest, Reference};
use ferry_detect::changed::Published;
use ferry_registry::manifest::ManifestContent;
use ferry_registry::{Client, Error};
use serde_json::Value;

/// The OCI annotation / label that records the source revision.
pub const REVISION_KEY: &str = "org.opencontainers.image.revision";

/// Image configs are small; registries cap manifests at 4 MiB and a config is no bigger.
const CONFIG_LIMIT: usize = 4 << 20;

/// The published revision of every `(image name, repository:tag)`, concurrently.
pub async fn query(
    client: &Client,
    images: Vec<(String, Reference)>,
) -> BTreeMap<String, Published> {
    let mut set = tokio::task::JoinSet::new();
    for (name, reference) in images {
        let client = client.clone();
        set.spawn(async move {
            let answer = revision_of(&client, &reference).await;
            tracing::debug!(image = %name, %reference, ?answer, "published revision");
            (name, answer)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((name, answer)) => {
                out.insert(name, answer);
            }
            // A panicked query leaves its image out; the library then rebuilds it and says so.
            Err(e) => tracing::warn!("a registry query did not finish: {e}"),
        }
    }
    out
}

/// What the registry says about one tag.
pub async fn revision_of(client: &Client, reference: &Reference) -> Published {
    match lookup(client, reference).await {
        Ok(Some(rev)) => Published::Revision(rev),
        Ok(None) => Published::NoRevision,
        Err(Error::NotFound { what, .. }) if what == "manifest" || what == "repository" => {
            Published::NotPublished
        }
        Err(e) => Published::Failed(e.to_string()),
    }
}

async fn lookup(client: &Client, reference: &Reference) -> Result<Option<String>, Error> {
    let top = client.manifest(reference).await?;
    if let Some(rev) = annotation(&top.body) {
        return Ok(Some(rev));
    }
    let name = reference.name();
    let image = match &top.content {
        ManifestContent::Image(_) => top,
        ManifestContent::Index(_) => {
            // Every platform is built from the same commit: the first one tells.
            let Some(first) = first_platform(&top.body) else {
                return Ok(None);
            };
            let child = client
                .manifest(&Reference::parse(&format!("{name}@{first}"))?)
                .await?;
            if let Some(rev) = annotation(&child.body) {
                return Ok(Some(rev));
            }
            child
        }
    };
    let Some(config) = config_digest(&image.body) else {
        return Ok(None);
    };
    let body = client.blob(reference, &config, CONFIG_LIMIT).await?;
    Ok(label(&body))
}

/// The first platform manifest of an index (attestations — buildx's `unknown/unknown`
/// entries — are not platforms).
fn first_platform(body: &[u8]) -> Option<Digest> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("manifests")?
        .as_array()?
        .iter()
        .filter(|m| {
            m.pointer("/annotations/vnd.docker.reference.type")
                .is_none()
                && m.pointer("/platform/os").and_then(Value::as_str) != Some("unknown")
        })
        .find_map(|m| Digest::parse(m.get("digest")?.as_str()?).ok())
}

/// The config digest of an image manifest.
fn config_digest(body: &[u8]) -> Option<Digest> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Digest::parse(v.pointer("/config/digest")?.as_str()?).ok()
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The revision annotation of a manifest or index body.
fn annotation(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    non_empty(v.pointer("/annotations").and_then(|a| a.get(REVISION_KEY)))
}

/// The revision label of an image config body.
fn label(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    non_empty(
        v.pointer("/config/Labels")
            .and_then(|a| a.get(REVISION_KEY)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_and_label_are_read_where_buildx_puts_them() {
        let m = format!(r#"{{"schemaVersion":2,"annotations":{{"{REVISION_KEY}":"abc"}}}}"#);
        assert_eq!(annotation(m.as_bytes()).as_deref(), Some("abc"));
        assert_eq!(annotation(br#"{"schemaVersion":2}"#), None);
        let c = format!(r#"{{"config":{{"Labels":{{"{REVISION_KEY}":" def "}}}}}}"#);
        assert_eq!(label(c.as_bytes()).as_deref(), Some("def"));
        assert_eq!(label(br#"{"config":{"Labels":null}}"#), None);
        assert_eq!(label(br#"{"config":{"Labels":{"x":""}}}"#), None);
        assert_eq!(label(b"not json"), None);
    }

    #[test]
    fn attestations_are_not_the_first_platform() {
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let idx = format!(
            r#"{{"manifests":[{{"digest":"{d1}","platform":{{"os":"unknown","architecture":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}},{{"digest":"{d2}","platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        assert_eq!(
            first_platform(idx.as_bytes()).map(|d| d.to_string()),
            Some(d2)
        );
        assert_eq!(first_platform(br#"{"manifests":[]}"#), None);
    }
}
