//! `jetforge export --format uv|pip|constraints [--index URL]`: hands the built set to uv or
//! pip projects (see `wheelhouse::export`).

use anyhow::Result;

use super::Session;
use crate::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::wheelhouse::export::{self, Format, Source};
use crate::wheelhouse::store::Wheelhouse;

pub fn run(g: &GlobalArgs, a: &ExportArgs) -> Result<()> {
    let s = Session::load(g)?;
    let wheelhouse = Wheelhouse::open(&s.wheelhouse)?;
    let pins = export::pins(&wheelhouse.entries()?, &s.target.name);
    if pins.is_empty() {
        return Err(crate::error::input_hint(
            format!(
                "the wheelhouse `{}` has no wheels for target `{}`",
                wheelhouse.dir().display(),
                s.target.name
            ),
            "run `jetforge build` first, or pass --wheelhouse / --target",
        ));
    }
    let dir = std::path::absolute(wheelhouse.dir())?;
    let file_url = |p: &std::path::Path| {
        url::Url::from_directory_path(p)
            .map(String::from)
            .map_err(|()| anyhow::anyhow!("`{}` cannot be a file URL", p.display()))
    };
    let local_index = file_url(&dir.join("simple"))?;
    let local_dir = file_url(&dir)?;
    let (index, find_links) = match &a.index {
        Some(url) => (url.clone(), None),
        None => {
            wheelhouse.write_index()?;
            (local_index, Some(local_dir))
        }
    };
    let what = format!("jetforge set {} for target {}", s.set.name, s.target.name);
    let format = match a.format {
        ExportFormat::Uv => Format::Uv,
        ExportFormat::Pip => Format::Pip,
        ExportFormat::Constraints => Format::Constraints,
    };
    let src = Source {
        index: &index,
        find_links: find_links.as_deref(),
        arch: &s.target.arch,
        what: &what,
    };
    print!("{}", export::render(format, &pins, &src));
    Ok(())
}
