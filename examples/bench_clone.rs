//! Times a cold mirror + checkout against a checkout into a fresh dir from the warm mirror.
//! Driven by `scripts/bench-clone.sh`, which builds the fixture repository.
//!
//! usage: bench_clone URL COMMIT SCRATCH_DIR

use std::path::Path;
use std::time::Instant;

use jetforge::net::Direct;
use jetforge::source::git::MirrorCache;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, commit, scratch] = args.as_slice() else {
        anyhow::bail!("usage: bench_clone URL COMMIT SCRATCH_DIR");
    };
    let scratch = Path::new(scratch);
    let policy = Direct::default();
    let cache = MirrorCache::new(&scratch.join("cache"), &policy);

    let start = Instant::now();
    let subs = cache.checkout(url, commit, None, &scratch.join("cold"), true)?;
    let cold = start.elapsed();

    let start = Instant::now();
    cache.checkout(url, commit, None, &scratch.join("warm"), true)?;
    let warm = start.elapsed();

    let ratio = warm.as_secs_f64() / cold.as_secs_f64();
    println!("submodules: {}", subs.len());
    println!("cold mirror + checkout: {:.3}s", cold.as_secs_f64());
    println!("warm checkout, fresh dir: {:.3}s", warm.as_secs_f64());
    println!("ratio: {ratio:.3} (target <= 0.1)");
    Ok(())
}
