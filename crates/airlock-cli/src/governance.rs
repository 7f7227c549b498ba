//! `airlock policy`, `airlock grants`, `airlock identities`: the commands about who may
//! do what. Each calls the policy crate or one engine function and prints the result.

use airlock_engine::policy::{Effect, Identities, Policy};
use airlock_engine::workflow::parse_duration;
use airlock_engine::{Engine, GrantSpec};
use airlock_workspace::Setup;
use anyhow::Result;
use serde_json::{Value, json};

use crate::args::{GrantsAction, PolicyAction};
use crate::exit::Exit;
use crate::print_json;
use crate::render;
use crate::workflow_source::{Diagnosed, Invalid};

/// `airlock policy check|show`: these read files only.
pub fn policy_files(setup: &Setup, action: &PolicyAction, json: bool) -> Result<Exit> {
    let path = match action {
        PolicyAction::Check { path: Some(path) } => Some(path.clone()),
        _ => setup.policy_file(),
    };
    let Some(path) = path else {
        let message = "no policy file: every tool call is denied (default deny). Write a policy.toml in the workspace or beside the database, or pass --policy";
        if json {
            print_json(&json!({ "file": null, "error": message }))?;
        } else {
            say!("{message}");
        }
        return Ok(Exit::Invalid);
    };
    let policy = match Policy::load(&path) {
        Ok(policy) => policy,
        Err(diagnostics) => {
            if json {
                let rows: Vec<Value> = diagnostics
                    .iter()
                    .map(|d| {
                        json!({
                            "file": d.file, "line": d.line, "column": d.column,
                            "code": d.code.as_str(), "message": d.message,
                        })
                    })
                    .collect();
                print_json(&json!({ "file": path, "diagnostics": rows }))?;
            } else {
                say!("{diagnostics}");
            }
            return Ok(Exit::Invalid);
        }
    };
    if json {
        print_json(&json!({
            "file": path, "version": policy.version(), "label": policy.label(),
            "rules": policy.rules(),
        }))?;
    } else if matches!(action, PolicyAction::Check { .. }) {
        say!(
            "{}: ok, {} rule(s), version {}",
            path.display(),
            policy.rules().len(),
            policy.version()
        );
    } else {
        say!("{}", render::policy_summary(&path, &policy));
    }
    Ok(Exit::Ok)
}

/// `airlock policy explain`: the decision for a call, without making it.
pub async fn explain(engine: &Engine, me: &str, action: &PolicyAction, json: bool) -> Result<Exit> {
    let PolicyAction::Explain {
        tool,
        workflow,
        args,
        inputs,
        requester,
    } = action
    else {
        return Ok(Exit::Error);
    };
    let args = json_object("--args", args)?;
    let inputs = json_object("--inputs", inputs)?;
    let requester = requester.as_deref().unwrap_or(me);
    let decision = engine
        .explain_call(requester, workflow, tool, &args, &inputs)
        .await?;
    if json {
        print_json(&decision)?;
    } else {
        let roles = engine.governance().identities.roles_of(requester);
        say!(
            "`{tool}` in workflow `{workflow}` for {requester} (roles: {})",
            if roles.is_empty() {
                "none".to_owned()
            } else {
                roles.join(", ")
            }
        );
        say!("{}", decision.explain().trim_end());
    }
    Ok(match decision.effect {
        Effect::Deny { .. } => Exit::Refused,
        _ => Exit::Ok,
    })
}

fn json_object(flag: &str, text: &str) -> Result<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(Invalid(format!("{flag} must be a JSON object, not {other}")).into()),
        Err(e) => Err(Invalid(format!("{flag} is not valid JSON: {e}")).into()),
    }
}

/// `--edit`: the replacement arguments of a held call.
pub fn edited_args(text: &str) -> Result<Value> {
    json_object("--edit", text)
}

/// `airlock grants [add|revoke]`.
pub async fn grants(
    engine: &Engine,
    me: &str,
    action: Option<&GrantsAction>,
    json: bool,
) -> Result<Exit> {
    match action {
        None => {
            let grants = engine.grants().await?;
            let now = engine.clock().now();
            if json {
                print_json(&grants)?;
            } else if grants.is_empty() {
                say!(
                    "no grants: give one with `airlock grants add <server.tool> --for 1h --uses 10`"
                );
            } else {
                for g in &grants {
                    say!("{}", render::grant_line(g, now));
                }
            }
            Ok(Exit::Ok)
        }
        Some(GrantsAction::Add {
            tool,
            workflow,
            task,
            condition,
            uses,
            valid_for,
            from_approval,
            note,
        }) => {
            let valid_for = valid_for
                .as_deref()
                .map(|d| parse_duration(d).map_err(|e| Invalid(format!("--for `{d}`: {e}"))))
                .transpose()?;
            let task_id = match task {
                Some(t) => Some(engine.find_task(t).await?.id),
                None => None,
            };
            let grant = engine
                .create_grant(
                    GrantSpec {
                        tool: tool.clone(),
                        workflow: workflow.clone(),
                        task_id,
                        condition: condition.clone(),
                        max_uses: *uses,
                        valid_for,
                        from_approval: from_approval.clone(),
                        note: note.clone(),
                    },
                    me,
                )
                .await?;
            if json {
                print_json(&grant)?;
            } else {
                say!("{}", render::grant_line(&grant, engine.clock().now()));
            }
            Ok(Exit::Ok)
        }
        Some(GrantsAction::Revoke { grant }) => {
            engine.revoke_grant(grant, me).await?;
            if json {
                print_json(&json!({ "grant": grant, "revoked_by": me }))?;
            } else {
                say!("grant {grant} revoked: it matches no further call");
            }
            Ok(Exit::Ok)
        }
    }
}

/// `airlock identities`.
pub fn identities(setup: &Setup, json: bool) -> Result<Exit> {
    let Some(path) = setup.identities_file() else {
        if json {
            print_json(&json!({ "file": null, "identities": [] }))?;
        } else {
            say!(
                "no identities file: approver roles are not checked, so anyone may decide an \
                 approval. Write an identities.toml in the workspace or beside the database"
            );
        }
        return Ok(Exit::Ok);
    };
    let people = Identities::load(&path).map_err(Diagnosed::new)?;
    if json {
        let rows: Vec<Value> = people
            .list()
            .into_iter()
            .map(|(name, roles)| json!({ "name": name, "roles": roles }))
            .collect();
        print_json(&json!({
            "file": path, "identities": rows, "default_roles": people.default_roles(),
        }))?;
    } else {
        say!("{}", render::identities(&path, &people));
    }
    Ok(Exit::Ok)
}
