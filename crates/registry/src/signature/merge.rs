//! Merging two cosign `.sig`/`.att` tag manifests: when the destination of a copy already holds
//! its own signatures under the tag, the copy must not drop them. cosign keeps every signature
//! as a layer of one image manifest (its config lists each layer in `rootfs.diff_ids`, with a
//! `history` entry each); the merge keeps the destination's layers and appends the source's
//! layers it lacks (a layer is the same when its whole descriptor is: payload digest and the
//! signature annotations), extending the config the same way.

use serde_json::{Value, json};

/// Why two signature manifests cannot be merged (they are not what cosign writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeProblem {
    /// Not JSON, or no `layers`/`config` where an image manifest has them.
    NotAnImageManifest {
        /// `destination` or `source`.
        which: &'static str,
    },
    /// The config is not JSON with a `rootfs.diff_ids` list.
    NotAnImageConfig {
        /// `destination` or `source`.
        which: &'static str,
    },
}

impl std::fmt::Display for MergeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeProblem::NotAnImageManifest { which } => {
                write!(f, "the {which} signature manifest is not an image manifest")
            }
            MergeProblem::NotAnImageConfig { which } => write!(
                f,
                "the {which} signature manifest's config has no rootfs.diff_ids"
            ),
        }
    }
}

/// The merged manifest and config (without the config's new digest/size, which the caller sets
/// after pushing it), or `None` when the destination already has every source layer.
pub(super) fn merge(
    dst_manifest: &[u8],
    dst_config: &[u8],
    src_manifest: &[u8],
    src_config: &[u8],
) -> Result<Option<(Value, Value)>, MergeProblem> {
    let parse = |b: &[u8], which| -> Result<Value, MergeProblem> {
        let v: Value =
            serde_json::from_slice(b).map_err(|_| MergeProblem::NotAnImageManifest { which })?;
        if v["layers"].is_array() && v["config"].is_object() {
            Ok(v)
        } else {
            Err(MergeProblem::NotAnImageManifest { which })
        }
    };
    let config = |b: &[u8], which| -> Result<Value, MergeProblem> {
        let v: Value =
            serde_json::from_slice(b).map_err(|_| MergeProblem::NotAnImageConfig { which })?;
        if v["rootfs"]["diff_ids"].is_array() {
            Ok(v)
        } else {
            Err(MergeProblem::NotAnImageConfig { which })
        }
    };
    let mut manifest = parse(dst_manifest, "destination")?;
    let source = parse(src_manifest, "source")?;
    let mut cfg = config(dst_config, "destination")?;
    let src_cfg = config(src_config, "source")?;
    let have: Vec<Value> = manifest["layers"].as_array().cloned().unwrap_or_default();
    let src_layers = source["layers"].as_array().cloned().unwrap_or_default();
    let src_history = src_cfg["history"].as_array().cloned().unwrap_or_default();
    let mut added = false;
    for (i, layer) in src_layers.into_iter().enumerate() {
        if have.contains(&layer) {
            continue;
        }
        added = true;
        let history = src_history
            .get(i)
            .cloned()
            .unwrap_or_else(|| json!({"created": "0001-01-01T00:00:00Z"}));
        if let Some(ids) = cfg["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(layer["digest"].clone());
        }
        match cfg["history"].as_array_mut() {
            Some(h) => h.push(history),
            None => cfg["history"] = json!([history]),
        }
        if let Some(layers) = manifest["layers"].as_array_mut() {
            layers.push(layer);
        }
    }
    Ok(added.then_some((manifest, cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(payload: &str, signature: &str) -> Value {
        json!({"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
               "digest": payload, "size": 10,
               "annotations": {"dev.cosignproject.cosign/signature": signature}})
    }

    fn image(layers: &[Value]) -> (Vec<u8>, Vec<u8>) {
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c", "size": 1},
            "layers": layers});
        let ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
        let h: Vec<Value> = layers
            .iter()
            .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
            .collect();
        let c = json!({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": ids}, "history": h});
        (
            serde_json::to_vec(&m).unwrap(),
            serde_json::to_vec(&c).unwrap(),
        )
    }

    #[test]
    fn the_destinations_signatures_stay_the_sources_are_added_once() {
        // Same payload, two keys: two different layers.
        let (dm, dc) = image(&[sig("sha256:p", "by-b")]);
        let (sm, sc) = image(&[sig("sha256:p", "by-a"), sig("sha256:p", "by-b")]);
        let (m, c) = merge(&dm, &dc, &sm, &sc).unwrap().unwrap();
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(
            layers[0],
            sig("sha256:p", "by-b"),
            "the destination's first"
        );
        assert_eq!(layers[1], sig("sha256:p", "by-a"));
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(c["history"].as_array().unwrap().len(), 2);
        // Merging again adds nothing.
        let (m2, c2) = (
            serde_json::to_vec(&m).unwrap(),
            serde_json::to_vec(&c).unwrap(),
        );
        assert_eq!(merge(&m2, &c2, &sm, &sc).unwrap(), None);
    }

    #[test]
    fn what_cosign_does_not_write_is_refused_naming_the_side() {
        let (m, c) = image(&[sig("sha256:p", "x")]);
        let e = merge(b"[]", &c, &m, &c).unwrap_err();
        assert_eq!(
            e,
            MergeProblem::NotAnImageManifest {
                which: "destination"
            }
        );
        let e = merge(&m, &c, &m, b"{}").unwrap_err();
        assert_eq!(e, MergeProblem::NotAnImageConfig { which: "source" });
    }

    proptest::proptest! {
        #[test]
        fn merging_any_bytes_never_panics(a in proptest::collection::vec(0u8..=255, 0..200),
                                          b in proptest::collection::vec(0u8..=255, 0..200)) {
            let (m, c) = image(&[sig("sha256:p", "x")]);
            let _ = merge(&a, &b, &m, &c);
            let _ = merge(&m, &c, &a, &b);
        }
    }
}
