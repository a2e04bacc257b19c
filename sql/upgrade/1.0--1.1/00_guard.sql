-- loyalty 1.0 -> 1.1. Built by make from sql/upgrade/1.0--1.1/*.sql in name order:
-- ALTERs for objects that changed, then the sql/loyalty/ files new in 1.1 (symlinks).
\echo Use "ALTER EXTENSION loyalty UPDATE TO '1.1'" to load this file. \quit
