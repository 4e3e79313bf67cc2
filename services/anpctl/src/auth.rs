//! Where anpctl finds its credentials.
//!
//! The ops token: `ANP_OPS_TOKEN`, else the file named by
//! `ANP_OPS_TOKEN_FILE` (default `.anp/ops-token`, which `make run` writes).
//! The session token of a person: `ANP_SESSION_TOKEN`, else the file named by
//! `ANP_SESSION_FILE` (default `.anp/session`, which `anpctl account login`
//! writes).

use std::path::PathBuf;

use anyhow::Context;

fn from_env_or_file(var: &str, file_var: &str, default_file: &str) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var(var)
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    let path = file_path(file_var, default_file);
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("no {var} and cannot read {}", path.display()))?;
    Ok(token.trim().to_owned())
}

/// The file `file_var` names, else `default_file` in the working directory,
/// else in the checkout this binary was built in
/// (`<checkout>/target/<profile>/anpctl`).
pub fn file_path(file_var: &str, default_file: &str) -> PathBuf {
    if let Ok(path) = std::env::var(file_var) {
        return PathBuf::from(path);
    }
    let here = PathBuf::from(default_file);
    if here.exists() || here.parent().is_some_and(|dir| dir.exists()) {
        return here;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join(default_file)))
        .filter(|path| path.parent().is_some_and(|dir| dir.exists()))
        .unwrap_or(here)
}

pub fn ops_token() -> anyhow::Result<String> {
    from_env_or_file("ANP_OPS_TOKEN", "ANP_OPS_TOKEN_FILE", ".anp/ops-token")
}

pub fn session_token() -> anyhow::Result<String> {
    from_env_or_file("ANP_SESSION_TOKEN", "ANP_SESSION_FILE", ".anp/session")
        .context("sign in first: anpctl account login --email <email>")
}

pub fn save_session(token: &str) -> anyhow::Result<PathBuf> {
    let path = file_path("ANP_SESSION_FILE", ".anp/session");
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, token).with_context(|| format!("write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(path)
}

pub fn forget_session() {
    let _ = std::fs::remove_file(file_path("ANP_SESSION_FILE", ".anp/session"));
}

fn with_bearer<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    anp_session::with_bearer(message, token).context("token")
}

/// A request with the ops token.
pub fn ops<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    with_bearer(message, &ops_token()?)
}

/// A request with the signed-in person's session token.
pub fn session<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    with_bearer(message, &session_token()?)
}

/// A request with the session token if there is one (reads: signed-in
/// people may see more).
pub fn maybe_session<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    match session_token() {
        Ok(token) => with_bearer(message, &token),
        Err(_) => Ok(tonic::Request::new(message)),
    }
}

/// The password: one line from standard input with `--password-stdin`,
/// else `ANP_PASSWORD`.
pub fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    std::env::var("ANP_PASSWORD")
        .context("give the password on standard input with --password-stdin, or in ANP_PASSWORD")
}
