-- 100 args_hash calls of the 64 KB document per statement
SELECT count(spendguard.args_hash(d.doc)) FROM generate_series(1, 100) g, bench_doc d WHERE d.name = '64k';
