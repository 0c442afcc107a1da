SELECT spendguard.args_hash(doc) FROM bench_doc WHERE name = '64k';
