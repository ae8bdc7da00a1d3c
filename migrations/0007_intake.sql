ALTER TABLE `jobs` ADD `receiving` integer DEFAULT false NOT NULL;--> statement-breakpoint
-- Hand-written: jobs stored before two transfers of a job were refused one destination
-- (November 2026) may hold such pairs, on which the unique index below would fail. The later
-- transfer of each pair keeps a destination of its own and, unless it succeeded, ends refused
-- (API_BAD_REQUEST, which `petrel job retry` leaves alone).
UPDATE `transfers` SET
  `state` = CASE WHEN `state` IN ('queued', 'waiting', 'running') THEN 'failed' ELSE `state` END,
  `error_code` = CASE WHEN `state` = 'succeeded' THEN `error_code` ELSE 'API_BAD_REQUEST' END,
  `error_message` = CASE WHEN `state` = 'succeeded' THEN `error_message` ELSE 'transfer ' || (SELECT min(e.`idx`) FROM `transfers` e WHERE e.`job_id` = `transfers`.`job_id` AND e.`destination` = `transfers`.`destination`) || ' of this job writes the same destination' END,
  `error_hint` = CASE WHEN `state` = 'succeeded' THEN `error_hint` ELSE 'give each source its own destination' END,
  `finished_at` = coalesce(`finished_at`, CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  `run_id` = NULL,
  `destination` = `destination` || ' (transfer ' || `idx` || ', a duplicate)'
WHERE EXISTS (SELECT 1 FROM `transfers` e WHERE e.`job_id` = `transfers`.`job_id` AND e.`destination` = `transfers`.`destination` AND e.`idx` < `transfers`.`idx`);--> statement-breakpoint
CREATE UNIQUE INDEX `transfers_job_destination` ON `transfers` (`job_id`,`destination`);
