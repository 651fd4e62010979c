//! The examples of every `--help` (tests/tests/help.rs checks that each one parses; they all
//! need a cluster).

/// `ferry-deploy --help`.
pub const ROOT: &str = "\
Examples:
  # What would move, in every namespace the kubeconfig can see; changes nothing
  ferry-deploy plan
  # Apply it once in namespace shop and watch the rollouts
  ferry-deploy once -n shop --wait

Exit codes: 0 success; 1 a rollout failed and was rolled back; 2 usage error; 3 Kubernetes or registry error, a configuration problem (kubeconfig, docker config, CA file), or a patch, rollback or git write failed (the other workloads were still handled).";

/// `ferry-deploy plan --help`.
pub const PLAN: &str = "\
Examples:
  # What would move, in every namespace the kubeconfig can see
  ferry-deploy plan
  # Namespace shop only, as JSON, with another kubeconfig
  ferry-deploy plan -n shop --json --kubeconfig ./kind.kubeconfig
  # Which Argo CD-managed workloads would get a git commit instead of a patch
  ferry-deploy plan --git-write-back --argocd-namespace argocd";

/// `ferry-deploy once --help`.
pub const ONCE: &str = "\
Examples:
  # Patch every workload that should move, without waiting
  ferry-deploy once
  # Watch each rollout for up to 5 minutes; roll a failed one back (exit 1)
  ferry-deploy once -n shop --wait --rollout-timeout 5m
  # Commit to git for Argo CD-managed workloads, on a branch a person merges
  ferry-deploy once --git-write-back --git-token-file ./token --git-write-branch ferry/updates";

/// `ferry-deploy run --help`.
pub const RUN: &str = "\
Examples:
  # A pass every 2 minutes, /metrics on :9090, one replica without a Lease
  ferry-deploy run --interval 2m --no-leader-election
  # With git write-back and registry webhooks (what deploy/ runs in the cluster)
  ferry-deploy run --git-write-back --git-token-file /etc/ferry/git/token --webhook-addr 0.0.0.0:8080 --webhook-secret-file /etc/ferry/webhook/secret";
