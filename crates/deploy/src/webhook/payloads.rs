//! The documented payload shapes, reduced to the fields ferry reads.

use super::{BadPayload, Deserialize, ImageHint, Reference, Source};

type Result<T, E = BadPayload> = std::result::Result<T, E>;

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(BadPayload::Json)
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct Envelope {
    events: Vec<DistEvent>,
}
#[derive(Deserialize)]
struct DistEvent {
    action: String,
    #[serde(default)]
    target: DistTarget,
    #[serde(default)]
    request: DistRequest,
}
#[derive(Deserialize, Default)]
struct DistTarget {
    repository: Option<String>,
    tag: Option<String>,
}
#[derive(Deserialize, Default)]
struct DistRequest {
    host: Option<String>,
}

/// Pushes with a tag; blob pushes and pushes by digest carry no tag and are ignored.
pub(super) fn distribution(body: &[u8]) -> Result<Vec<ImageHint>> {
    let env: Envelope = json(body)?;
    let mut hints = Vec::new();
    for (i, e) in env.events.iter().enumerate() {
        let Some(tag) = non_empty(e.target.tag.as_deref()) else {
            continue;
        };
        if e.action != "push" {
            continue;
        }
        let at = || BadPayload::at("events", i);
        let repo = non_empty(e.target.repository.as_deref())
            .ok_or_else(|| at()(BadPayload::PushWithout("target.repository")))?;
        let host = non_empty(e.request.host.as_deref())
            .ok_or_else(|| at()(BadPayload::PushWithout("request.host")))?;
        let hint = ImageHint::new(Source::Distribution, host, repo, Some(tag)).map_err(at())?;
        hints.push(hint);
    }
    Ok(hints)
}

#[derive(Deserialize)]
struct HubPayload {
    push_data: HubPushData,
    repository: HubRepository,
}
#[derive(Deserialize)]
struct HubPushData {
    tag: Option<String>,
}
#[derive(Deserialize)]
struct HubRepository {
    repo_name: String,
}

/// Docker Hub sends only pushes: `push_data.tag` of `repository.repo_name`.
pub(super) fn dockerhub(body: &[u8]) -> Result<Vec<ImageHint>> {
    let p: HubPayload = json(body)?;
    let Some(tag) = non_empty(p.push_data.tag.as_deref()) else {
        return Ok(Vec::new());
    };
    let hint = ImageHint::new(
        Source::DockerHub,
        ferry_core::reference::DEFAULT_REGISTRY,
        p.repository.repo_name.trim(),
        Some(tag),
    )?;
    Ok(vec![hint])
}

#[derive(Deserialize)]
struct GitHubPayload {
    action: Option<String>,
    package: Option<GitHubPackage>,
    registry_package: Option<GitHubPackage>,
}
#[derive(Deserialize)]
struct GitHubPackage {
    name: String,
    package_type: Option<String>,
    owner: Option<GitHubOwner>,
    package_version: Option<GitHubVersion>,
}
#[derive(Deserialize)]
struct GitHubOwner {
    login: String,
}
#[derive(Deserialize)]
struct GitHubVersion {
    package_url: Option<String>,
    container_metadata: Option<GitHubContainer>,
}
#[derive(Deserialize)]
struct GitHubContainer {
    tag: Option<GitHubTag>,
}
#[derive(Deserialize)]
struct GitHubTag {
    name: Option<String>,
}

/// `package` / `registry_package` with action `published` or `updated` of a container
/// package version that carries a tag; `ping` and other events are ignored.
pub(super) fn github(body: &[u8], event: Option<&str>) -> Result<Vec<ImageHint>> {
    if matches!(event, Some(e) if e != "package" && e != "registry_package") {
        // Still require JSON: a body that is not JSON is no GitHub event at all.
        json::<serde_json::Value>(body)?;
        return Ok(Vec::new());
    }
    let p: GitHubPayload = json(body)?;
    let Some(pkg) = p.registry_package.or(p.package) else {
        return match event {
            Some(_) => Err(BadPayload::NoPackage),
            None => Ok(Vec::new()),
        };
    };
    let action = p.action.unwrap_or_default();
    let container = pkg
        .package_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("container"));
    if !container || !matches!(action.as_str(), "published" | "updated") {
        return Ok(Vec::new());
    }
    let version = pkg.package_version.as_ref();
    let tag = version
        .and_then(|v| v.container_metadata.as_ref())
        .and_then(|c| c.tag.as_ref())
        .and_then(|t| non_empty(t.name.as_deref()));
    let Some(tag) = tag else {
        return Ok(Vec::new());
    };
    let from_url = version
        .and_then(|v| non_empty(v.package_url.as_deref()))
        .and_then(|u| Reference::parse(u).ok());
    let hint = match from_url {
        Some(r) => ImageHint::new(Source::GitHub, r.registry(), r.repository(), Some(tag))?,
        None => {
            let owner = pkg.owner.as_ref().ok_or(BadPayload::NoOwner)?;
            let repo = format!("{}/{}", owner.login, pkg.name).to_ascii_lowercase();
            ImageHint::new(Source::GitHub, "ghcr.io", &repo, Some(tag))?
        }
    };
    Ok(vec![hint])
}

#[derive(Deserialize)]
struct HarborPayload {
    #[serde(rename = "type")]
    kind: String,
    event_data: Option<HarborData>,
}
#[derive(Deserialize)]
struct HarborData {
    #[serde(default)]
    resources: Vec<HarborResource>,
    repository: Option<HarborRepository>,
}
#[derive(Deserialize)]
struct HarborResource {
    tag: Option<String>,
    resource_url: Option<String>,
}
#[derive(Deserialize)]
struct HarborRepository {
    repo_full_name: String,
}

/// `PUSH_ARTIFACT`: one hint per tagged resource; the registry host is the first part of
/// its `resource_url`. Other event types are ignored.
pub(super) fn harbor(body: &[u8]) -> Result<Vec<ImageHint>> {
    let p: HarborPayload = json(body)?;
    if p.kind != "PUSH_ARTIFACT" {
        return Ok(Vec::new());
    }
    let data = p
        .event_data
        .ok_or(BadPayload::ArtifactWithout("event_data"))?;
    let repo = data
        .repository
        .ok_or(BadPayload::ArtifactWithout("event_data.repository"))?
        .repo_full_name;
    let mut hints = Vec::new();
    for (i, r) in data.resources.iter().enumerate() {
        let Some(tag) = non_empty(r.tag.as_deref()) else {
            continue;
        };
        let url = non_empty(r.resource_url.as_deref())
            .ok_or_else(|| BadPayload::at("resources", i)(BadPayload::NoResourceUrl))?;
        let host = url.split('/').next().unwrap_or_default();
        hints.push(
            ImageHint::new(Source::Harbor, host, repo.trim(), Some(tag))
                .map_err(BadPayload::at("resources", i))?,
        );
    }
    Ok(hints)
}

#[derive(Deserialize)]
struct GenericPayload {
    image: String,
}

/// `{"image": "registry/repo:tag"}`; without a tag the hint names the whole repository.
pub(super) fn generic(body: &[u8]) -> Result<Vec<ImageHint>> {
    let p: GenericPayload = json(body)?;
    let r = Reference::parse(p.image.trim())?;
    Ok(vec![ImageHint::new(
        Source::Generic,
        r.registry(),
        r.repository(),
        r.tag(),
    )?])
}
