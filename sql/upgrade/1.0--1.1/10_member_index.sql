-- enroll's cached lookup by external_ref could pick the (program_id, referral_code) index with
-- a filter (a generic plan made while the table was young): every enroll then scanned the
-- program's members. The referral-code key leads with the code now.
ALTER TABLE loyalty.member
    DROP CONSTRAINT member_program_id_referral_code_key,
    ADD UNIQUE (referral_code, program_id);
