-- Run last in a timed session (bench/run.sh timed): the CPU time its backend used so
-- far (user + system, from /proc; the bench runs on the server's machine). Unlike the
-- wall clock, the load of the rest of the machine barely moves it.
SELECT pg_backend_pid() AS bench_bpid \gset
\setenv BENCH_BPID :bench_bpid
\! awk '{ printf "backend_cpu_ms=%d\n", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"' }' /proc/$BENCH_BPID/stat
