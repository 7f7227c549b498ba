//! Assembling an engine from where things are: the database, the workspace folder (its
//! workflows, its `servers.json`, its scripted-model scripts in `models/`) and the user's
//! data folder. The CLI and the desktop app both open their engine here, so a workspace
//! means the same thing in both.

pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_claude::{ApiKey, Claude, ClaudeConfig, OpenAiCompatible, OpenAiConfig};
use airlock_engine::policy::{Identities, Policy, PolicyFile};
use airlock_engine::scripted_model::ScriptError;
use airlock_engine::store::StoreOptions;
use airlock_engine::workflow::{Diagnostics, Workflow, load_dir_files};
use airlock_engine::{
    BuiltinTools, Clock, Engine, EngineConfig, EngineError, Governance, Model, ModelError,
    PolicySource, ScriptedModel, SystemClock, ToolHosts,
};
use airlock_mcp::{ConfigError, McpTools, load_servers};

/// `<user data dir>/airlock/airlock.sqlite`.
pub fn default_db() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("airlock")
        .join("airlock.sqlite")
}

/// Where things are. Every field left empty takes its documented default.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// The database [default: [`default_db`]].
    pub db: Option<PathBuf>,
    /// The built-in tools' effects file [default: beside the database].
    pub effects_db: Option<PathBuf>,
    /// A workspace folder: workflows (`*.toml`), `servers.json`, `models/`.
    pub workspace: Option<PathBuf>,
    /// The MCP servers file [default: the workspace's `servers.json`, else the one beside
    /// the database, when they exist].
    pub servers: Option<PathBuf>,
    /// The policy file [default: the workspace's `policy.toml`, else the one beside the
    /// database]. With none, every tool call is denied.
    pub policy: Option<PathBuf>,
    /// The identities file [default: the workspace's `identities.toml`, else the one
    /// beside the database]. With none, approver roles cannot be checked, so anyone may
    /// decide an approval (four eyes still holds).
    pub identities: Option<PathBuf>,
    /// Start the MCP servers (commands that only read the store skip it).
    pub start_servers: bool,
    /// The engine will only read the store (lists, history, metrics, the audit log): a
    /// policy or identities file that cannot be used does not stop it. It decides
    /// nothing, so it opens under default deny with nobody's roles, and
    /// [`Opened::ungoverned`] says why.
    pub only_reads: bool,
    /// The model agent states talk to.
    pub model: ModelChoice,
}

/// Which model agent states talk to.
#[derive(Clone, Debug, Default)]
pub enum ModelChoice {
    /// The workspace's scripted offline model (`models/`), when it has scripts.
    #[default]
    Scripted,
    /// Claude over the Messages API.
    Claude(ClaudeConfig, ApiKey),
    /// A local model behind an OpenAI-compatible endpoint (Ollama, llama.cpp, LM Studio).
    OpenAiCompatible(OpenAiConfig, Option<ApiKey>),
    /// No model: agent states fail, saying so.
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    BuiltinTools(#[from] airlock_engine::builtin_tools::BuiltinToolsError),
    #[error(transparent)]
    Servers(#[from] ConfigError),
    #[error(transparent)]
    Models(#[from] ScriptError),
    #[error("setting up the model: {0}")]
    Model(#[from] ModelError),
    #[error("the policy cannot be used:\n{0}")]
    Policy(Diagnostics),
    #[error("the identities cannot be used:\n{0}")]
    Identities(Diagnostics),
    #[error("opening the database {db}: {source}")]
    Engine {
        db: PathBuf,
        #[source]
        source: EngineError,
    },
}

/// An engine and what it was assembled from.
pub struct Opened {
    pub engine: Engine,
    /// The MCP servers, when any were started (for their status).
    pub mcp: Option<Arc<McpTools>>,
    /// The model's name, when agent states have one.
    pub model: Option<String>,
    /// Why the workspace's policy or identities could not be used, when [`Setup::only_reads`]
    /// let the engine open without them.
    pub ungoverned: Option<String>,
}

impl Setup {
    pub fn db(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(default_db)
    }

    /// The folder of the database: data that belongs with it lives here.
    pub fn data_dir(&self) -> PathBuf {
        self.db()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The servers file in force: the one named, else the workspace's, else the user's.
    pub fn servers_file(&self) -> Option<PathBuf> {
        if let Some(path) = &self.servers {
            return Some(path.clone());
        }
        let candidates = [
            self.workspace.as_ref().map(|w| w.join("servers.json")),
            Some(self.data_dir().join("servers.json")),
        ];
        candidates.into_iter().flatten().find(|p| p.is_file())
    }

    /// A file named by a flag, else the workspace's, else the one beside the database.
    fn config_file(&self, named: Option<&PathBuf>, file_name: &str) -> Option<PathBuf> {
        if let Some(path) = named {
            return Some(path.clone());
        }
        let candidates = [
            self.workspace.as_ref().map(|w| w.join(file_name)),
            Some(self.data_dir().join(file_name)),
        ];
        candidates.into_iter().flatten().find(|p| p.is_file())
    }

    /// The policy file in force, if there is one.
    pub fn policy_file(&self) -> Option<PathBuf> {
        self.config_file(self.policy.as_ref(), "policy.toml")
    }

    /// The identities file in force, if there is one.
    pub fn identities_file(&self) -> Option<PathBuf> {
        self.config_file(self.identities.as_ref(), "identities.toml")
    }

    /// The policy (followed as its file changes) and the identities. Without a policy
    /// file every call is denied, saying where one was looked for.
    pub fn governance(&self) -> Result<Governance, SetupError> {
        let policy: Arc<dyn PolicySource> = match self.policy_file() {
            Some(path) => Arc::new(PolicyFile::open(&path).map_err(SetupError::Policy)?),
            None => {
                let looked = [
                    self.workspace.as_ref().map(|w| w.join("policy.toml")),
                    Some(self.data_dir().join("policy.toml")),
                ]
                .into_iter()
                .flatten()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ");
                Arc::new(Arc::new(Policy::deny_all(&format!(
                    "no policy file, so every tool call is denied (default deny); write one at {looked}"
                ))))
            }
        };
        let (identities, check_approvers) = match self.identities_file() {
            Some(path) => (
                Identities::load(&path).map_err(SetupError::Identities)?,
                true,
            ),
            None => (Identities::empty(), false),
        };
        Ok(Governance {
            policy,
            identities: Arc::new(identities),
            check_approvers,
        })
    }

    /// The workspace's workflows, and the problems of those that do not validate.
    pub fn workflows(&self) -> (Vec<Workflow>, Diagnostics) {
        let (files, problems) = self.workflow_files();
        (files.into_iter().map(|(_, w)| w).collect(), problems)
    }

    /// [`Setup::workflows`] with the file each came from: its origin when it is
    /// registered or started.
    pub fn workflow_files(&self) -> (Vec<(PathBuf, Workflow)>, Diagnostics) {
        match &self.workspace {
            Some(dir) => load_dir_files(dir),
            None => (Vec::new(), Diagnostics(Vec::new())),
        }
    }

    /// The model for agent states (see [`ModelChoice`]).
    pub fn model(&self) -> Result<Option<Arc<dyn Model>>, SetupError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(match &self.model {
            ModelChoice::Scripted => {
                let Some(dir) = self.workspace.as_ref().map(|w| w.join("models")) else {
                    return Ok(None);
                };
                let scripted = ScriptedModel::load(&dir)?;
                scripted
                    .has_scripts()
                    .then(|| Arc::new(scripted) as Arc<dyn Model>)
            }
            ModelChoice::Claude(config, key) => {
                Some(Arc::new(Claude::new(config.clone(), key.clone(), clock)?))
            }
            ModelChoice::OpenAiCompatible(config, key) => Some(Arc::new(OpenAiCompatible::new(
                config.clone(),
                key.clone(),
                clock,
            )?)),
            ModelChoice::None => None,
        })
    }

    /// Opens the store and assembles the engine: built-in tools, then the MCP servers of
    /// the servers file (when `start_servers`), then the model.
    pub async fn open(&self) -> Result<Opened, SetupError> {
        let db = self.db();
        let data_dir = self.data_dir();
        let effects = self
            .effects_db
            .clone()
            .unwrap_or_else(|| data_dir.join("builtin-effects.sqlite"));
        let mut tools = ToolHosts::new().with(Arc::new(BuiltinTools::open(&effects).await?));
        let mut mcp = None;
        if let Some(file) = self.servers_file().filter(|_| self.start_servers) {
            let config = load_servers(&file)?;
            // `${env:AIRLOCK_DATA_DIR}` in a servers file means the folder of the
            // database, so bundled servers keep their data beside it.
            let data = data_dir.display().to_string();
            let lookup = Arc::new(move |name: &str| match name {
                "AIRLOCK_DATA_DIR" => Some(std::env::var(name).unwrap_or_else(|_| data.clone())),
                _ => secrets::lookup_reference(name),
            });
            let host = Arc::new(McpTools::connect_with_env(config, lookup).await);
            tools = tools.with(host.clone());
            mcp = Some(host);
        }
        let model = self.model()?;
        let model_name = model.as_ref().map(|m| m.name());
        let (governance, ungoverned) = match self.governance() {
            Ok(governance) => (governance, None),
            Err(e @ (SetupError::Policy(_) | SetupError::Identities(_))) if self.only_reads => {
                let why = e.to_string();
                let closed = Governance {
                    policy: Arc::new(Arc::new(Policy::deny_all(&format!(
                        "every tool call is denied: {why}"
                    )))),
                    identities: Arc::new(Identities::empty()),
                    // Nobody's roles are known, so nobody may decide anything.
                    check_approvers: true,
                };
                (closed, Some(why))
            }
            Err(e) => return Err(e),
        };
        let config = EngineConfig {
            governance,
            ..EngineConfig::new(StoreOptions::new(&db))
        };
        let engine = Engine::open(config, Arc::new(SystemClock), Arc::new(tools), model)
            .await
            .map_err(|source| SetupError::Engine {
                db: db.clone(),
                source,
            })?;
        Ok(Opened {
            engine,
            mcp,
            model: model_name,
            ungoverned,
        })
    }
}
