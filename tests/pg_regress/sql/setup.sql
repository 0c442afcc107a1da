-- Run first, once, in the database every file shares (as cargo pgrx
-- regress and scripts/regress.sh do): the extension, nothing else.
CREATE EXTENSION spendguard;
SELECT extname FROM pg_extension WHERE extname = 'spendguard';
