\set k random(1, 1000)
SELECT ((1200 - 200)::numeric * p.input_micros_per_mtok
        + 200::numeric * coalesce(p.cached_input_micros_per_mtok, p.input_micros_per_mtok)
        + 300::numeric * p.output_micros_per_mtok + 999999) / 1000000
FROM spendguard.price p
WHERE p.tenant_id = 'floor' AND p.model = 'm' || :k AND p.effective_from <= now()
ORDER BY p.effective_from DESC LIMIT 1;
