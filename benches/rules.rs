//! B4 (rules half): parse and compile the bundled `rules/` folder, the whole Microsoft catalog.
//! Target: at most 10 ms median on a 2-core machine.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use group_licensing::rules;

fn bundled_rules(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the bundled rules folder exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("rules files are UTF-8");
            (p.display().to_string(), text)
        })
        .collect();
    files.sort();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let compiled = rules::compile_texts(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .expect("the bundled rules compile");
    eprintln!(
        "bundled rules: {} files, {bytes} bytes, {} plans, {} products",
        files.len(),
        compiled.table.plan_count(),
        compiled.table.product_count()
    );

    let mut group = c.benchmark_group("rules");
    group.bench_function("compile bundled rules (in memory)", |b| {
        b.iter(|| rules::compile_texts(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))))
    });
    group.bench_function("load_dir bundled rules (read + compile)", |b| {
        b.iter(|| rules::load_dir(&dir))
    });
    group.finish();
}

criterion_group!(benches, bundled_rules);
criterion_main!(benches);
