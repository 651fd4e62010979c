//! Everything ferry-registry prints or writes: stdout (text or JSON), stderr, the Airflow XCom
//! file and `$GITHUB_OUTPUT`.

use std::path::PathBuf;

use ferry_core::{Platform, Reference};
use ferry_registry::{Inspection, PlatformCheck, WaitOutcome};
use serde_json::{Value, json};

use crate::GlobalOpts;
use ferry_cli::Failure;

/// Print an error on stderr (as a GitHub annotation under GitHub Actions).
pub fn error(message: &str) {
    ferry_cli::report_error("ferry-registry", message);
}

/// Collects what a command produces and writes it once at the end.
pub struct Output {
    json_mode: bool,
    xcom: Option<PathBuf>,
    github_output: bool,
    text: String,
    json: Option<Value>,
    github: String,
}

impl Output {
    pub fn new(g: &GlobalOpts) -> Self {
        Output {
            json_mode: g.json,
            xcom: g.xcom.then(|| g.xcom_path.clone()),
            github_output: g.github_output,
            text: String::new(),
            json: None,
            github: String::new(),
        }
    }

    pub fn text_line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// A per-item problem: stderr in text mode (JSON carries it in the document).
    pub fn text_error(&mut self, message: &str) {
        if !self.json_mode {
            error(message);
        }
    }

    pub fn set_json(&mut self, v: Value) {
        self.json = Some(v);
    }

    pub fn github(&mut self, key: &str, value: &str) {
        self.github
            .push_str(&ferry_core::ci::github_output(key, value));
    }

    pub fn inspect(&mut self, i: &Inspection) {
        let platforms: Vec<Value> = i
            .platforms
            .iter()
            .map(|p| {
                json!({"platform": p.platform.to_string(), "digest": p.digest.to_string(),
                       "media_type": p.media_type, "size": p.size})
            })
            .collect();
        let attestations: Vec<Value> = i
            .attestations
            .iter()
            .map(|a| {
                json!({"digest": a.digest.to_string(),
                       "refers_to": a.refers_to.as_ref().map(ToString::to_string),
                       "media_type": a.media_type, "size": a.size})
            })
            .collect();
        self.text_line(&format!("{}", i.reference));
        self.text_line(&format!("digest      {}", i.digest));
        self.text_line(&format!("media type  {}", i.media_type));
        self.text_line(&format!("size        {}", i.size));
        self.text_line("");
        let w = i
            .platforms
            .iter()
            .map(|p| p.platform.to_string().len())
            .max()
            .unwrap_or(8)
            .max(8);
        self.text_line(&format!(
            "{:<w$}  {:<71}  {:>6}  MEDIA TYPE",
            "PLATFORM", "DIGEST", "SIZE"
        ));
        for p in &i.platforms {
            self.text_line(&format!(
                "{:<w$}  {:<71}  {:>6}  {}",
                p.platform.to_string(),
                p.digest.to_string(),
                p.size,
                p.media_type
            ));
        }
        for a in &i.attestations {
            let target = a
                .refers_to
                .as_ref()
                .map_or("-".to_string(), ToString::to_string);
            self.text_line(&format!(
                "{:<w$}  {:<71}  {:>6}  for {target}",
                "attestation",
                a.digest.to_string(),
                a.size
            ));
        }
        let names: Vec<String> = i.platforms.iter().map(|p| p.platform.to_string()).collect();
        self.github("digest", &i.digest.to_string());
        self.github("platforms", &names.join(","));
        self.set_json(json!({
            "canonical": i.reference.to_string(),
            "digest": i.digest.to_string(),
            "media_type": i.media_type,
            "size": i.size,
            "platforms": platforms,
            "attestations": attestations,
            "rate_limit": i.rate_limit,
        }));
    }

    pub fn verify(&mut self, r: &Reference, c: &PlatformCheck) {
        let present: Vec<String> = c.present.iter().map(ToString::to_string).collect();
        let missing: Vec<String> = c.missing.iter().map(ToString::to_string).collect();
        if c.complete() {
            self.text_line(&format!(
                "{r}: all platforms present ({})",
                present.join(", ")
            ));
        } else {
            self.text_line(&format!("{r}: missing {}", missing.join(", ")));
        }
        self.github("complete", if c.complete() { "true" } else { "false" });
        self.github("missing", &missing.join(","));
        self.github("digest", &c.digest.to_string());
        self.set_json(json!({
            "canonical": r.to_string(),
            "digest": c.digest.to_string(),
            "complete": c.complete(),
            "present": present,
            "missing": missing,
        }));
    }

    pub fn tags(&mut self, _r: &Reference, tags: &[String]) {
        for t in tags {
            self.text_line(t);
        }
        self.github("tags", &json!(tags).to_string());
        self.set_json(json!(tags));
    }

    pub fn wait(&mut self, r: &Reference, platforms: &[Platform], o: &WaitOutcome) {
        let plats: Vec<String> = platforms.iter().map(ToString::to_string).collect();
        let v = match o {
            WaitOutcome::Ready { digest, waited } => {
                self.text_line(&digest.to_string());
                self.github("digest", &digest.to_string());
                self.github("ready", "true");
                json!({"canonical": r.to_string(), "ready": true, "digest": digest.to_string(),
                       "platforms": plats, "waited_seconds": waited.as_secs_f64(), "reason": Value::Null})
            }
            WaitOutcome::TimedOut { waited, last } => {
                let msg = format!("timed out after {:.0?} waiting for {r}: {last}", waited);
                if !self.json_mode {
                    error(&msg);
                }
                self.github("ready", "false");
                json!({"canonical": r.to_string(), "ready": false, "digest": Value::Null,
                       "platforms": plats, "waited_seconds": waited.as_secs_f64(), "reason": msg})
            }
        };
        self.set_json(v);
    }

    /// Write stdout, the XCom file and `$GITHUB_OUTPUT`. A closed stdout (broken pipe) is fine.
    pub fn finish(self) -> Result<(), Failure> {
        let body = if self.json_mode {
            match &self.json {
                Some(v) => format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
                None => String::new(),
            }
        } else {
            self.text
        };
        ferry_cli::write_stdout(&body)?;
        if let (Some(path), Some(v)) = (&self.xcom, &self.json) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Failure::operational(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            std::fs::write(path, format!("{v}\n")).map_err(|e| {
                Failure::operational(format!("cannot write XCom file {}: {e}", path.display()))
            })?;
        }
        if self.github_output && !self.github.is_empty() {
            ferry_cli::append_github_output(&self.github)?;
        }
        Ok(())
    }
}
