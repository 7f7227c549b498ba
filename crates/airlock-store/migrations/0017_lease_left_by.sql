-- The engine that stopped or died while running a task: set when its leases are freed,
-- cleared by the next claim, which so knows it takes over an interrupted run. Kept apart
-- from `lease_owner`, which stays NULL for a free task (nothing can renew a freed lease).
ALTER TABLE tasks ADD COLUMN lease_left_by TEXT;
