\set m random(1, :members)
\set k random(1, 20)
SELECT points FROM loyalty.earn(:m, 12.50, 'q' || :client_id || '-' || nextval('loyalty.entry_id_seq'), now(),
  jsonb_build_object('lines', jsonb_build_array(
    jsonb_build_object('sku', 's1', 'category', 'c' || :k, 'qty', 1, 'amount', 2.50),
    jsonb_build_object('sku', 's2', 'category', 'c' || (:k % 20 + 1), 'qty', 1, 'amount', 2.50),
    jsonb_build_object('sku', 's3', 'category', 'c' || ((:k + 5) % 20 + 1), 'qty', 1, 'amount', 2.50),
    jsonb_build_object('sku', 's4', 'category', 'other', 'qty', 1, 'amount', 2.50),
    jsonb_build_object('sku', 's5', 'category', 'other', 'qty', 2, 'amount', 2.50))));
