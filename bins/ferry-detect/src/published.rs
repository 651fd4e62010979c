//! `--base published`: ask the registry which revision each image's published tag was built
//! from — the `org.opencontainers.image.revision` annotation of the index or manifest, else the
//! label of the same name in the image config. One manifest request per image, all images at
//! once; a child manifest and a config blob only when the annotation is missing.

use std::collections::BTreeMap;

use ferry_core::Reference;
use ferry_detect::changed::Published;
use ferry_registry::{Client, Error};

/// The OCI annotation / label that records the source revision.
pub const REVISION_KEY: &str = "org.opencontainers.image.revision";

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

/// The revision from the index or manifest annotation, else the first platform manifest's
/// annotation, else its config's label — all read through `ferry_registry`'s own manifest model
/// (digests verified, bodies capped, attestations filtered as `inspect` filters them).
async fn lookup(client: &Client, reference: &Reference) -> Result<Option<String>, Error> {
    let top = client.manifest(reference).await?;
    if let Some(rev) = non_empty(top.annotation(REVISION_KEY)) {
        return Ok(Some(rev));
    }
    // Every platform is built from the same commit: the first one tells.
    let Some(image) = client.first_platform_image(reference, top).await? else {
        return Ok(None);
    };
    if let Some(rev) = non_empty(image.annotation(REVISION_KEY)) {
        return Ok(Some(rev));
    }
    let Some(config) = image.config_digest()? else {
        return Ok(None);
    };
    let summary = client.image_config(reference, &config).await?;
    Ok(non_empty(summary.label(REVISION_KEY)))
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
