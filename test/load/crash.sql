-- The crash-phase step: like load.sql, plus the outcome appended to a file outside the
-- server as soon as the call returned (the file survives the server being killed, so it is
-- the true record of what was acknowledged; the journal table is written after it).
SELECT res, line FROM lt.step(:client_id, :phase, :hot) \gset
\shell echo :line >> :extfile
SELECT lt.record(:res)
