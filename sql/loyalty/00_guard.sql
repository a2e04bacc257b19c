-- loyalty: programs, tiers, members, the append-only ledger, lots and balances.
-- Built by make from sql/loyalty/*.sql (one file per concern): edit those.
\echo Use "CREATE EXTENSION loyalty" to load this file. \quit

