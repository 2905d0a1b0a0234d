//! `jetforge env PKG`: the exact environment the recipe's build steps get.
//! `eval "$(jetforge env torch)"` reproduces a build by hand, so the shell form carries the real
//! credentials (with a warning on stderr); the dotenv and JSON forms mask them.

use anyhow::Result;

use super::Session;
use crate::cli::{EnvArgs, EnvFormat, GlobalArgs};

pub fn run(g: &GlobalArgs, a: &EnvArgs) -> Result<()> {
    let s = Session::load(g)?;
    if s.set.get(&a.package).is_none() {
        s.set
            .select(std::slice::from_ref(&a.package))
            .map_err(crate::error::input)?;
    }
    let plan = super::plan::make(&s, std::slice::from_ref(&a.package), a.jobs.jobs)?;
    let r = plan
        .recipes
        .iter()
        .find(|r| r.name == a.package)
        .expect("the selection includes the named recipe");
    let env = &r.build_env;
    let format = if g.json { EnvFormat::Json } else { a.format };
    let secret: Vec<&str> = env
        .vars
        .iter()
        .filter(|v| crate::redact::redact(&v.value) != v.value)
        .map(|v| v.key.as_str())
        .collect();
    if !secret.is_empty() && !a.show_secrets {
        // The shell form is for `eval` in the user's own shell, where a masked proxy would
        // silently break every download: it gets the real values, and the user is told so. The
        // other forms are for reading and stay masked, saying how to get the real values.
        eprintln!(
            "{}",
            if matches!(format, EnvFormat::Shell) {
                format!(
                    "warning: {} carry credentials and are printed unmasked, so that `eval` gets a working value; \
                     use --format json or dotenv for a masked view",
                    secret.join(", ")
                )
            } else {
                format!(
                    "note: the credentials in {} are masked; add --show-secrets for working values",
                    secret.join(", ")
                )
            }
        );
    }
    // The GIT_CONFIG_* entries are many and unreadable; one comment says what they do.
    let git = &plan.git_redirects;
    if !matches!(format, EnvFormat::Json) && !git.mirrors.is_empty() {
        println!("# {}", git.summary());
    }
    match format {
        EnvFormat::Shell => print!("{}{}", env.unset_others(), env.to_shell(true)),
        EnvFormat::Dotenv => print!("{}", env.to_dotenv(a.show_secrets)),
        EnvFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&env.to_json(a.show_secrets))?
        ),
    }
    Ok(())
}
