//! `--base published`: ask the registry which revision each image's published tag was built
//! from — the `org.opencontainers.image.revision` annotation of the index or manifest, else the
//! label of the same name in the image config. One manifest request per image, all images at
//! once; a child manifest and a config blob only when the annotation is missing.

use std::collections::BTreeMap;

use ferry_core::Reference;
use ferry_detect::changed::{Published, QueryFailure};
use ferry_registry::{Client, Error};

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
        Err(e) => Published::Failed(QueryFailure::from(e)),
    }
}

/// The revision the image records (`Client::source_revision`: the index or manifest
/// annotation, else the first platform manifest's, else its config's label).
async fn lookup(client: &Client, reference: &Reference) -> Result<Option<String>, Error> {
    client.source_revision(reference).await
}
