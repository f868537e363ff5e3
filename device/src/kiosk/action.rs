//! The configured action on a decision: an unlock command (a relay or GPIO is just such a
//! command) run with the decision in its environment.

use facegate_proto::Decision;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A shell command run on every granted decision.
#[derive(Debug, Clone)]
pub struct Action {
    pub command: String,
    /// The command is killed after this long (a stuck relay script must not pile up).
    pub timeout: Duration,
}

/// What the command is told.
#[derive(Debug, Clone)]
pub struct ActionContext {
    pub decision: Decision,
    pub person_id: Option<u32>,
    pub name: Option<String>,
    pub score: f32,
    pub event_seq: u64,
}

impl Action {
    /// Starts the command in the background (the camera loop does not wait for the door).
    pub fn spawn(&self, ctx: &ActionContext) -> std::thread::JoinHandle<()> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(&self.command)
            .env("FACEGATE_DECISION", format!("{:?}", ctx.decision))
            .env("FACEGATE_PERSON_ID", ctx.person_id.map(|p| p.to_string()).unwrap_or_default())
            .env("FACEGATE_NAME", ctx.name.clone().unwrap_or_default())
            .env("FACEGATE_SCORE", format!("{:.4}", ctx.score))
            .env("FACEGATE_EVENT_SEQ", ctx.event_seq.to_string())
            .stdin(Stdio::null());
        let timeout = self.timeout;
        let command = self.command.clone();
        std::thread::spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(%command, error = %e, "action command failed to start");
                    return;
                }
            };
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) if status.success() => return,
                    Ok(Some(status)) => {
                        tracing::error!(%command, %status, "action command failed");
                        return;
                    }
                    Ok(None) if started.elapsed() > timeout => {
                        tracing::error!(%command, ?timeout, "action command timed out; killed");
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => {
                        tracing::error!(%command, error = %e, "action command lost");
                        return;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_sees_the_decision_in_its_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.txt");
        let action = Action {
            command: format!("echo \"$FACEGATE_DECISION $FACEGATE_PERSON_ID $FACEGATE_NAME\" > {}", out.display()),
            timeout: Duration::from_secs(5),
        };
        let ctx = ActionContext {
            decision: Decision::Granted,
            person_id: Some(42),
            name: Some("Ada".into()),
            score: 0.7,
            event_seq: 3,
        };
        action.spawn(&ctx).join().expect("action thread");
        assert_eq!(std::fs::read_to_string(out).expect("output").trim(), "Granted 42 Ada");
    }

    #[test]
    fn a_hanging_command_is_killed() {
        let action = Action { command: "sleep 30".into(), timeout: Duration::from_millis(100) };
        let ctx = ActionContext { decision: Decision::Granted, person_id: None, name: None, score: 0.0, event_seq: 0 };
        let t = Instant::now();
        action.spawn(&ctx).join().expect("action thread");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
