SELECT encode(sha256(convert_to(doc::text, 'UTF8')), 'hex') FROM bench_doc WHERE name = '1k';
