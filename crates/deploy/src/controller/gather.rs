//! Asking the registry what the workloads need, round by round: [`policy::queries`] says what
//! is still missing given the answers so far (a tag list before a resolve, an inspection only
//! for an update candidate, a created time only once its platforms passed). Every error becomes
//! an answer ("registry: …") on the workloads it concerns; none aborts the pass.

use std::collections::HashSet;
use std::sync::Arc;

use ferry_core::{Platform, Reference};
use futures::StreamExt;

use super::tag_times;
use super::{Context, RateGate, Signatures};
use crate::cluster::Workload;
use crate::error::ConfigProblem;
use crate::policy::provenance::ProvenanceQuery;
use crate::policy::{
    self, Answers, Failure, Gate, LookupError, Query, SignatureVerdict, TagFacts, WorkloadPolicy,
};

/// What one gathering asked and learned.
pub(super) struct Gathered {
    /// The answers.
    pub answers: Answers,
    /// Registry requests actually sent.
    pub requests: usize,
}

/// Rounds of questions: tags, tag created times, resolves, inspections, created times (and one
/// to spare).
const MAX_ROUNDS: usize = 6;

/// Ask `registry` everything `workloads` need, at most `ctx.registry_concurrency` requests at
/// a time (`newest-build` created times through `ctx.tag_times`, within its budget; signatures
/// under `ctx.signatures`, once per digest and policy in a pass).
pub(super) async fn gather(
    registry: &ferry_registry::Client,
    ctx: &Context,
    workloads: &[(&Workload, &WorkloadPolicy)],
    platforms: &[Platform],
    gate: &Gate<'_>,
) -> Gathered {
    let (rate_gate, times, concurrency) =
        (&ctx.rate_gate, &ctx.tag_times, ctx.registry_concurrency);
    let mut out = Gathered {
        answers: Answers::default(),
        requests: 0,
    };
    for _ in 0..MAX_ROUNDS {
        let mut missing: HashSet<Query> = HashSet::new();
        for (w, p) in workloads {
            missing.extend(policy::queries(&w.view, p, &out.answers, platforms, gate));
        }
        // Applications are the cluster's to answer (`plan`), once the registry has answered.
        missing.retain(|q| !matches!(q, Query::Application(_)));
        if missing.is_empty() {
            break;
        }
        let (repos, missing): (Vec<Query>, Vec<Query>) = missing
            .into_iter()
            .partition(|q| matches!(q, Query::TagTimes(_)));
        for q in repos {
            let Query::TagTimes(repo) = q else { continue };
            let a = &mut out.answers;
            out.requests +=
                tag_times::read(registry, rate_gate, times, concurrency, workloads, &repo, a).await;
        }
        let replies: Vec<(Reply, usize)> =
            futures::stream::iter(missing.into_iter().map(|q| ask(registry, ctx, q)))
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
        for (reply, sent) in replies {
            out.requests += sent;
            record(&mut out.answers, reply);
        }
    }
    out
}

/// One answered query.
enum Reply {
    Tags(Reference, Result<Vec<String>, LookupError>),
    Resolve(Reference, Result<TagFacts, LookupError>),
    Inspect(Reference, Result<Vec<Platform>, ferry_registry::Error>),
    Created(Reference, Option<u64>),
    /// A signature verdict (several registry requests: the lookups, then the manifests and
    /// payloads found, each counted).
    Signature(Reference, String, SignatureVerdict),
    Revision(Reference, Result<Option<String>, LookupError>),
    OnBranch((String, String, String), Result<bool, LookupError>),
    /// A query answered elsewhere.
    Nothing,
}

/// Ask one query: (the reply, the registry requests sent for it).
async fn ask(registry: &ferry_registry::Client, ctx: &Context, q: Query) -> (Reply, usize) {
    let gate = &ctx.rate_gate;
    match q {
        Query::Tags(r) => {
            let res = registry
                .tags(&r, &ferry_registry::TagsOptions::default())
                .await
                .map_err(|e| Arc::new(e) as LookupError);
            (Reply::Tags(r, res), 1)
        }
        Query::Resolve(r) => {
            let (res, sent) = resolve_tag(registry, gate, &r).await;
            (Reply::Resolve(r, res), usize::from(sent))
        }
        Query::Inspect(r) => {
            let res = registry
                .inspect(&r)
                .await
                .map(|i| i.platforms.into_iter().map(|p| p.platform).collect());
            (Reply::Inspect(r, res), 1)
        }
        Query::Created(r) => {
            let t = registry.created(&r).await.unwrap_or_else(|e| {
                tracing::warn!(image = %r, error = %e, "cannot read created time");
                None
            });
            (Reply::Created(r, t), 1)
        }
        Query::Signature(q) if ctx.signatures.known_valid(&q.image, &q.policy) => (
            Reply::Signature(q.image, q.policy, SignatureVerdict::Valid),
            0,
        ),
        Query::Signature(q) => {
            let (verdict, sent) = signature(registry, &ctx.signatures, &q.image, &q.policy).await;
            if matches!(verdict, SignatureVerdict::Valid) {
                ctx.signatures.remember_valid(&q.image, &q.policy);
            }
            (Reply::Signature(q.image, q.policy, verdict), sent)
        }
        Query::Provenance(ProvenanceQuery::Revision(r)) => {
            let res = registry.source_revision(&r).await;
            let res = res.map_err(|e| Arc::new(e) as LookupError);
            (Reply::Revision(r, res), 1)
        }
        Query::Provenance(ProvenanceQuery::OnBranch {
            repo,
            branch,
            revision,
        }) => {
            let res = super::provenance::on_branch(ctx, &repo, &branch, &revision).await;
            (Reply::OnBranch((repo, branch, revision), res), 0)
        }
        // Answered per repository by `tag_times::read`, never here.
        Query::TagTimes(_) | Query::Application(_) => (Reply::Nothing, 0),
    }
}

fn record(answers: &mut Answers, reply: Reply) {
    match reply {
        Reply::Tags(r, res) => {
            answers.tags.insert(r, res);
        }
        Reply::Resolve(r, res) => {
            answers.resolved.insert(r, res);
        }
        Reply::Inspect(r, Ok(p)) => {
            answers.platforms.insert(r, p);
        }
        Reply::Inspect(r, Err(e)) => {
            // A failed inspection makes every candidate on that digest a skip with the reason.
            let e: LookupError = Arc::new(crate::Error::InspectNew(e));
            for slot in answers.resolved.values_mut() {
                if slot.as_ref().is_ok_and(|f| Some(&f.digest) == r.digest()) {
                    *slot = Err(e.clone());
                }
            }
            answers.platforms.insert(r, Vec::new());
        }
        Reply::Created(r, t) => {
            answers.created.insert(r, t);
        }
        Reply::Signature(image, policy, verdict) => {
            answers.signatures.insert((image, policy), verdict);
        }
        Reply::Revision(r, res) => {
            answers.provenance.revisions.insert(r, res);
        }
        Reply::OnBranch(key, res) => {
            answers.provenance.on_branch.insert(key, res);
        }
        Reply::Nothing => {}
    }
}

/// Verify `image`'s signatures under `policy`: (the verdict, the registry requests
/// sent; a check that failed part-way counts one).
async fn signature(
    registry: &ferry_registry::Client,
    sigs: &Signatures,
    image: &Reference,
    policy: &str,
) -> (SignatureVerdict, usize) {
    let Some(trust) = sigs.trust(policy) else {
        // The core checks the name first; a missing policy here is a bug, reported as such.
        let missing = crate::Error::Config(ConfigProblem::UnknownSignaturePolicy {
            name: policy.to_string(),
        });
        let why = Failure::from(missing);
        return (SignatureVerdict::Invalid { why }, 0);
    };
    let report = match registry.verify_signatures(image, trust).await {
        Ok(report) => report,
        Err(e) => return (SignatureVerdict::Failed(Arc::new(e)), 1),
    };
    let requests = report.requests;
    (verdict(report), requests)
}

/// The verdict a report comes to (an invalid one keeps the report itself, not a copy).
fn verdict(report: ferry_registry::signature::SignatureReport) -> SignatureVerdict {
    if report.valid() {
        return SignatureVerdict::Valid;
    }
    let why = Failure::from(crate::Error::Unsigned(Box::new(report)));
    SignatureVerdict::Invalid { why }
}

/// One HEAD, unless the rate gate holds the registry back; (answer, whether it was asked).
pub(super) async fn resolve_tag(
    registry: &ferry_registry::Client,
    gate: &RateGate,
    r: &Reference,
) -> (Result<TagFacts, LookupError>, bool) {
    if let Err(why) = gate.check(r.registry()) {
        return (Err(Arc::new(why)), false);
    }
    match registry.resolve(r).await {
        Ok(x) => {
            gate.observe(r.registry(), x.rate_limit.as_ref());
            let facts = TagFacts {
                digest: x.digest,
                platforms: None,
            };
            (Ok(facts), true)
        }
        Err(e) => {
            observe_failure(gate, r.registry(), &e);
            (Err(Arc::new(e)), true)
        }
    }
}

/// Tell `gate` what a failed request to `registry` says about its rate limit.
pub(super) fn observe_failure(gate: &RateGate, registry: &str, e: &ferry_registry::Error) {
    if let ferry_registry::Error::RateLimited { rate_limit, .. } = e {
        // A 429 means nothing is left, whatever the headers said.
        let spent = ferry_registry::RateLimit {
            remaining: Some(0),
            ..rate_limit.clone().unwrap_or(ferry_registry::RateLimit {
                limit: None,
                remaining: None,
                window_seconds: None,
                source: None,
            })
        };
        gate.observe(registry, Some(&spent));
    }
}
