//! Criterion benchmarks for the SCIM filter engine: parsing the whole fixture corpus, and
//! evaluating typical filters over 1,000 users. `benches/filter_peers.py` compares the same
//! workloads against other SCIM libraries.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use usersync_benches::{EVAL_FILTERS, typical_filters, users};
use usersync_core::scim::filter::Filter;
use usersync_core::scim::schema::SchemaRegistry;

fn parse(c: &mut Criterion) {
    let filters = typical_filters();
    let bytes: usize = filters.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for f in &filters {
                black_box(Filter::parse(black_box(f)).ok());
            }
        });
    });
    group.finish();
}

fn evaluate(c: &mut Criterion) {
    let users = users(1000);
    let registry = SchemaRegistry::core();
    let user_type = registry.resource_type("User").expect("built in");
    let mut group = c.benchmark_group("eval_1000_users");
    group.throughput(Throughput::Elements(users.len() as u64));
    for (i, text) in EVAL_FILTERS.iter().enumerate() {
        let compiled = Filter::parse(text)
            .and_then(|f| f.compile(user_type))
            .expect("valid");
        group.bench_function(format!("{i:02}"), |b| {
            b.iter(|| {
                users
                    .iter()
                    .filter(|u| compiled.matches(black_box(u)))
                    .count()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse, evaluate);
criterion_main!(benches);
