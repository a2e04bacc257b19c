-- 1.1 functions that run with enable_seqscan = off also run with jit = off: a plan whose
-- only path is a disabled sequential scan costs over jit_above_cost, and JIT-compiling it
-- cost up to a second on every call (run_maintenance's reminder query did, on each batch).
ALTER FUNCTION loyalty.add_tier(text,text,text,numeric,numeric,jsonb) SET jit = off;
ALTER FUNCTION loyalty.adjust(bigint,bigint,text,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.award(bigint,bigint,text,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.balance(bigint,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.cancel_subscription(bigint,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.cancel_voucher(text,text,timestamp with time zone,text) SET jit = off;
ALTER FUNCTION loyalty.check_voucher(text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.create_program(text,text,jsonb) SET jit = off;
ALTER FUNCTION loyalty.earn(bigint,numeric,text,timestamp with time zone,jsonb) SET jit = off;
ALTER FUNCTION loyalty.enroll(text,text,timestamp with time zone,text) SET jit = off;
ALTER FUNCTION loyalty.member_id(text,text) SET jit = off;
ALTER FUNCTION loyalty.redeem(bigint,bigint,text,timestamp with time zone,text) SET jit = off;
ALTER FUNCTION loyalty.redeem_reward(bigint,text,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.renew(bigint,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.reverse(bigint,text,numeric,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.rotate_voucher_key() SET jit = off;
ALTER FUNCTION loyalty.run_maintenance(timestamp with time zone,integer) SET jit = off;
ALTER FUNCTION loyalty.set_tier(bigint,text,timestamp with time zone,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.statement(bigint,timestamp with time zone,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.subscribe(bigint,text,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.tier_history(bigint) SET jit = off;
ALTER FUNCTION loyalty.tier_progress(bigint,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.transfer(bigint,bigint,bigint,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.use_voucher(text,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.voucher_bundle(text,text,timestamp with time zone) SET jit = off;
ALTER FUNCTION loyalty.voucher_code(bigint,integer) SET jit = off;
ALTER FUNCTION loyalty.voucher_codes(bigint,integer,integer) SET jit = off;
