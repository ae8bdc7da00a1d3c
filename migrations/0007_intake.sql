ALTER TABLE `jobs` ADD `receiving` integer DEFAULT false NOT NULL;--> statement-breakpoint
-- Hand-written: jobs stored before two transfers of a job were refused one destination
-- (November 2026) may hold such pairs, on which the unique index below would fail. The later
-- transfer of each pair fails if it was still to run, and keeps a destination of its own.
UPDATE `transfers` SET
  `state` = CASE WHEN `state` IN ('queued', 'waiting', 'running') THEN 'failed' ELSE `state` END,
  `error_code` = CASE WHEN `state` IN ('queued', 'waiting', 'running') THEN 'API_BAD_REQUEST' ELSE `error_code` END,
  `error_message` = CASE WHEN `state` IN ('queued', 'waiting', 'running') THEN 'transfer ' || (SELECT min(e.`idx`) FROM `transfers` e WHERE e.`job_id` = `transfers`.`job_id` AND e.`destination` = `transfers`.`destination`) || ' of this job writes the same destination' ELSE `error_message` END,
  `finished_at` = coalesce(`finished_at`, CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  `run_id` = NULL,
  `destination` = `destination` || ' (transfer ' || `idx` || ', a duplicate)'
WHERE EXISTS (SELECT 1 FROM `transfers` e WHERE e.`job_id` = `transfers`.`job_id` AND e.`destination` = `transfers`.`destination` AND e.`idx` < `transfers`.`idx`);--> statement-breakpoint
CREATE UNIQUE INDEX `transfers_job_destination` ON `transfers` (`job_id`,`destination`);
