-- 1.0 -> 1.1: the reports read the rollups (92_rollups.sql) and the member rows (issue 7).
-- Drop the 1.0 definitions here; 92_rollups_reports.sql (a symlink to the install file)
-- creates the 1.1 ones after the rollup tables exist.
DROP VIEW loyalty.program_kpis_30d;
DROP VIEW loyalty.liability;
DROP FUNCTION loyalty.program_kpis(text, timestamptz, timestamptz);
DROP FUNCTION loyalty.cohort_retention(text, text);
DROP FUNCTION loyalty.expiring_points(interval, text);
