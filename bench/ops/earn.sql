\set m random(1, :members)
SELECT points FROM loyalty.earn(:m, 12.50, 'e' || :client_id || '-' || nextval('loyalty.entry_id_seq'));
