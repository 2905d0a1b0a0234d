//! `jetforge env PKG`: the exact environment the recipe's build steps get.
//! `eval "$(jetforge env torch)"` reproduces a build by hand.

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
    // The GIT_CONFIG_* entries are many and unreadable; one comment says what they do.
    let git = &plan.git_redirects;
    if !matches!(format, EnvFormat::Json) && !git.mirrors.is_empty() {
        println!("# {}", git.summary());
    }
    match format {
        EnvFormat::Shell => print!("{}", env.to_shell(a.show_secrets)),
        EnvFormat::Dotenv => print!("{}", env.to_dotenv(a.show_secrets)),
        EnvFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&env.to_json(a.show_secrets))?
        ),
    }
    Ok(())
}
