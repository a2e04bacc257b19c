SELECT points FROM loyalty.earn(1, 12.50, 'h' || :client_id || '-' || nextval('loyalty.entry_id_seq'));
