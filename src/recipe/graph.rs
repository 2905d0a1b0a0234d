//! The dependency graph of a set: a stable topological order and dependency closures.
//!
//! Order is Kahn's algorithm taking, among the recipes that are ready, the smallest name first,
//! so the same set always builds in the same order on every machine.

use std::collections::{BTreeMap, BTreeSet};

use super::{Recipe, RecipeSet};

/// Indices of `recipes` in build order, or the names along a dependency cycle
/// (first name repeated at the end).
pub fn order(recipes: &[Recipe]) -> Result<Vec<usize>, Vec<String>> {
    let index: BTreeMap<&str, usize> = recipes
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut pending: Vec<usize> = recipes.iter().map(|r| r.ordering_deps().count()).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); recipes.len()];
    for (i, r) in recipes.iter().enumerate() {
        for d in r.ordering_deps() {
            users[index[d.as_str()]].push(i);
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = recipes
        .iter()
        .enumerate()
        .filter(|(i, _)| pending[*i] == 0)
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut out = Vec::with_capacity(recipes.len());
    while let Some(first) = ready.pop_first() {
        let i = first.1;
        out.push(i);
        for &u in &users[i] {
            pending[u] -= 1;
            if pending[u] == 0 {
                ready.insert((recipes[u].name.as_str(), u));
            }
        }
    }
    if out.len() == recipes.len() {
        Ok(out)
    } else {
        Err(find_cycle(recipes, &index, &pending))
    }
}

/// Walks dependencies from a recipe left over by Kahn's algorithm until a name repeats.
fn find_cycle(recipes: &[Recipe], index: &BTreeMap<&str, usize>, pending: &[usize]) -> Vec<String> {
    let start = recipes
        .iter()
        .enumerate()
        .filter(|(i, _)| pending[*i] > 0)
        .map(|(i, r)| (r.name.as_str(), i))
        .min()
        .map(|(_, i)| i)
        .unwrap_or(0);
    let mut path = vec![start];
    loop {
        let cur = *path.last().unwrap();
        let next = recipes[cur]
            .ordering_deps()
            .map(|d| index[d.as_str()])
            .filter(|&d| pending[d] > 0)
            .min_by_key(|&d| recipes[d].name.as_str())
            .unwrap_or(start);
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<String> = path[pos..]
                .iter()
                .map(|&i| recipes[i].name.clone())
                .collect();
            cycle.push(recipes[next].name.clone());
            return cycle;
        }
        path.push(next);
    }
}

/// The recipes named (with `all` or nothing meaning every recipe) plus their dependencies,
/// in the set's build order.
pub fn select<'a>(set: &'a RecipeSet, names: &[String]) -> Result<Vec<&'a Recipe>, String> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(set.recipes.iter().collect());
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| set.get(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = set.recipes.iter().map(|r| r.name.as_str()).collect();
        return Err(format!(
            "no recipe named {} in set `{}` (recipes: {})",
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            set.name,
            known.join(", ")
        ));
    }
    let mut want: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = names.iter().map(String::as_str).collect();
    while let Some(n) = stack.pop() {
        if want.insert(n) {
            stack.extend(set.get(n).unwrap().depends.iter().map(String::as_str));
        }
    }
    Ok(set
        .recipes
        .iter()
        .filter(|r| want.contains(r.name.as_str()))
        .collect())
}

/// Recipes that depend on `name`, directly or not.
pub fn dependents<'a>(set: &'a RecipeSet, name: &str) -> Vec<&'a Recipe> {
    let mut hit: BTreeSet<&str> = BTreeSet::from([name]);
    let mut out = Vec::new();
    for r in &set.recipes {
        if r.depends.iter().any(|d| hit.contains(d.as_str())) {
            hit.insert(&r.name);
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{JobsPolicy, OutputKind, Source};

    fn r(name: &str, deps: &[&str]) -> Recipe {
        Recipe {
            name: name.into(),
            version: "1".parse().unwrap(),
            description: None,
            disk_gib: None,
            file: format!("{name}.toml"),
            text: String::new(),
            source: Source::Path { dir: "/x".into() },
            patches: vec![],
            edits: vec![],
            resources: vec![],
            depends: deps.iter().map(|d| d.to_string()).collect(),
            after: vec![],
            python_requires: vec![],
            pyproject_requires: true,
            env: vec![],
            jobs: JobsPolicy {
                mem_per_job_gib: 1.0,
                mem_per_link_gib: None,
                nvcc_threads: None,
                max_jobs_counts_nvcc_threads: false,
                max: None,
            },
            steps: vec![],
            output: OutputKind::Wheel,
            wheel_names: vec![],
            verify: None,
            cross: None,
            network: None,
            repositories: vec![],
        }
    }

    fn names(rs: &[Recipe], order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| rs[i].name.clone()).collect()
    }

    #[test]
    fn dependencies_first_ties_by_name() {
        let rs = vec![
            r("vllm", &["torch", "triton", "flash"]),
            r("triton", &[]),
            r("torchvision", &["torch"]),
            r("torch", &[]),
            r("flash", &["torch"]),
        ];
        let o = order(&rs).unwrap();
        assert_eq!(
            names(&rs, &o),
            ["torch", "flash", "torchvision", "triton", "vllm"]
        );
    }

    #[test]
    fn order_does_not_depend_on_file_order() {
        let a = vec![r("b", &["a"]), r("a", &[]), r("c", &[])];
        let b = vec![r("c", &[]), r("a", &[]), r("b", &["a"])];
        assert_eq!(
            names(&a, &order(&a).unwrap()),
            names(&b, &order(&b).unwrap())
        );
    }

    #[test]
    fn after_orders_without_selecting() {
        let mut bnb = r("bitsandbytes", &[]);
        bnb.after = vec!["torch".into()];
        let rs = vec![bnb, r("torch", &[])];
        assert_eq!(names(&rs, &order(&rs).unwrap()), ["torch", "bitsandbytes"]);
        let set = RecipeSet {
            name: "s".into(),
            description: None,
            requires: Default::default(),
            recipes: rs,
            index: Default::default(),
        };
        let got: Vec<&str> = select(&set, &["bitsandbytes".into()])
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(got, ["bitsandbytes"]);
    }

    #[test]
    fn cycle_is_reported_as_a_path() {
        let rs = vec![r("a", &["b"]), r("b", &["c"]), r("c", &["a"]), r("d", &[])];
        assert_eq!(order(&rs).unwrap_err(), ["a", "b", "c", "a"]);
    }

    #[test]
    fn selection_includes_dependencies_in_order() {
        let set = RecipeSet {
            name: "s".into(),
            description: None,
            requires: Default::default(),
            recipes: vec![
                r("torch", &[]),
                r("torchvision", &["torch"]),
                r("triton", &[]),
            ],
            index: Default::default(),
        };
        let got: Vec<&str> = select(&set, &["torchvision".into()])
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(got, ["torch", "torchvision"]);
        assert!(select(&set, &["nope".into()])
            .unwrap_err()
            .contains("`nope`"));
        let deps: Vec<&str> = dependents(&set, "torch")
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(deps, ["torchvision"]);
    }
}
