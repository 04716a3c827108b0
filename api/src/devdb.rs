//! Development-mode private Postgres: when `DATABASE_URL` is unset in mode `development`, the api
//! runs its own PostgreSQL cluster on its own port and socket, so `scripts/dev` works on a machine
//! with nothing but the server binaries installed. The cluster lives under `<var>/pg` or, when run
//! as root and the `postgres` user cannot reach that directory, under
//! `/var/tmp/ringledger-dev-pg-<hash>`; `<var>/pg-location` always names the directory in use.
//! Inside it: `data/` (the cluster), `socket/`, `port` (chosen once, then reused) and
//! `postgres.log`. This module must never be used in production, never install packages, never
//! listen beyond 127.0.0.1, never trust any address but the local socket and 127.0.0.1, and never
//! touch a cluster other than its own.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tracing::{debug, info, warn};

const DEFAULT_PORT: u16 = 54329;
const DATABASE: &str = "ringledger";
const SUPERUSER: &str = "postgres";
/// The OS user that runs the cluster when we are root (initdb and postgres refuse root).
const RUN_AS_USER: &str = "postgres";
const PG_CTL_WAIT_SECS: &str = "60";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// `sun_path` holds 108 bytes with its NUL; Postgres appends `/.s.PGSQL.NNNNN` to the directory.
const SOCKET_PATH_MAX_BYTES: usize = 107;
const ERROR_OUTPUT_MAX_CHARS: usize = 2_000;
const CONF_FILE: &str = "ringledger-dev.conf";
const HBA: &str = "# Written by ringledger devdb: trust the local socket and 127.0.0.1, nothing else.\n\
                   local all all trust\n\
                   host all all 127.0.0.1/32 trust\n";

/// A running private cluster with the `ringledger` database in it.
#[derive(Debug, Clone)]
pub struct PrivatePostgres {
    /// `postgres://postgres@127.0.0.1:PORT/ringledger` (trust auth, so no password).
    pub url: String,
    /// The cluster's data directory (`PGDATA`).
    pub data_dir: PathBuf,
    pub port: u16,
    pub socket_dir: PathBuf,
    pub log_file: PathBuf,
    /// True when this call started the server; false when it reused one already running.
    /// Whoever started it stops it (`stop`) on shutdown.
    pub started: bool,
    runner: Runner,
}

#[derive(Debug, thiserror::Error)]
pub enum DevDbError {
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; looked in {searched}. \
         Install them with `apt-get install -y postgresql` (scripts/dev does this for you), \
         or set DATABASE_URL to a database you already have"
    )]
    BinariesNotFound { searched: String },
    #[error(
        "running as root, but there is no `postgres` user to run the private cluster as \
         (initdb refuses to run as root); install the `postgresql` package, which creates it, \
         or run as a normal user"
    )]
    NoPostgresUser,
    #[error(
        "running as root, but neither `runuser` nor `setpriv` was found to run Postgres as the \
         `postgres` user; install util-linux"
    )]
    NoRunAs,
    #[error("could not {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: `{content}` is not a port number; write one port (1024-65535) or delete the file")]
    BadPortFile { path: PathBuf, content: String },
    #[error("{path}: cannot read the port of the running server; stop it with `pg_ctl stop -D {data_dir}`")]
    BadPidFile { path: PathBuf, data_dir: PathBuf },
    #[error(
        "{path} exists but belongs to uid {owner} (expected {expected}) or is not a plain directory; \
         another user may have created it: remove it and run again"
    )]
    UnsafeDirectory {
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error(
        "the private Postgres on port {port} did not accept connections within {waited_secs} s \
         (last error: {last_error}); see its log {log}"
    )]
    NotReady {
        port: u16,
        waited_secs: u64,
        last_error: String,
        log: PathBuf,
    },
    #[error("could not create database `ringledger` on the private Postgres (port {port}): {error}")]
    CreateDatabase { port: u16, error: sqlx::Error },
}

/// Find or create the private cluster under `var_dir`, start it unless it is already running,
/// wait until it accepts connections and make sure database `ringledger` exists.
pub async fn ensure_private_postgres(var_dir: &Path) -> Result<PrivatePostgres, DevDbError> {
    let var_dir = prepare_var_dir(var_dir).await?;
    let who = Identity::current().await?;
    let reaches = match &who.run_as_postgres {
        Some(pg) => postgres_reaches(&var_dir, pg),
        None => true,
    };
    let layout = Layout::new(choose_area(&var_dir, who.is_root(), reaches));
    prepare_area(&layout, &var_dir, &who).await?;
    write_file(
        &var_dir.join("pg-location"),
        &format!("{}\n", layout.area.display()),
        None,
    )
    .await?;
    let runner = Runner::new(find_bin_dir(&layout.data_dir).await?, &who)?;
    if !layout.data_dir.join("PG_VERSION").exists() {
        init_cluster(&runner, &layout, &who).await?;
    }
    let running_port = runner.running_port(&layout).await?;
    let port = choose_port(&layout, running_port, &who).await?;
    let started = match running_port {
        Some(_) => false,
        None => start(&runner, &layout, port, &who).await?,
    };
    let admin_url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres");
    wait_until_ready(&admin_url, port, &layout.log_file).await?;
    create_database(&admin_url, port).await?;
    let url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}");
    info!(%url, data_dir = %layout.data_dir.display(), started, "private Postgres ready");
    Ok(PrivatePostgres {
        url,
        data_dir: layout.data_dir,
        port,
        socket_dir: layout.socket_dir,
        log_file: layout.log_file,
        started,
        runner,
    })
}

impl PrivatePostgres {
    /// Stop the server (`pg_ctl stop -m fast`: sessions are cut, nothing committed is lost).
    /// For shutdown paths, where there is nobody left to hand an error to: a failure is logged.
    pub async fn stop(&self) {
        if let Err(error) = self.try_stop().await {
            warn!(%error, data_dir = %self.data_dir.display(), "private Postgres did not stop");
        }
    }

    /// `stop`, returning the failure. Stopping a server that is not running is not an error.
    pub async fn try_stop(&self) -> Result<(), DevDbError> {
        info!(data_dir = %self.data_dir.display(), "stopping private Postgres");
        let args = pg_ctl_args(
            "stop",
            &self.data_dir,
            &["-m", "fast", "-w", "-t", PG_CTL_WAIT_SECS],
        );
        let output = self.runner.run("pg_ctl", &args).await?;
        if output.status.success() || !self.is_running().await? {
            return Ok(());
        }
        Err(command_error("pg_ctl stop", &output))
    }

    /// Whether a server runs on this data directory (`pg_ctl status`).
    pub async fn is_running(&self) -> Result<bool, DevDbError> {
        let args = pg_ctl_args("status", &self.data_dir, &[]);
        Ok(self.runner.run("pg_ctl", &args).await?.status.success())
    }
}

/// Who we are, and (only when root) the `postgres` user the cluster runs as.
#[derive(Debug, Clone)]
struct Identity {
    euid: u32,
    run_as_postgres: Option<UserIds>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UserIds {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Identity {
    async fn current() -> Result<Self, DevDbError> {
        let status = tokio::fs::read_to_string("/proc/self/status").await.ok();
        let euid = match status.as_deref().and_then(parse_effective_uid) {
            Some(euid) => euid,
            None => id_numbers(&["-u"])
                .await
                .and_then(|ids| ids.first().copied())
                .unwrap_or(u32::MAX),
        };
        if euid != 0 {
            return Ok(Self {
                euid,
                run_as_postgres: None,
            });
        }
        let uid = id_numbers(&["-u", RUN_AS_USER]).await;
        let gid = id_numbers(&["-g", RUN_AS_USER]).await;
        let groups = id_numbers(&["-G", RUN_AS_USER]).await.unwrap_or_default();
        match (uid.as_deref(), gid.as_deref()) {
            (Some([uid]), Some([gid])) => {
                let run_as_postgres = Some(UserIds {
                    uid: *uid,
                    gid: *gid,
                    groups,
                });
                Ok(Self {
                    euid,
                    run_as_postgres,
                })
            }
            _ => Err(DevDbError::NoPostgresUser),
        }
    }

    fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// The uid the cluster's files must belong to.
    fn cluster_uid(&self) -> u32 {
        self.run_as_postgres.as_ref().map_or(self.euid, |pg| pg.uid)
    }

    /// Ownership to give files we create for the cluster (only needed when root).
    fn chown_to(&self) -> Option<(u32, u32)> {
        self.run_as_postgres.as_ref().map(|pg| (pg.uid, pg.gid))
    }
}

async fn id_numbers(args: &[&str]) -> Option<Vec<u32>> {
    let output = tokio::process::Command::new("id")
        .args(args)
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect()
}

/// `Uid:` line of `/proc/self/status`: real, effective, saved, filesystem.
fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Debug, Clone, Copy)]
struct DirAccess {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Unix search permission: the owner bits for the owner, else the group bits for a member,
/// else the other bits (a matching owner never falls through to group or other).
fn can_traverse(dir: DirAccess, user: &UserIds) -> bool {
    let bit = if user.uid == 0 {
        return true;
    } else if dir.uid == user.uid {
        0o100
    } else if dir.gid == user.gid || user.groups.contains(&dir.gid) {
        0o010
    } else {
        0o001
    };
    dir.mode & bit != 0
}

fn postgres_reaches(var_dir: &Path, postgres: &UserIds) -> bool {
    var_dir.ancestors().all(|dir| match std::fs::metadata(dir) {
        Ok(meta) => can_traverse(
            DirAccess {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
            },
            postgres,
        ),
        Err(_) => false,
    })
}

/// `<var>/pg`, unless we are root and the `postgres` user cannot reach `<var>`: then a directory
/// in `/var/tmp` named after the repository, so each checkout keeps its own cluster.
fn choose_area(var_dir: &Path, as_root: bool, postgres_reaches_var_dir: bool) -> PathBuf {
    if !as_root || postgres_reaches_var_dir {
        return var_dir.join("pg");
    }
    PathBuf::from(format!("/var/tmp/ringledger-dev-pg-{}", path_hash(var_dir)))
}

/// FNV-1a, 64 bits: stable across Rust releases, unlike `DefaultHasher`, so the directory a
/// checkout maps to never moves.
fn path_hash(path: &Path) -> String {
    let hash = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    area: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port_file: PathBuf,
    log_file: PathBuf,
}

impl Layout {
    fn new(area: PathBuf) -> Self {
        Self {
            data_dir: area.join("data"),
            socket_dir: socket_dir_for(&area),
            port_file: area.join("port"),
            log_file: area.join("postgres.log"),
            area,
        }
    }
}

/// `<area>/socket`, or a short directory in /tmp when that path would not fit in a socket address.
fn socket_dir_for(area: &Path) -> PathBuf {
    let dir = area.join("socket");
    if dir.as_os_str().len() + "/.s.PGSQL.65535".len() <= SOCKET_PATH_MAX_BYTES {
        return dir;
    }
    PathBuf::from(format!("/tmp/ringledger-pg-{}", path_hash(area)))
}

async fn prepare_var_dir(var_dir: &Path) -> Result<PathBuf, DevDbError> {
    tokio::fs::create_dir_all(var_dir)
        .await
        .map_err(io_error("create", var_dir))?;
    tokio::fs::canonicalize(var_dir)
        .await
        .map_err(io_error("resolve", var_dir))
}

async fn prepare_area(layout: &Layout, var_dir: &Path, who: &Identity) -> Result<(), DevDbError> {
    let in_shared_tmp = !layout.area.starts_with(var_dir);
    ensure_dir(&layout.area, who, in_shared_tmp).await?;
    let socket_in_tmp = !layout.socket_dir.starts_with(&layout.area);
    ensure_dir(&layout.socket_dir, who, socket_in_tmp).await
}

/// Create `dir` (mode 0700, owned by the cluster's user). In a world-writable parent such as
/// /var/tmp an existing entry must already be a real directory of that user, or someone else
/// could have planted it.
async fn ensure_dir(dir: &Path, who: &Identity, in_shared_tmp: bool) -> Result<(), DevDbError> {
    let expected = who.cluster_uid();
    match tokio::fs::symlink_metadata(dir).await {
        Ok(meta) if in_shared_tmp && (!meta.is_dir() || meta.uid() != expected) => {
            return Err(DevDbError::UnsafeDirectory {
                path: dir.to_owned(),
                owner: meta.uid(),
                expected,
            });
        }
        Ok(_) => {}
        Err(_) => tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error("create", dir))?,
    }
    set_owner(dir, who.chown_to())?;
    let mode = std::fs::Permissions::from_mode(0o700);
    tokio::fs::set_permissions(dir, mode)
        .await
        .map_err(io_error("set permissions of", dir))
}

fn set_owner(path: &Path, owner: Option<(u32, u32)>) -> Result<(), DevDbError> {
    match owner {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(io_error("change the owner of", path)),
        None => Ok(()),
    }
}

async fn write_file(path: &Path, contents: &str, owner: Option<(u32, u32)>) -> Result<(), DevDbError> {
    tokio::fs::write(path, contents)
        .await
        .map_err(io_error("write", path))?;
    set_owner(path, owner)
}

/// Where initdb/pg_ctl/postgres live: the version the cluster was made with, `pg_config
/// --bindir`, the newest `/usr/lib/postgresql/*/bin`, then `PATH`.
async fn find_bin_dir(data_dir: &Path) -> Result<PathBuf, DevDbError> {
    let mut candidates = Vec::new();
    if let Ok(version) = tokio::fs::read_to_string(data_dir.join("PG_VERSION")).await {
        candidates.push(PathBuf::from(format!(
            "/usr/lib/postgresql/{}/bin",
            version.trim()
        )));
    }
    if let Ok(out) = tokio::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .await
    {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        let versions = newest_first(&names);
        candidates.extend(
            versions
                .iter()
                .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))),
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    match candidates.iter().find(|dir| has_server_binaries(dir)) {
        Some(dir) => Ok(dir.clone()),
        None => {
            let searched = "pg_config --bindir, /usr/lib/postgresql/*/bin and PATH".to_owned();
            Err(DevDbError::BinariesNotFound { searched })
        }
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| dir.join(tool).is_file())
}

/// Directory names that are Postgres versions ("15", "9.6"), newest first.
fn newest_first(names: &[String]) -> Vec<String> {
    let parse = |name: &str| -> Option<Vec<u32>> { name.split('.').map(|p| p.parse().ok()).collect() };
    let mut versions: Vec<(Vec<u32>, String)> = names
        .iter()
        .filter_map(|n| Some((parse(n)?, n.clone())))
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, name)| name).collect()
}

/// How a Postgres tool is run: directly, or as the `postgres` user when we are root.
#[derive(Debug, Clone)]
struct Runner {
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RunAs {
    Runuser(PathBuf),
    Setpriv(PathBuf),
}

impl Runner {
    fn new(bin_dir: PathBuf, who: &Identity) -> Result<Self, DevDbError> {
        if !who.is_root() {
            return Ok(Self {
                bin_dir,
                run_as: None,
            });
        }
        let find = |name: &str| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        };
        let run_as = match (find("runuser"), find("setpriv")) {
            (Some(runuser), _) => RunAs::Runuser(runuser),
            (None, Some(setpriv)) => RunAs::Setpriv(setpriv),
            (None, None) => return Err(DevDbError::NoRunAs),
        };
        Ok(Self {
            bin_dir,
            run_as: Some(run_as),
        })
    }

    fn command_line(&self, tool: &str, args: &[OsString]) -> (PathBuf, Vec<OsString>) {
        let tool_path = self.bin_dir.join(tool).into_os_string();
        let (program, mut argv) = match &self.run_as {
            None => return (PathBuf::from(tool_path), args.to_vec()),
            Some(RunAs::Runuser(p)) => (p.clone(), vec!["-u".into(), RUN_AS_USER.into(), "--".into()]),
            Some(RunAs::Setpriv(p)) => (
                p.clone(),
                vec![
                    format!("--reuid={RUN_AS_USER}").into(),
                    format!("--regid={RUN_AS_USER}").into(),
                    "--init-groups".into(),
                    "--".into(),
                ],
            ),
        };
        argv.push(tool_path);
        argv.extend_from_slice(args);
        (program, argv)
    }

    async fn run(&self, tool: &str, args: &[OsString]) -> Result<Output, DevDbError> {
        let (program, argv) = self.command_line(tool, args);
        debug!(program = %program.display(), ?argv, "running Postgres tool");
        // "/" so the postgres user never trips over a working directory it cannot enter.
        let output = tokio::process::Command::new(&program)
            .args(&argv)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io_error("run", &program))?;
        debug!(tool, status = %output.status, "Postgres tool finished");
        Ok(output)
    }

    async fn run_ok(&self, tool: &str, args: &[OsString]) -> Result<(), DevDbError> {
        let output = self.run(tool, args).await?;
        if output.status.success() {
            return Ok(());
        }
        let first = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        Err(command_error(&format!("{tool} {first}"), &output))
    }

    /// The port of the server running on this cluster, if one is.
    async fn running_port(&self, layout: &Layout) -> Result<Option<u16>, DevDbError> {
        let args = pg_ctl_args("status", &layout.data_dir, &[]);
        if !self.run("pg_ctl", &args).await?.status.success() {
            return Ok(None);
        }
        let pid_file = layout.data_dir.join("postmaster.pid");
        let text = tokio::fs::read_to_string(&pid_file)
            .await
            .map_err(io_error("read", &pid_file))?;
        match parse_pid_file_port(&text) {
            Some(port) => Ok(Some(port)),
            None => Err(DevDbError::BadPidFile {
                path: pid_file,
                data_dir: layout.data_dir.clone(),
            }),
        }
    }
}

fn pg_ctl_args(action: &str, data_dir: &Path, rest: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![action.into(), "-D".into(), data_dir.into()];
    args.extend(rest.iter().map(OsString::from));
    args
}

/// Line 4 of `postmaster.pid` is the port (pid, data dir, start time, port, socket dir, ...).
fn parse_pid_file_port(text: &str) -> Option<u16> {
    text.lines().nth(3)?.trim().parse().ok().filter(|port| *port != 0)
}

fn parse_port_file(text: &str) -> Option<u16> {
    text.trim().parse().ok().filter(|port| *port >= 1024)
}

/// initdb into a staging directory and rename it into place, so an interrupted init never leaves
/// a half-made `data/` that later runs would mistake for a cluster.
async fn init_cluster(runner: &Runner, layout: &Layout, who: &Identity) -> Result<(), DevDbError> {
    let staging = layout.area.join("data.initdb");
    if tokio::fs::symlink_metadata(&staging).await.is_ok() {
        tokio::fs::remove_dir_all(&staging)
            .await
            .map_err(io_error("remove", &staging))?;
    }
    info!(data_dir = %layout.data_dir.display(), "initialising private Postgres cluster");
    let args: Vec<OsString> = vec![
        "-D".into(),
        staging.clone().into(),
        format!("--username={SUPERUSER}").into(),
        "--auth-local=trust".into(),
        "--auth-host=trust".into(),
        "--encoding=UTF8".into(),
        "--no-locale".into(),
    ];
    runner.run_ok("initdb", &args).await?;
    write_file(&staging.join("pg_hba.conf"), HBA, who.chown_to()).await?;
    let conf = staging.join("postgresql.conf");
    let mut text = tokio::fs::read_to_string(&conf)
        .await
        .map_err(io_error("read", &conf))?;
    text.push_str(&format!("\n# Port and addresses are rewritten at every start by ringledger devdb.\ninclude_if_exists = '{CONF_FILE}'\n"));
    write_file(&conf, &text, who.chown_to()).await?;
    tokio::fs::rename(&staging, &layout.data_dir)
        .await
        .map_err(io_error("move into place", &staging))
}

/// The running server's port; else the saved one if still free; else 54329 or any free port.
async fn choose_port(layout: &Layout, running: Option<u16>, who: &Identity) -> Result<u16, DevDbError> {
    let saved = match tokio::fs::read_to_string(&layout.port_file).await {
        Ok(text) => match parse_port_file(&text) {
            Some(port) => Some(port),
            None => {
                let content = text.trim().chars().take(40).collect();
                return Err(DevDbError::BadPortFile {
                    path: layout.port_file.clone(),
                    content,
                });
            }
        },
        Err(_) => None,
    };
    let port = match (running, saved) {
        (Some(port), _) => port,
        (None, Some(port)) if port_is_free(port).await => port,
        (None, Some(port)) => {
            warn!(
                port,
                "saved private Postgres port is taken by another program; choosing another"
            );
            free_port().await?
        }
        (None, None) if port_is_free(DEFAULT_PORT).await => DEFAULT_PORT,
        (None, None) => free_port().await?,
    };
    if saved != Some(port) {
        write_file(&layout.port_file, &format!("{port}\n"), who.chown_to()).await?;
    }
    Ok(port)
}

async fn port_is_free(port: u16) -> bool {
    tokio::net::TcpListener::bind(("127.0.0.1", port)).await.is_ok()
}

async fn free_port() -> Result<u16, DevDbError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(io_error("bind a free port on", Path::new("127.0.0.1")))?;
    let addr = listener
        .local_addr()
        .map_err(io_error("read the address of", Path::new("127.0.0.1")))?;
    Ok(addr.port())
}

/// The settings every start writes: our port, 127.0.0.1 only, our own socket directory.
fn server_conf(port: u16, socket_dir: &Path) -> String {
    let socket_dir = socket_dir.display().to_string().replace('\'', "''");
    format!(
        "# Written by ringledger devdb at every start; change the port in the `port` file beside data/.\n\
         listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{socket_dir}'\n"
    )
}

/// Start the server; true when we started it, false when another process won the race.
async fn start(runner: &Runner, layout: &Layout, port: u16, who: &Identity) -> Result<bool, DevDbError> {
    let conf = server_conf(port, &layout.socket_dir);
    write_file(&layout.data_dir.join(CONF_FILE), &conf, who.chown_to()).await?;
    info!(port, data_dir = %layout.data_dir.display(), "starting private Postgres");
    let mut args = pg_ctl_args(
        "start",
        &layout.data_dir,
        &["-w", "-t", PG_CTL_WAIT_SECS, "-s", "-l"],
    );
    args.push(layout.log_file.clone().into());
    let output = runner.run("pg_ctl", &args).await?;
    if output.status.success() {
        return Ok(true);
    }
    if runner.running_port(layout).await?.is_some() {
        warn!("another process started the private Postgres at the same time; reusing it");
        return Ok(false);
    }
    let mut error = command_error("pg_ctl start", &output);
    if let DevDbError::Command { output, .. } = &mut error {
        output.push_str(&format!("; see {}", layout.log_file.display()));
    }
    Err(error)
}

async fn wait_until_ready(admin_url: &str, port: u16, log: &Path) -> Result<(), DevDbError> {
    let started = Instant::now();
    let deadline = started + READY_TIMEOUT;
    loop {
        let attempt = tokio::time::timeout(CONNECT_ATTEMPT_TIMEOUT, sqlx::PgConnection::connect(admin_url));
        let last_error = match attempt.await {
            Ok(Ok(conn)) => {
                // Closing politely is a courtesy; a failure here says nothing about readiness.
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {} s", CONNECT_ATTEMPT_TIMEOUT.as_secs()),
        };
        if Instant::now() + POLL_INTERVAL >= deadline {
            let waited_secs = started.elapsed().as_secs();
            return Err(DevDbError::NotReady {
                port,
                waited_secs,
                last_error,
                log: log.to_owned(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn create_database(admin_url: &str, port: u16) -> Result<(), DevDbError> {
    let fail = |error| DevDbError::CreateDatabase { port, error };
    let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(fail)?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(DATABASE)
        .fetch_one(&mut conn)
        .await
        .map_err(fail)?;
    if !exists {
        info!(database = DATABASE, "creating database");
        match sqlx::raw_sql("CREATE DATABASE ringledger")
            .execute(&mut conn)
            .await
        {
            Ok(_) => {}
            // 42P04 duplicate_database: another process created it between our check and now.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(error) => return Err(fail(error)),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DevDbError {
    let path = path.to_owned();
    move |error| DevDbError::Io { action, path, error }
}

fn command_error(command: &str, output: &Output) -> DevDbError {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let text = text.trim();
    let skip = text.chars().count().saturating_sub(ERROR_OUTPUT_MAX_CHARS);
    DevDbError::Command {
        command: command.to_owned(),
        status: output.status.to_string(),
        output: text.chars().skip(skip).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> UserIds {
        UserIds {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    fn dir(mode: u32, uid: u32, gid: u32) -> DirAccess {
        DirAccess { mode, uid, gid }
    }

    #[test]
    fn effective_uid_is_the_second_field_of_the_uid_line() {
        let status = "Name:\tringledger\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
        assert_eq!(parse_effective_uid("Uid:\tabc\tdef\n"), None);
    }

    #[test]
    fn traversal_follows_owner_then_group_then_other_bits() {
        let postgres = user(101, 104, &[104, 103]);
        assert!(!can_traverse(dir(0o700, 0, 0), &postgres), "/root 0700");
        assert!(can_traverse(dir(0o755, 0, 0), &postgres), "0755");
        assert!(can_traverse(dir(0o711, 1000, 1000), &postgres), "other x only");
        assert!(
            can_traverse(dir(0o750, 1000, 103), &postgres),
            "supplementary group"
        );
        assert!(
            !can_traverse(dir(0o705, 1000, 103), &postgres),
            "group bits win over other"
        );
        assert!(
            !can_traverse(dir(0o071, 101, 104), &postgres),
            "owner bits win over group and other"
        );
        assert!(
            can_traverse(dir(0o000, 1000, 1000), &user(0, 0, &[])),
            "root passes"
        );
    }

    #[test]
    fn postgres_reach_is_checked_on_every_parent() {
        let root = TempRoot::new("reach");
        let inner = root.path.join("closed").join("var");
        std::fs::create_dir_all(&inner).expect("create test dirs");
        let meta = std::fs::metadata(&root.path).expect("stat test root");
        let stranger = user(meta.uid().wrapping_add(4242), meta.gid().wrapping_add(4242), &[]);
        let set_mode = |mode| {
            let closed = root.path.join("closed");
            std::fs::set_permissions(closed, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        set_mode(0o755);
        let reaches_root = postgres_reaches(&root.path, &stranger);
        assert_eq!(postgres_reaches(&inner, &stranger), reaches_root);
        set_mode(0o700);
        assert!(!postgres_reaches(&inner, &stranger));
    }

    #[test]
    fn data_area_is_var_pg_unless_root_cannot_hand_it_to_postgres() {
        let var = Path::new("/home/alice/ringledger/var");
        assert_eq!(choose_area(var, false, false), var.join("pg"));
        assert_eq!(choose_area(var, true, true), var.join("pg"));
        let fallback = choose_area(var, true, false);
        assert_eq!(
            fallback,
            PathBuf::from(format!("/var/tmp/ringledger-dev-pg-{}", path_hash(var)))
        );
        assert_ne!(fallback, choose_area(Path::new("/root/other/var"), true, false));
    }

    #[test]
    fn path_hash_is_fnv1a_and_stable() {
        assert_eq!(path_hash(Path::new("")), "cbf29ce484222325");
        assert_eq!(path_hash(Path::new("a")), "af63dc4c8601ec8c");
    }

    #[test]
    fn layout_keeps_everything_in_the_area_unless_the_socket_path_is_too_long() {
        let layout = Layout::new(PathBuf::from("/work/main/var/pg"));
        assert_eq!(layout.data_dir, Path::new("/work/main/var/pg/data"));
        assert_eq!(layout.socket_dir, Path::new("/work/main/var/pg/socket"));
        assert_eq!(layout.port_file, Path::new("/work/main/var/pg/port"));
        let deep = PathBuf::from(format!("/{}/var/pg", "d".repeat(90)));
        let socket = socket_dir_for(&deep);
        assert!(
            socket.to_string_lossy().starts_with("/tmp/ringledger-pg-"),
            "{}",
            socket.display()
        );
        assert!(socket.as_os_str().len() + 15 <= SOCKET_PATH_MAX_BYTES);
    }

    #[test]
    fn port_file_holds_one_unprivileged_port() {
        assert_eq!(parse_port_file("54329\n"), Some(54329));
        assert_eq!(parse_port_file("  61000  "), Some(61000));
        for bad in ["", "abc", "0", "80", "70000", "5432 5433", "-1"] {
            assert_eq!(parse_port_file(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn running_port_is_line_four_of_postmaster_pid() {
        let pid = "13558\n/work/main/var/pg/data\n1795598859\n54329\n/work/main/var/pg/socket\n\
                   127.0.0.1\n   893083         9\nready   \n";
        assert_eq!(parse_pid_file_port(pid), Some(54329));
        assert_eq!(parse_pid_file_port("13558\n/data\n"), None);
        assert_eq!(parse_pid_file_port("1\n/d\n2\nport\n"), None);
    }

    #[test]
    fn newest_postgres_version_comes_first() {
        let names: Vec<String> = ["9.6", "15", "common", "16", "13"].map(String::from).to_vec();
        assert_eq!(newest_first(&names), ["16", "15", "13", "9.6"]);
    }

    #[test]
    fn tools_run_directly_or_as_postgres() {
        let args = vec![OsString::from("-D"), OsString::from("/d")];
        let direct = Runner {
            bin_dir: PathBuf::from("/pg/bin"),
            run_as: None,
        };
        assert_eq!(
            direct.command_line("initdb", &args),
            (PathBuf::from("/pg/bin/initdb"), args.clone())
        );
        let runuser = Runner {
            run_as: Some(RunAs::Runuser(PathBuf::from("/usr/sbin/runuser"))),
            ..direct
        };
        let (program, argv) = runuser.command_line("pg_ctl", &args);
        assert_eq!(program, Path::new("/usr/sbin/runuser"));
        assert_eq!(
            argv,
            ["-u", "postgres", "--", "/pg/bin/pg_ctl", "-D", "/d"].map(OsString::from)
        );
    }

    #[test]
    fn server_conf_listens_on_loopback_and_quotes_the_socket_dir() {
        let conf = server_conf(54329, Path::new("/tmp/o'brien/socket"));
        assert!(conf.contains("listen_addresses = '127.0.0.1'\n"), "{conf}");
        assert!(conf.contains("port = 54329\n"), "{conf}");
        assert!(
            conf.contains("unix_socket_directories = '/tmp/o''brien/socket'\n"),
            "{conf}"
        );
        assert!(HBA
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.starts_with("local") || l.contains("127.0.0.1/32")));
    }

    #[tokio::test]
    async fn a_planted_entry_in_a_shared_directory_is_refused() {
        let root = TempRoot::new("planted");
        let target = root.path.join("elsewhere");
        std::fs::create_dir(&target).expect("create target");
        let planted = root.path.join("ringledger-dev-pg-x");
        std::os::unix::fs::symlink(&target, &planted).expect("symlink");
        let who = Identity {
            euid: std::fs::metadata(&root.path).expect("stat").uid(),
            run_as_postgres: None,
        };
        let result = ensure_dir(&planted, &who, true).await;
        assert!(
            matches!(result, Err(DevDbError::UnsafeDirectory { .. })),
            "{result:?}"
        );
    }

    /// Initialises, starts, reuses, stops and restarts a real cluster in a temporary directory.
    #[tokio::test]
    async fn private_cluster_starts_is_reused_and_stops() {
        let root = TempRoot::new("cluster");
        let var = root.path.join("var");
        let pg = match ensure_private_postgres(&var).await {
            Err(DevDbError::BinariesNotFound { .. }) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: no Postgres server binaries (scripts/test installs them)");
                return;
            }
            other => other.expect("the private Postgres starts"),
        };
        assert!(pg.started);
        let area = pg.data_dir.parent().expect("data dir has a parent").to_owned();
        let location = std::fs::read_to_string(var.join("pg-location")).expect("pg-location written");
        assert_eq!(Path::new(location.trim()), area);
        let saved = std::fs::read_to_string(area.join("port")).expect("port file written");
        assert_eq!(parse_port_file(&saved), Some(pg.port));
        assert_eq!(
            pg.url,
            format!("postgres://postgres@127.0.0.1:{}/ringledger", pg.port)
        );
        check_settings(&pg).await;

        let again = ensure_private_postgres(&var)
            .await
            .expect("the running cluster is reused");
        assert!(!again.started);
        assert_eq!((again.port, &again.url), (pg.port, &pg.url));

        pg.try_stop().await.expect("stops");
        assert!(!pg.is_running().await.expect("pg_ctl status"));
        let third = ensure_private_postgres(&var)
            .await
            .expect("a stopped cluster starts again");
        assert!(third.started);
        assert_eq!(third.port, pg.port, "the saved port is reused");
        third.try_stop().await.expect("stops again");
        third
            .try_stop()
            .await
            .expect("stopping a stopped cluster is fine");
    }

    async fn check_settings(pg: &PrivatePostgres) {
        let mut conn = sqlx::PgConnection::connect(&pg.url)
            .await
            .expect("connects without a password");
        let (db, listen, sockets): (String, String, String) = sqlx::query_as(
            "SELECT current_database(), current_setting('listen_addresses'), \
             current_setting('unix_socket_directories')",
        )
        .fetch_one(&mut conn)
        .await
        .expect("settings");
        assert_eq!(db, "ringledger");
        assert_eq!(listen, "127.0.0.1");
        assert_eq!(Path::new(&sockets), pg.socket_dir);
        let rules: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT type, address FROM pg_hba_file_rules ORDER BY line_number")
                .fetch_all(&mut conn)
                .await
                .expect("hba rules");
        assert_eq!(
            rules,
            [
                ("local".to_owned(), None),
                ("host".to_owned(), Some("127.0.0.1".to_owned()))
            ]
        );
        let _ = conn.close().await;
    }

    /// A directory under the system temp dir, removed on drop, after stopping any server left
    /// running in it by a failed test (SIGINT is Postgres' fast shutdown).
    struct TempRoot {
        path: PathBuf,
    }

    impl TempRoot {
        fn new(name: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!("rl-devdb-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Self { path }
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let pid_file = self.path.join("var/pg/data/postmaster.pid");
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_owned))
            {
                let _ = std::process::Command::new("kill")
                    .args(["-INT", pid.trim()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while pid_file.exists() && Instant::now() < deadline {
                    std::thread::sleep(POLL_INTERVAL);
                }
            }
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
