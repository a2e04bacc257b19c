\set m random(1, :members)
SELECT * FROM loyalty.award(:m, 150, 'refill', 'f' || :client_id || '-' || nextval('loyalty.entry_id_seq'));
SELECT points FROM loyalty.redeem(:m, 120, 'r' || :client_id || '-' || nextval('loyalty.entry_id_seq'));
