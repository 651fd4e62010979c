//! Which source revision an image was built from: the `org.opencontainers.image.revision`
//! annotation of the index or manifest, else the first platform manifest's, else the label of
//! that name in its image config (docker/metadata-action and buildx write them).

use ferry_core::Reference;

use crate::client::Client;
use crate::error::Result;

/// The OCI annotation / label that records the source revision.
pub const REVISION_KEY: &str = "org.opencontainers.image.revision";

impl Client {
    /// The revision `reference` records (blank values count as none). One manifest request;
    /// a child manifest and a config blob only when the annotation is missing.
    pub async fn source_revision(&self, reference: &Reference) -> Result<Option<String>> {
        let top = self.manifest(reference).await?;
        if let Some(rev) = non_empty(top.annotation(REVISION_KEY)) {
            return Ok(Some(rev));
        }
        // Every platform is built from the same commit: the first one tells.
        let Some(image) = self.first_platform_image(reference, top).await? else {
            return Ok(None);
        };
        if let Some(rev) = non_empty(image.annotation(REVISION_KEY)) {
            return Ok(Some(rev));
        }
        let Some(config) = image.config_digest()? else {
            return Ok(None);
        };
        let summary = self.image_config(reference, &config).await?;
        Ok(non_empty(summary.label(REVISION_KEY)))
    }
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
